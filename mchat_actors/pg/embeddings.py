"""Dense retrieval's storage on PostgreSQL: ``chat.embeddings``' ``pending``, ``store`` and
``nearest`` on the connection ``PgDatabase.run`` lends.

Vectors are kept as on SQLite (``memory_embeddings``: memory id, model, float32 bytes), one
per memory, replaced when the configured model changes (``pending`` counts a vector of
another model as missing). There is no vector index: the pgvector extension is not available
where this runs, so the search is exact and brute force. ``nearest`` selects, in SQL, the
memories the asker may see (``pg.search.VISIBLE``, the condition the lexical search applies:
current, not forgotten or retracted, a room memory of the asker's rooms or their own personal
memory) that have a vector of the question's model and length, and NumPy ranks their vectors
by cosine similarity. Nothing outside the audience is ranked: the ids always come from that
SQL, at every search.

Where the vectors come from: the service's ``VectorCache`` (``PgQueries.vectors``), which
keeps what it has read, so a search reads only the visible ids and the vectors it does not
hold yet; without a cache (or past its size) the visible vectors are read as one row (ids,
and bytes end to end in binary format: no per-row work in Python, no hex encoding) and ranked
by ``chat.embeddings.rank_packed``, the SQLite backend's scan.

Its cost grows with the vectors visible to the asker (docs/postgresql.md, "Vector search on
PostgreSQL", gives the measured figures and the scale it is fit for).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..chat.embeddings import CANDIDATES, rank_packed
from .outbox_repo import Conn
from .search import VISIBLE

MAX_CACHE_BYTES = 256 * 2**20  # the vectors a process keeps (``VectorCache``)


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


class VectorCache:
    """The vectors one process has read, for the configured model: a memory's vector of one
    model never changes (a new text is a new memory, a new model replaces the vector under
    another name), so a search needs only the ids of the vectors the asker may see from SQL.

    Holds at most ``max_bytes`` of vectors (float32 rows; 256 MiB: 87 000 vectors of 768
    dimensions, 43 000 of 1536) or ``max_vectors`` when given; what does not fit is read from
    the database at each search, as without a cache. Another model or length empties
    it. Shared by the pool's worker threads: lookups and appends under a lock; a search ranks
    on the arrays it was handed (growth copies, it never rewrites rows in place)."""

    def __init__(self, max_bytes: int = MAX_CACHE_BYTES, max_vectors: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_vectors = max_vectors
        self._cap = 0
        self._lock = threading.Lock()
        self._key: tuple[str, int] | None = None
        self._index: dict[int, int] = {}
        self._matrix: np.ndarray[Any, np.dtype[np.float32]] = np.empty((0, 0), np.float32)
        self._norms: np.ndarray[Any, np.dtype[np.float32]] = np.empty(0, np.float32)

    def __len__(self) -> int:
        return len(self._index)

    def rows(self, model: str, dims: int, ids: Sequence[int]) -> tuple[
            np.ndarray[Any, np.dtype[np.intp]], np.ndarray[Any, np.dtype[np.float32]],
            np.ndarray[Any, np.dtype[np.float32]]]:
        """(row of each id, -1 when not held; the rows held; their norms) for ``model`` and
        ``dims``: views of the rows filled now, which later additions never rewrite."""
        with self._lock:
            if self._key != (model, dims):
                self._key, self._index = (model, dims), {}
                self._cap = (self.max_vectors if self.max_vectors is not None
                             else self.max_bytes // (4 * max(1, dims)))
                self._matrix = np.empty((1024, dims), np.float32)
                self._norms = np.empty(1024, np.float32)
            get = self._index.get
            rows = np.fromiter((get(i, -1) for i in ids), dtype=np.intp, count=len(ids))
            filled = len(self._index)
            return rows, self._matrix[:filled], self._norms[:filled]

    def add(self, model: str, dims: int, ids: Sequence[int],
            matrix: np.ndarray[Any, np.dtype[np.float32]],
            norms: np.ndarray[Any, np.dtype[np.float32]]) -> None:
        """Keep these vectors (as many as fit)."""
        with self._lock:
            if self._key != (model, dims):
                return
            room = max(0, self._cap - len(self._index))
            new = [(i, k) for k, i in enumerate(ids) if i not in self._index][:room]
            if not new:
                return
            start = len(self._index)
            end = start + len(new)
            if end > len(self._matrix):
                size = max(end, 2 * len(self._matrix))
                grown = np.empty((size, dims), np.float32)
                grown[:start] = self._matrix[:start]
                grown_norms = np.empty(size, np.float32)
                grown_norms[:start] = self._norms[:start]
                self._matrix, self._norms = grown, grown_norms
            picks = [k for _, k in new]
            self._matrix[start:end] = matrix[picks]
            self._norms[start:end] = norms[picks]
            for offset, (memory_id, _) in enumerate(new):
                self._index[memory_id] = start + offset


def _visible_ids(conn: Conn, model: str, size: int, rooms: Sequence[str],
                 owner: str | None) -> list[int]:
    row = conn.execute(
        "SELECT array_agg(e.memory_id ORDER BY e.memory_id) FROM memory_embeddings AS e"
        " JOIN memories AS m ON m.id = e.memory_id"
        " WHERE e.model = %(model)s AND octet_length(e.vector) = %(size)s"
        f" AND {VISIBLE}",
        {"model": model, "size": size, "rooms": list(rooms), "owner": owner}).fetchone()
    return [] if row is None or row[0] is None else [int(i) for i in row[0]]


def _packed(conn: Conn, model: str, size: int, ids: Sequence[int]) -> tuple[list[int], bytes]:
    """The vectors of ``ids`` (still of ``model`` and ``size``), ids ascending."""
    row = conn.execute(
        "SELECT array_agg(memory_id ORDER BY memory_id),"
        " string_agg(vector, ''::bytea ORDER BY memory_id) FROM memory_embeddings"
        " WHERE memory_id = ANY(%s::bigint[]) AND model = %s AND octet_length(vector) = %s",
        (list(ids), model, size), binary=True).fetchone()
    if row is None or row[0] is None:
        return [], b""
    return [int(i) for i in row[0]], bytes(row[1])


def nearest(conn: Conn, vector: Sequence[float], model: str, *, rooms: Sequence[str],
            owner: str | None, limit: int = CANDIDATES,
            cache: VectorCache | None = None) -> list[tuple[int, float]]:
    """``(memory id, cosine similarity)`` of the memories visible to ``owner`` through
    ``rooms`` nearest ``vector``, best first, ties by id (``chat.embeddings.nearest`` on
    PostgreSQL). With ``cache``, SQL gives the visible ids and only vectors the cache does
    not hold are read."""
    query = np.asarray(vector, dtype=np.float32)
    if not np.any(query):
        return []
    size = 4 * len(query)
    if cache is None:
        row = conn.execute(
            "SELECT array_agg(e.memory_id ORDER BY e.memory_id),"
            " string_agg(e.vector, ''::bytea ORDER BY e.memory_id)"
            " FROM memory_embeddings AS e JOIN memories AS m ON m.id = e.memory_id"
            " WHERE e.model = %(model)s AND octet_length(e.vector) = %(size)s"
            f" AND {VISIBLE}",
            {"model": model, "size": size, "rooms": list(rooms), "owner": owner},
            binary=True).fetchone()
        if row is None or row[0] is None:
            return []
        return rank_packed(query, row[0], bytes(row[1]), limit)
    ids = _visible_ids(conn, model, size, rooms, owner)
    if not ids:
        return []
    rows, matrix, norms = cache.rows(model, len(query), ids)
    sims = np.full(len(ids), -np.inf, dtype=np.float32)
    held = rows >= 0
    if held.any():
        picked = rows[held]
        # a product with every row held is cheaper than copying the picked ones out, unless
        # the asker sees few of them
        dots = (matrix @ query)[picked] if 4 * len(picked) >= len(matrix) else \
            matrix[picked] @ query
        denominators = norms[picked] * np.linalg.norm(query)
        sims[held] = dots / np.where(denominators == 0, 1.0, denominators)
    if not held.all():
        positions = {memory_id: k for k, memory_id in enumerate(ids)}
        found, packed = _packed(conn, model, size, [ids[k] for k in np.flatnonzero(~held)])
        if found:
            fetched = np.frombuffer(packed, dtype=np.float32).reshape(len(found), len(query))
            fetched_norms = np.linalg.norm(fetched, axis=1).astype(np.float32)
            denominators = fetched_norms * np.linalg.norm(query)
            at = [positions[i] for i in found]
            sims[at] = (fetched @ query) / np.where(denominators == 0, 1.0, denominators)
            cache.add(model, len(query), found, fetched, fetched_norms)
    order = np.argsort(-sims, kind="stable")[:limit]
    return [(ids[k], float(sims[k])) for k in order if np.isfinite(sims[k])]

__all__ = ["VectorCache", "nearest", "pending", "store"]
