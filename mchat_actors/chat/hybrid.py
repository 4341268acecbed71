"""How the vector list joins the lexical ones in a search (``chat.search`` on SQLite,
``pg.search`` on PostgreSQL): the visible memories nearest the question's vector, and the
reciprocal rank fusion of every list.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import numpy as np

from .embeddings import nearest, nearest_among

RRF_K = 60
DENSE_ONLY_FLOOR = 0.2  # a memory only the vectors found, below this cosine, is no match


def fuse(lexical: Sequence[Sequence[int]], near: Sequence[tuple[int, float]]
         ) -> dict[int, float]:
    """Reciprocal rank fusion of the lexical lists and the vector list (``near``: ids with
    their cosine, best first). A memory the vectors alone found, and only faintly (cosine
    below ``DENSE_ONLY_FLOOR``, under the development set's right memories' tenth percentile,
    0.25), is left out: the vector list ranks every visible memory, so without it ``/search``
    listed unrelated ones (`X부품 불량률 12%` for a question about welding scrap, at 0.12).
    The lexical lists run whatever the vectors found (before, a vector list of 20 or more
    took the place of the any-word lists when no memory held every word)."""
    fused: dict[int, float] = {}
    for ids in lexical:
        for rank, memory_id in enumerate(ids):
            fused[memory_id] = fused.get(memory_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    for rank, (memory_id, cosine) in enumerate(near):
        if memory_id in fused or cosine >= DENSE_ONLY_FLOOR:
            fused[memory_id] = fused.get(memory_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    return fused


def nearest_visible(conn: sqlite3.Connection, dense: tuple[Sequence[float], str], vis: str,
                    visible: str, rooms_json: str, owner: str | None
                    ) -> list[tuple[int, float]]:
    """The visible memories nearest the question's vector. With the connection's cache of
    vectors (the service's), the visible ids come from the index's ``vis`` posting lists (the
    index holds current memories only; the visibility SQL checks the fused candidates
    after): reading them from ``memories`` or ``memory_embeddings`` read every visible row
    (2 KB of vector each), 21 ms a search at 30 000 memories."""
    cache = getattr(conn, "vectors", None)
    if cache is None:
        return nearest(conn, dense[0], dense[1], visible=visible, args=(rooms_json, owner))
    listed = conn.execute("SELECT group_concat(rowid) FROM memories_fts WHERE memories_fts"
                          " MATCH ?", (vis,)).fetchone()[0]  # one string: no row objects
    ids = np.sort(np.array(listed.split(","), dtype=np.int64)) if listed else \
        np.empty(0, np.int64)
    return nearest_among(conn, cache, dense[0], dense[1], ids)


__all__ = ["DENSE_ONLY_FLOOR", "RRF_K", "fuse", "nearest_visible"]
