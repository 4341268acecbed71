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

from collections.abc import Sequence

import numpy as np

from ..chat.embeddings import CANDIDATES, rank_packed
from ..chat.vector_cache import VectorCache, rank_cached
from .outbox_repo import Conn
from .search import VISIBLE


def pending(conn: Conn, model: str, limit: int, after: int = 0) -> list[tuple[int, str]]:
    """Current memories without a vector of ``model``, oldest first, ids above ``after``."""
    rows = conn.execute(
        "SELECT m.id, m.content FROM memories AS m LEFT JOIN memory_embeddings AS e"
        " ON e.memory_id = m.id AND e.model = %s WHERE m.id > %s AND m.deleted_at IS NULL"
        " AND m.valid_to IS NULL AND m.forgotten_at IS NULL AND e.memory_id IS NULL"
        " ORDER BY m.id LIMIT %s", (model, after, limit)).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def stored_vectors(conn: Conn, model: str, after: int, limit: int) -> tuple[list[int], bytes]:
    """``chat.embeddings.stored_vectors`` on PostgreSQL (what warms the cache at start)."""
    row = conn.execute(
        "SELECT array_agg(id ORDER BY id), string_agg(vector, ''::bytea ORDER BY id) FROM"
        " (SELECT e.memory_id AS id, e.vector FROM memory_embeddings AS e JOIN memories AS m"
        " ON m.id = e.memory_id WHERE e.model = %s AND e.memory_id > %s"
        " AND m.deleted_at IS NULL AND m.valid_to IS NULL AND m.forgotten_at IS NULL"
        " ORDER BY e.memory_id LIMIT %s) AS page", (model, after, limit),
        binary=True).fetchone()
    if row is None or row[0] is None:
        return [], b""
    return [int(i) for i in row[0]], bytes(row[1])


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
    return rank_cached(query, ids, model, cache, lambda missing: _packed(conn, model, size,
                                                                         missing), limit)


__all__ = ["VectorCache", "nearest", "pending", "store", "stored_vectors"]
