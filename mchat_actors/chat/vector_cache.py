"""The vectors a process has read, kept in memory: a search reads from the database only the
ids of the vectors the asker may see (and the vectors it does not hold yet), and ranks them here.

Used by both backends' ``nearest`` (``chat.embeddings`` on SQLite, ``pg.embeddings``): reading
every visible vector at every search cost a scan of the whole table's blobs (at 100 000
memories of 512 dimensions, 200 MB a question).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

MAX_CACHE_BYTES = 256 * 2**20  # the vectors a process keeps (``VectorCache``)


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
        # the held ids ascending and their rows: ids are looked up with one searchsorted
        # (a dict lookup a visible id cost 6 ms a search at 25 000 visible); rebuilt after adds
        self._sorted: tuple[np.ndarray[Any, np.dtype[np.int64]],
                            np.ndarray[Any, np.dtype[np.intp]]] | None = None
        self._matrix: np.ndarray[Any, np.dtype[np.float32]] = np.empty((0, 0), np.float32)
        self._norms: np.ndarray[Any, np.dtype[np.float32]] = np.empty(0, np.float32)

    def __len__(self) -> int:
        return len(self._index)

    def rows(self, model: str, dims: int,
             ids: Sequence[int] | np.ndarray[Any, np.dtype[np.int64]]) -> tuple[
            np.ndarray[Any, np.dtype[np.intp]], np.ndarray[Any, np.dtype[np.float32]],
            np.ndarray[Any, np.dtype[np.float32]]]:
        """(row of each id, -1 when not held; the rows held; their norms) for ``model`` and
        ``dims``: views of the rows filled now, which later additions never rewrite."""
        with self._lock:
            if self._key != (model, dims):
                self._key, self._index, self._sorted = (model, dims), {}, None
                self._cap = (self.max_vectors if self.max_vectors is not None
                             else self.max_bytes // (4 * max(1, dims)))
                self._matrix = np.empty((1024, dims), np.float32)
                self._norms = np.empty(1024, np.float32)
            if self._sorted is None:
                held = np.fromiter(self._index.keys(), np.int64, len(self._index))
                at = np.fromiter(self._index.values(), np.intp, len(self._index))
                order = np.argsort(held, kind="stable")
                self._sorted = held[order], at[order]
            held, at = self._sorted
            wanted = np.asarray(ids, dtype=np.int64)
            rows = np.full(len(wanted), -1, dtype=np.intp)
            if len(held):
                pos = np.minimum(np.searchsorted(held, wanted), len(held) - 1)
                hit = held[pos] == wanted
                rows[hit] = at[pos[hit]]
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
            self._sorted = None


def rank_cached(query: np.ndarray[Any, np.dtype[np.float32]],
                ids: Sequence[int] | np.ndarray[Any, np.dtype[np.int64]], model: str,
                cache: VectorCache, fetch: Callable[[Sequence[int]], tuple[list[int], bytes]],
                limit: int) -> list[tuple[int, float]]:
    """``(memory id, cosine similarity)`` of ``ids`` (the visible ones, from SQL) nearest
    ``query``, best first, ties in the order of ``ids``. Vectors ``cache`` does not hold are
    read with ``fetch(missing ids) -> (ids found, their float32 vectors end to end)`` and kept;
    an id with no vector of ``model`` and ``query``'s length is left out."""
    if len(ids) == 0:
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
        positions = {int(memory_id): k for k, memory_id in enumerate(ids)}
        found, packed = fetch([int(ids[int(k)]) for k in np.flatnonzero(~held)])
        if found:
            fetched = np.frombuffer(packed, dtype=np.float32).reshape(len(found), len(query))
            fetched_norms = np.linalg.norm(fetched, axis=1).astype(np.float32)
            denominators = fetched_norms * np.linalg.norm(query)
            at = [positions[i] for i in found]
            sims[at] = (fetched @ query) / np.where(denominators == 0, 1.0, denominators)
            cache.add(model, len(query), found, fetched, fetched_norms)
    order = np.argsort(-sims, kind="stable")[:limit]
    return [(int(ids[k]), float(sims[k])) for k in order if np.isfinite(sims[k])]


__all__ = ["MAX_CACHE_BYTES", "VectorCache", "rank_cached"]
