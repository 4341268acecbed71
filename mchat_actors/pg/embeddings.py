"""Dense retrieval's storage on PostgreSQL: ``chat.embeddings``' ``pending``, ``store`` and
``nearest`` on the connection ``PgDatabase.run`` lends.

Vectors are kept as on SQLite (``memory_embeddings``: memory id, model, float32 bytes), one
per memory, replaced when the configured model changes (``pending`` counts a vector of
another model as missing). There is no vector index: the pgvector extension is not available
where this runs, so the search is exact and brute force. ``nearest`` selects, in SQL, the
vectors of the memories the asker may see (``pg.search``'s visibility condition, the one the
lexical search applies: current, not forgotten, a room in the asker's rooms or the asker's
own personal memory) and of the question's model and length; NumPy ranks them by cosine
similarity (``chat.embeddings.rank_packed``, the SQLite backend's scan). The visible vectors
come back as one row (their ids, and their bytes end to end, in binary format): no per-row
work in Python, no hex encoding. Nothing outside the
audience is ever read out of the database, let alone ranked.

Its cost grows with the visible vectors (each search reads them all: docs/retrieval.md
gives the measured figures and the scale it is fit for).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..chat.embeddings import CANDIDATES, rank_packed
from .outbox_repo import Conn
from .search import VISIBLE


def pending(conn: Conn, model: str, limit: int) -> list[tuple[int, str]]:
    """Current memories without a vector of ``model``, oldest first."""
    rows = conn.execute(
        "SELECT m.id, m.content FROM memories AS m LEFT JOIN memory_embeddings AS e"
        " ON e.memory_id = m.id AND e.model = %s WHERE m.deleted_at IS NULL"
        " AND m.valid_to IS NULL AND m.forgotten_at IS NULL AND e.memory_id IS NULL"
        " ORDER BY m.id LIMIT %s", (model, limit)).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def store(conn: Conn, model: str, items: Sequence[tuple[int, Sequence[float]]]) -> None:
    """Each memory's vector of ``model`` (a vector of another model is replaced)."""
    if not items:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO memory_embeddings (memory_id, model, vector) VALUES (%s, %s, %s)"
            " ON CONFLICT (memory_id) DO UPDATE SET model = excluded.model,"
            " vector = excluded.vector",
            [(memory_id, model, np.asarray(vector, dtype=np.float32).tobytes())
             for memory_id, vector in items])


def nearest(conn: Conn, vector: Sequence[float], model: str, *, rooms: Sequence[str],
            owner: str | None, limit: int = CANDIDATES) -> list[tuple[int, float]]:
    """``(memory id, cosine similarity)`` of the memories visible to ``owner`` through
    ``rooms`` nearest ``vector``, best first (``chat.embeddings.nearest`` on PostgreSQL)."""
    query = np.asarray(vector, dtype=np.float32)
    if not np.any(query):
        return []
    row = conn.execute(
        "SELECT array_agg(e.memory_id ORDER BY e.memory_id),"
        " string_agg(e.vector, ''::bytea ORDER BY e.memory_id)"
        " FROM memory_embeddings AS e JOIN memories AS m ON m.id = e.memory_id"
        " WHERE e.model = %(model)s AND octet_length(e.vector) = %(size)s"
        f" AND {VISIBLE}",
        {"model": model, "size": 4 * len(query), "rooms": list(rooms), "owner": owner},
        binary=True).fetchone()
    if row is None or row[0] is None:
        return []
    return rank_packed(query, row[0], bytes(row[1]), limit)

__all__ = ["nearest", "pending", "store"]
