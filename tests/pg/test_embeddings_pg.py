"""Dense retrieval's storage on PostgreSQL (``pg.embeddings``) and its confidentiality.

The worst case for a leak is a vector search that is not scoped: here every memory's vector IS
the question's vector (each one an exact hit), so anything a scan did not filter out would come
back. A search (the fused one, and the vector list alone) returns only what the asker may see:
room memories of the rooms visible to them, their own personal memories, never a forgotten,
superseded or retracted one. The plumbing (batching, outage, re-embedding) runs on PostgreSQL
in ``tests/chat/test_embeddings.py`` (parametrized over both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mchat_actors.chat.embeddings import rank
from mchat_actors.pg import chat_repo
from mchat_actors.pg import embeddings as pg_embeddings
from mchat_actors.pg.chat_db import PgQueries
from mchat_actors.pg.database import open_database
from mchat_actors.pg.embeddings import VectorCache
from tests.chat.test_visibility_property import ROOMS, USERS, WORDS, memory_specs

pytestmark = pytest.mark.pg

QUESTION = [0.25, -1.0, 0.5, 2.0]


@pytest.fixture
def pg_conn(pg_url: str, kiwi: Any) -> Iterator[tuple[psycopg.Connection[Any], PgQueries]]:
    """A migrated database's connection; each example runs in a transaction rolled back."""
    import trio

    async def migrate() -> None:
        async with open_database(pg_url):
            pass

    trio.run(migrate)
    with psycopg.connect(pg_url) as conn:
        yield conn, PgQueries(kiwi)


def _save(conn: psycopg.Connection[Any], q: PgQueries, text: str, scope: str, room: str,
          author: str) -> int:
    memory, _ = q.save_memory(conn, text, scope=scope, kind="remember", room=room,
                              owner=author if scope == "personal" else None, author=author,
                              source_post_id=None, permalink=None, now_ms=0)
    return int(memory.id[1:])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members=st.sets(st.tuples(st.sampled_from(ROOMS), st.sampled_from(USERS))),
       memories=st.lists(memory_specs, min_size=1, max_size=25),
       gone=st.sets(st.integers(0, 24)), asker=st.sampled_from(USERS),
       room=st.sampled_from(ROOMS),
       query=st.one_of(st.just(""), st.lists(st.sampled_from(WORDS), min_size=1,
                                              max_size=3).map(" ".join)))
def test_a_vector_hit_outside_the_audience_never_comes_back(
        pg_conn: tuple[psycopg.Connection[Any], PgQueries], members: set[tuple[str, str]],
        memories: list[tuple[str, str, str, str]], gone: set[int], asker: str, room: str,
        query: str) -> None:
    conn, q = pg_conn
    with conn.transaction(force_rollback=True):
        for member_room, user in members:
            q.add_member(conn, member_room, user, 0)
        ids = [_save(conn, q, *spec) for spec in memories]
        pg_embeddings.store(conn, "emb-1", [(i, QUESTION) for i in ids])
        rooms = chat_repo.visible_rooms(conn, asker, room)
        caches = [None, VectorCache(max_vectors=3), VectorCache()]
        for cache in caches[1:]:  # warmed with every vector, before some are forgotten
            pg_embeddings.nearest(conn, QUESTION, "emb-1", rooms=ROOMS, owner=asker,
                                  cache=cache)
        hidden = {ids[i] for i in gone if i < len(ids)}
        for memory_id in hidden:  # forgotten: its vector stays, it must not be found
            q.forget_memory(conn, memory_id, actor="u0", now_ms=1)
        current = {int(r[0]) for r in conn.execute(
            "SELECT id FROM memories WHERE valid_to IS NULL AND forgotten_at IS NULL"
            " AND deleted_at IS NULL").fetchall()}
        may_see = {int(r[0]) for r in conn.execute(
            "SELECT id FROM memories WHERE (scope = 'room' AND room_id = ANY(%s))"
            " OR (scope = 'personal' AND owner_id = %s)", (rooms, asker)).fetchall()} & current
        for cache in caches:  # visibility comes from SQL, never from what a cache holds
            near = pg_embeddings.nearest(conn, QUESTION, "emb-1", rooms=rooms, owner=asker,
                                         limit=100, cache=cache)
            assert {i for i, _ in near} == may_see  # all of them, and nothing else
            assert all(abs(similarity - 1.0) < 1e-6 for _, similarity in near)
        found, left = q.search_scoped(conn, query, rooms=rooms, owner=asker,
                                      current_room=room, now_ms=0, limit=50,
                                      dense=(QUESTION, "emb-1"))
        for memory in [*found, *left]:
            assert int(memory.id[1:]) in may_see
            if memory.scope == "room":
                assert memory.room_id == room or (memory.room_id, asker) in members
            else:
                assert memory.owner_id == asker
        if may_see and not query:  # found by meaning alone, with its similarity
            assert found and all(m.similarity is not None for m in found)


def test_vectors_of_another_model_or_length_are_not_ranked(
        pg_conn: tuple[psycopg.Connection[Any], PgQueries]) -> None:
    conn, q = pg_conn
    with conn.transaction(force_rollback=True):
        a, b, c, d = (_save(conn, q, text, "room", "r1", "u1") for text in (
            "납기 6월 2일", "수율 98%", "X부품 불량률 12%", "배포는 금요일"))
        pg_embeddings.store(conn, "emb-1", [(a, QUESTION), (b, [1.0, 0.0, 0.0, 0.0]),
                                            (c, [1.0, 2.0])])
        pg_embeddings.store(conn, "emb-2", [(d, QUESTION)])
        near = pg_embeddings.nearest(conn, QUESTION, "emb-1", rooms=["r1"], owner="u1")
        assert [i for i, _ in near] == [a, b]
        assert pg_embeddings.nearest(conn, [0.0] * 4, "emb-1", rooms=["r1"], owner="u1") == []
        # pending: no vector of that model (a wrong-length one counts as one: it is not re-sent)
        assert [i for i, _ in pg_embeddings.pending(conn, "emb-2", 10)] == [a, b, c]
        pg_embeddings.store(conn, "emb-2", [(a, QUESTION)])
        assert [i for i, _ in pg_embeddings.pending(conn, "emb-1", 10)] == [a, d]


def test_the_cache_ranks_exactly_as_the_scan(
        pg_conn: tuple[psycopg.Connection[Any], PgQueries]) -> None:
    """Same ids, same order, same similarities with no cache, a cache too small for all of
    them (the rest read at each search) and a large one, cold and warm; a model change
    empties it."""
    conn, _ = pg_conn
    rng = np.random.default_rng(5)
    with conn.transaction(force_rollback=True):
        ids = [int(conn.execute(
            "INSERT INTO memories (content, norm, scope, kind, room_id, created_at, updated_at,"
            " valid_from) VALUES (%s, %s, 'room', 'remember', %s, 0, 0, 0) RETURNING id",
            (f"m{n}", f"m{n}", f"r{n % 3}")).fetchone()[0]) for n in range(60)]
        vectors = rng.normal(size=(len(ids), 16)).astype(np.float32)
        vectors[4] = vectors[9]  # a tie: broken by id
        pg_embeddings.store(conn, "emb-1", [(i, v.tolist())
                                            for i, v in zip(ids, vectors, strict=True)])
        small, large = VectorCache(max_vectors=10), VectorCache()
        for question in (vectors[9], rng.normal(size=16), vectors[20] + 0.1 * vectors[21]):
            plain = pg_embeddings.nearest(conn, question.tolist(), "emb-1", rooms=["r0", "r1"],
                                          owner="u1", limit=25)
            assert len(plain) == 25
            for cache in (small, large, small, large):
                got = pg_embeddings.nearest(conn, question.tolist(), "emb-1",
                                            rooms=["r0", "r1"], owner="u1", limit=25,
                                            cache=cache)
                assert [i for i, _ in got] == [i for i, _ in plain]
                assert np.allclose([s for _, s in got], [s for _, s in plain], atol=1e-5)
        assert len(small) == 10 and len(large) == 40  # the visible ones, as many as fit
        pg_embeddings.store(conn, "emb-2", [(ids[0], vectors[0].tolist())])
        assert [i for i, _ in pg_embeddings.nearest(conn, vectors[0].tolist(), "emb-2",
                                                    rooms=["r0"], owner="u1",
                                                    cache=large)] == [ids[0]]
        assert len(large) == 1


def test_the_scan_ranks_as_the_sqlite_fallback_does() -> None:
    """The one NumPy ranking both backends use: exact cosine order, wrong lengths skipped."""
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    query = vectors[7] + 0.01 * vectors[3]
    rows = [(i, v.tobytes()) for i, v in enumerate(vectors)] + [(99, b"\0" * 12)]
    got = rank(query.astype(np.float32), rows, 5)
    sims = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    assert [i for i, _ in got] == [int(i) for i in np.argsort(-sims)[:5]]
    assert got[0][0] == 7 and abs(got[0][1] - float(sims[7])) < 1e-5
