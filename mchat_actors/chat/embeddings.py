"""Optional dense retrieval: memories embedded by an OpenAI-compatible ``/v1/embeddings``.

    async with open_embeddings(cfg.chat) as client:       # EMBEDDINGS_BASE_URL/_API_KEY/_MODEL
        async with open_embedded_chat_service(path, embeddings=client) as svc: ...

- ``EmbeddingsClient``: one pooled ``httpx.AsyncClient``; every request waits for the backend's
  own budget (a ``TokenBucket``, ``EMBEDDINGS_RATE_PER_MIN``), a 429 blocks the bucket for its
  ``Retry-After``. The key is only in the client's headers, never in logs or errors.
- ``run_embedder``: the service's background task. It embeds the current memories that have no
  vector for the configured model, ``BATCH`` texts a request, and sleeps when none is left. A
  memory embedded by another model (the model name changed) counts as missing: it is embedded
  again. A failure is logged and counted and retried after ``RETRY_S``; answers go on lexically.
- Vectors live in the same SQLite file (``memory_embeddings``: memory id, model, float32 blob,
  which is sqlite-vec's own vector format). ``nearest`` ranks the vectors of the memories the
  asker may see (the same visibility SQL as the lexical search; the audience filter is applied
  after, to both) by cosine similarity: in SQL with sqlite-vec's ``vec_distance_cosine`` where
  the connection could load the extension (``load_sqlite_vec``: the ``sqlite-vec`` package, on
  a Python whose sqlite3 can load extensions, such as Debian's), else a NumPy scan of the
  visible rows (a pyenv-built Python has no ``enable_load_extension``; docs/retrieval.md).
  The service's connection keeps the vectors it has read (``schema.ChatConnection.vectors``,
  a ``chat.vector_cache.VectorCache``): ``nearest_among`` ranks the visible ids the search
  found in its index, and reads only vectors not held yet.
  Only the reading connection runs vector SQL: the vectors are written as plain blobs, so the
  storage actor's connection needs no extension.
- Questions are embedded with a short deadline (``QUERY_TIMEOUT_S``); with no vector the search
  is lexical only.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import attrs
import httpx
import numpy as np
import trio

from ..config import ChatConfig
from ..errors import ChatServiceError, ConfigError
from ..ratelimit import TokenBucket
from .llm import retry_after_s
from .vector_cache import VectorCache, rank_cached

logger = logging.getLogger(__name__)

BATCH = 32
RATE_PER_MIN = 60.0
QUERY_TIMEOUT_S = 3.0
IDLE_S = 5.0
RETRY_S = 30.0
WARM_PAGE = 2048  # vectors read a query when the service warms its cache
RESCAN_ROUNDS = 12  # idle rounds between looks for missing vectors below the embedder's cursor
CANDIDATES = 60


@attrs.define
class EmbeddingStatistics:
    embedded: int = 0
    requests: int = 0
    failures: int = 0


class Embedder(Protocol):
    """What the service embeds with: an endpoint (``EmbeddingsClient``) or a model in this
    process (``chat.local_embeddings.LocalEmbedder``). Vectors are stored under ``model``."""

    model: str
    idle_s: float  # how often the embedder task looks for new memories
    retry_s: float  # how long it waits after a failure
    statistics: EmbeddingStatistics

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class EmbeddingsClient:
    """``embed(texts)`` -> one vector per text, under the backend's rate limit."""

    def __init__(self, client: httpx.AsyncClient, *, model: str, bucket: TokenBucket,
                 idle_s: float = IDLE_S, retry_s: float = RETRY_S) -> None:
        self._client = client
        self.model = model
        self.idle_s = idle_s  # how often the embedder looks for new memories
        self.retry_s = retry_s  # how long it waits after a failure
        self._bucket = bucket
        self.statistics = EmbeddingStatistics()

    def __repr__(self) -> str:
        return f"EmbeddingsClient(model={self.model!r})"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Raises:
        ChatServiceError: the endpoint failed, refused, or answered something else.
        """
        await self._bucket.acquire()
        self.statistics.requests += 1
        try:
            response = await self._client.post("embeddings",
                                               json={"model": self.model, "input": list(texts)})
        except httpx.HTTPError as exc:
            raise ChatServiceError(f"embeddings: {type(exc).__name__}") from None
        if response.status_code == 429:
            self._bucket.penalize(retry_after_s(response) or 1.0)
        if response.status_code >= 400:
            raise ChatServiceError(f"embeddings: HTTP {response.status_code}")
        try:
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            vectors = [[float(x) for x in d["embedding"]] for d in data]
        except (ValueError, KeyError, TypeError):
            raise ChatServiceError("embeddings: not an embeddings answer") from None
        if len(vectors) != len(texts) or any(not v for v in vectors):
            raise ChatServiceError("embeddings: wrong number of vectors")
        return vectors


@asynccontextmanager
async def open_embeddings(cfg: ChatConfig, *, rate_per_min: float = RATE_PER_MIN,
                          timeout_s: float = 30.0, idle_s: float = IDLE_S,
                          retry_s: float = RETRY_S) -> AsyncIterator[EmbeddingsClient]:
    """An ``EmbeddingsClient`` for ``cfg.embeddings_base_url`` with one pooled HTTP client.

    Raises:
        ConfigError: the base URL or the model is unset.
    """
    if not cfg.embeddings_base_url or not cfg.embeddings_model:
        raise ConfigError(["EMBEDDINGS_BASE_URL and EMBEDDINGS_MODEL are required"])
    headers = {"Accept": "application/json"}
    if cfg.embeddings_api_key:
        headers["Authorization"] = f"Bearer {cfg.embeddings_api_key.reveal()}"
    client = httpx.AsyncClient(base_url=cfg.embeddings_base_url.rstrip("/") + "/",
                               headers=headers, timeout=httpx.Timeout(timeout_s),
                               limits=httpx.Limits(max_connections=4))
    async with client:
        yield EmbeddingsClient(client, model=cfg.embeddings_model,
                               bucket=TokenBucket(rate_per_min / 60.0, window_s=60.0),
                               idle_s=idle_s, retry_s=retry_s)


# -- storage (runs in the database thread) --------------------------------------------------

def pending(conn: sqlite3.Connection, model: str, limit: int, after: int = 0
            ) -> list[tuple[int, str]]:
    """Current memories without a vector of ``model``, oldest first; ``after``: only those
    with a greater id (the embedder's cursor: without it each batch read past every memory
    embedded before it, and embedding 100 000 memories slowed from 970 to 340 a second)."""
    rows = conn.execute(
        "SELECT m.id, m.content FROM memories AS m LEFT JOIN memory_embeddings AS e"
        " ON e.memory_id = m.id AND e.model = ? WHERE m.id > ? AND m.deleted_at IS NULL"
        " AND m.valid_to IS NULL AND m.forgotten_at IS NULL AND e.memory_id IS NULL"
        " ORDER BY m.id LIMIT ?", (model, after, limit)).fetchall()
    return [(r[0], r[1]) for r in rows]


def stored_vectors(conn: sqlite3.Connection, model: str, after: int, limit: int
                   ) -> tuple[list[int], bytes]:
    """The vectors of ``model`` of current memories with ids above ``after``, ascending (ids,
    float32 vectors end to end): what warms the cache when the service starts."""
    rows = conn.execute(
        "SELECT e.memory_id, e.vector FROM memory_embeddings AS e JOIN memories AS m"
        " ON m.id = e.memory_id WHERE e.model = ? AND e.memory_id > ? AND m.deleted_at IS NULL"
        " AND m.valid_to IS NULL AND m.forgotten_at IS NULL ORDER BY e.memory_id LIMIT ?",
        (model, after, limit)).fetchall()
    return [int(r[0]) for r in rows], b"".join(bytes(r[1]) for r in rows)


def store(conn: sqlite3.Connection, model: str, items: Sequence[tuple[int, Sequence[float]]]
          ) -> None:
    for memory_id, vector in items:
        blob = np.asarray(vector, dtype=np.float32).tobytes()
        conn.execute("INSERT INTO memory_embeddings (memory_id, model, vector) VALUES (?, ?, ?)"
                     " ON CONFLICT(memory_id) DO UPDATE SET model = excluded.model,"
                     " vector = excluded.vector", (memory_id, model, blob))


def load_sqlite_vec(conn: sqlite3.Connection) -> str | None:
    """Load sqlite-vec into ``conn``: None when loaded, else why it could not be."""
    enable = getattr(conn, "enable_load_extension", None)
    if enable is None:
        return ("this Python's sqlite3 cannot load extensions (built without "
                "--enable-loadable-sqlite-extensions)")
    try:
        import sqlite_vec  # type: ignore[import-untyped]
    except ImportError:
        return "the sqlite-vec package is not installed"
    try:
        enable(True)
        try:
            conn.load_extension(sqlite_vec.loadable_path())
        finally:
            enable(False)
    except sqlite3.Error as exc:
        return f"sqlite-vec did not load: {exc}"
    return None


def nearest(conn: sqlite3.Connection, vector: Sequence[float], model: str, *, visible: str,
            args: Sequence[Any], limit: int = CANDIDATES) -> list[tuple[int, float]]:
    """``(memory id, cosine similarity)`` of the visible memories nearest ``vector``, best first.

    ``visible`` is the SQL condition on ``m`` (``chat.search``'s) with its ``args``. A vector
    of another length than ``vector`` is left out; so is, with sqlite-vec, a zero vector.
    """
    query = np.asarray(vector, dtype=np.float32)
    if not np.any(query):
        return []
    if getattr(conn, "sqlite_vec", False):
        rows = conn.execute(
            "SELECT id, distance FROM (SELECT e.memory_id AS id,"
            " vec_distance_cosine(e.vector, ?) AS distance FROM memory_embeddings AS e"
            " JOIN memories AS m ON m.id = e.memory_id WHERE e.model = ?"
            f" AND length(e.vector) = ? AND {visible}) WHERE distance IS NOT NULL"
            " ORDER BY distance, id LIMIT ?",
            (query.tobytes(), model, 4 * len(query), *args, limit)).fetchall()
        return [(int(r[0]), 1.0 - float(r[1])) for r in rows]
    rows = conn.execute(
        "SELECT e.memory_id, e.vector FROM memory_embeddings AS e JOIN memories AS m"
        f" ON m.id = e.memory_id WHERE e.model = ? AND {visible}", (model, *args)).fetchall()
    return rank(query, [(int(r[0]), bytes(r[1])) for r in rows], limit)


def nearest_among(conn: sqlite3.Connection, cache: VectorCache, vector: Sequence[float],
                  model: str, ids: Sequence[int] | np.ndarray[Any, np.dtype[np.int64]],
                  limit: int = CANDIDATES
                  ) -> list[tuple[int, float]]:
    """``nearest`` over ``ids`` (the visible memories, ascending), ranked on the vectors
    ``cache`` holds; the ones it does not hold are read (by primary key) and kept."""
    query = np.asarray(vector, dtype=np.float32)
    if not np.any(query):
        return []
    size = 4 * len(query)
    return rank_cached(query, ids, model, cache,
                       lambda missing: _packed(conn, model, size, missing), limit)


def _packed(conn: sqlite3.Connection, model: str, size: int, ids: Sequence[int]
            ) -> tuple[list[int], bytes]:
    """The vectors of ``ids`` (still of ``model`` and ``size``), ids ascending, end to end."""
    rows = conn.execute(
        "SELECT memory_id, vector FROM memory_embeddings WHERE memory_id IN"
        " (SELECT value FROM json_each(?)) AND model = ? AND length(vector) = ?"
        " ORDER BY memory_id", (json.dumps(list(ids)), model, size)).fetchall()
    return [int(r[0]) for r in rows], b"".join(bytes(r[1]) for r in rows)


def rank(query: np.ndarray[Any, np.dtype[np.float32]], rows: Sequence[tuple[int, bytes]],
         limit: int) -> list[tuple[int, float]]:
    """``(memory id, cosine similarity)`` of ``rows`` (id, float32 blob) nearest ``query``,
    best first (ties: in the order of ``rows``); a blob of another length is left out. The
    exact brute-force scan both backends use where no vector index serves (``pg.embeddings``).
    """
    rows = [r for r in rows if len(r[1]) == 4 * len(query)]
    return rank_packed(query, [r[0] for r in rows], b"".join(r[1] for r in rows), limit)


def rank_packed(query: np.ndarray[Any, np.dtype[np.float32]], ids: Sequence[int],
                packed: bytes, limit: int) -> list[tuple[int, float]]:
    """``rank`` over vectors packed end to end (``ids[i]``'s is the i-th), all of
    ``query``'s length."""
    if not ids:
        return []
    matrix = np.frombuffer(packed, dtype=np.float32).reshape(len(ids), len(query))
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(query)
    sims = (matrix @ query) / np.where(norms == 0, 1.0, norms)
    order = np.argsort(-sims, kind="stable")[:limit]
    return [(int(ids[i]), float(sims[i])) for i in order]


# -- the background task ---------------------------------------------------------------------

async def warm(read: Any, model: str, cache: VectorCache, *, page: int = WARM_PAGE) -> int:
    """Read the stored vectors of ``model`` into ``cache`` (as many as it holds): the first
    search after a start then ranks from memory instead of reading every visible vector (290
    ms at 100 000 memories). How many were read."""
    after = total = 0
    while len(cache) < (cache.max_vectors or cache.max_bytes // 4):
        ids, packed = await read(stored_vectors, model, after, page)
        if not ids:
            break
        matrix = np.frombuffer(packed, dtype=np.float32).reshape(len(ids), -1)
        cache.rows(model, matrix.shape[1], [])  # the model and length it holds
        cache.add(model, matrix.shape[1], ids, matrix,
                  np.linalg.norm(matrix, axis=1).astype(np.float32))
        after, total = ids[-1], total + len(ids)
    return total


async def run_embedder(read: Any, db: Any, client: Embedder, *, batch: int = BATCH,
                       cache: VectorCache | None = None) -> None:
    """Embed missing memories forever (``read`` and ``db`` are ``EmbeddedChatService``'s: the
    look for missing vectors is a read on the service's connection, never a request to the
    runtime's storage actor; only the vectors are written); a new memory waits at most
    ``client.idle_s`` (it is found lexically meanwhile). With ``cache`` (the service's), the
    stored vectors are read into it first, and each new one is kept as it is stored."""
    if cache is not None:
        await warm(read, client.model, cache)
    idle_s, retry_s = client.idle_s, client.retry_s
    after = rounds = 0  # the greatest id embedded: new memories' ids are greater
    while True:
        items = await read(pending, client.model, batch, after)
        if not items:
            rounds += 1
            if after and rounds % RESCAN_ROUNDS == 0:  # one below it (restored after being
                items = await read(pending, client.model, batch)  # forgotten): from the start
            if not items:
                await trio.sleep(idle_s)
                continue
        try:
            vectors = await client.embed([text for _, text in items])
        except ChatServiceError as exc:
            client.statistics.failures += 1
            logger.warning("chat: embedding %d memories failed (%s); retry in %.0f s; answers "
                           "stay lexical", len(items), exc, retry_s)
            await trio.sleep(retry_s)
            continue
        await db(store, client.model, [(mid, v) for (mid, _), v in zip(items, vectors,
                                                                       strict=True)])
        client.statistics.embedded += len(items)
        after = max(after, items[-1][0])
        if cache is not None and vectors:
            matrix = np.asarray(vectors, dtype=np.float32)
            cache.rows(client.model, matrix.shape[1], [])
            cache.add(client.model, matrix.shape[1], [mid for mid, _ in items], matrix,
                      np.linalg.norm(matrix, axis=1).astype(np.float32))


async def query_vector(client: Embedder | None, text: str) -> list[float] | None:
    """``text``'s vector, or None (no endpoint, or it failed or was slow: search lexically)."""
    if client is None:
        return None
    with trio.move_on_after(QUERY_TIMEOUT_S):
        try:
            return (await client.embed([text]))[0]
        except ChatServiceError as exc:
            client.statistics.failures += 1
            logger.info("chat: question not embedded (%s); lexical search only", exc)
            return None
    client.statistics.failures += 1
    return None


async def dense_query(client: Embedder | None, text: str
                      ) -> tuple[list[float], str] | None:
    """``(text's vector, model)`` for a hybrid search, or None (lexical search only)."""
    vector = await query_vector(client, text)
    return (vector, client.model) if vector is not None and client is not None else None


__all__ = ["Embedder", "EmbeddingsClient", "dense_query", "load_sqlite_vec", "nearest",
           "nearest_among", "stored_vectors", "warm",
           "open_embeddings", "pending", "query_vector", "rank", "rank_packed", "run_embedder",
           "store"]
