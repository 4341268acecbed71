"""The vectors a process keeps (``chat.vector_cache``): ids map to the rows that hold their
vectors whatever the order they were added or asked in, and the cached ranking is the scan's."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from mchat_actors.chat.embeddings import rank_packed
from mchat_actors.chat.vector_cache import VectorCache, rank_cached

DIMS = 4


@given(batches=st.lists(st.lists(st.integers(1, 60), max_size=12), max_size=5),
       asked=st.lists(st.integers(0, 70), max_size=30), cap=st.integers(1, 80))
def test_rows_map_each_id_to_the_row_holding_its_vector(batches: list[list[int]],
                                                        asked: list[int], cap: int) -> None:
    cache = VectorCache(max_vectors=cap)
    cache.rows("m", DIMS, [])  # the model and length the cache is for
    for batch in batches:
        ids = list(dict.fromkeys(batch))
        matrix = np.array([[i, i + 0.5, -i, 1.0] for i in ids], dtype=np.float32).reshape(-1, DIMS)
        cache.add("m", DIMS, ids, matrix, np.linalg.norm(matrix, axis=1).astype(np.float32))
    rows, matrix, _ = cache.rows("m", DIMS, asked)
    assert len(cache) <= cap
    for memory_id, row in zip(asked, rows, strict=True):
        if row < 0:
            assert not any(memory_id in b for b in batches) or len(cache) == cap
        else:
            assert matrix[row][0] == memory_id  # the vector added for this id
    other, _, _ = cache.rows("another-model", DIMS, asked)
    assert (other == -1).all() and len(cache) == 0  # another model empties it


@given(seed=st.integers(0, 1000), held=st.integers(0, 40))
def test_the_cached_ranking_is_the_scans(seed: int, held: int) -> None:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, 41, dtype=np.int64)
    vectors = rng.normal(size=(40, DIMS)).astype(np.float32)
    query = rng.normal(size=DIMS).astype(np.float32)
    cache = VectorCache()
    cache.rows("m", DIMS, [])
    cache.add("m", DIMS, list(ids[:held]), vectors[:held],
              np.linalg.norm(vectors[:held], axis=1).astype(np.float32))
    packed = {int(i): v.tobytes() for i, v in zip(ids, vectors, strict=True)}

    def fetch(missing: list[int]) -> tuple[list[int], bytes]:
        return missing, b"".join(packed[i] for i in missing)

    cached = rank_cached(query, ids, "m", cache, fetch, 10)
    scan = rank_packed(query, [int(i) for i in ids], vectors.tobytes(), 10)
    assert [i for i, _ in cached] == [i for i, _ in scan]
    assert np.allclose([s for _, s in cached], [s for _, s in scan], atol=1e-5)
    assert len(cache) == 40  # what was read is kept
