"""Versioned memories on both backends: ``chat/memory_store.py`` (SQLite, FTS5) and
``pg/memory_store.py`` (PostgreSQL, ``pg.search``) give the same outcomes, versions, audit
trails and search results for the same calls. PostgreSQL only: two transactions saving one
subject into one room at once end as one chain (the place's advisory lock), never as two
current memories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import psycopg
import pytest

from mchat_actors.chat import memory_store as sqlite_memories
from mchat_actors.chat import search as sqlite_search
from mchat_actors.chat.analysis import PlainAnalyzer
from mchat_actors.chat.schema import connect as chat_connect
from mchat_actors.pg import memory_store as pg_memories
from mchat_actors.pg import search as pg_search
from mchat_actors.pg.schema import migrate as pg_migrate

from .helpers import BACKENDS
from .test_chat_repo_contract import _race


@attrs.frozen
class Memories:
    """One backend's memory functions with the same call shapes."""

    conn: Any
    save: Callable[..., Any]
    restore: Callable[..., bool]
    search: Callable[..., list[Any]]
    m: Any  # the module (the functions that take no analyzer)


@pytest.fixture(params=BACKENDS)
def memories(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Memories]:
    analyzer = PlainAnalyzer()
    if request.param == "sqlite":
        conn = chat_connect(str(tmp_path / "m.db"), analyzer)
        yield Memories(
            conn, lambda *a, **k: sqlite_memories.save_memory(conn, *a, **k),
            lambda *a, **k: sqlite_memories.restore_memory(conn, *a, **k),
            lambda text, **k: sqlite_search.search_memories(conn, text, **k), sqlite_memories)
        conn.close()
        return
    with psycopg.connect(request.getfixturevalue("pg_url"), autocommit=True) as conn:
        pg_migrate(conn)
        yield Memories(
            conn, lambda *a, **k: pg_memories.save_memory(conn, analyzer, *a, **k),
            lambda *a, **k: pg_memories.restore_memory(conn, analyzer, *a, **k),
            lambda text, **k: pg_search.search_memories(conn, analyzer, text, **k), pg_memories)


def room_memory(mem: Memories, text: str, now_ms: int, **extra: Any) -> tuple[Any, str]:
    return mem.save(text, scope="room", kind="remember", room="r1", owner=None, author="kim",
                    source_post_id=extra.pop("post", None), permalink=None, now_ms=now_ms,
                    **extra)


def found(mem: Memories, text: str, now_ms: int) -> list[str]:
    return [r.content for r in mem.search(text, rooms=["r1"], owner="kim", current_room="r1",
                                          now_ms=now_ms)]


def test_versions_forget_restore_and_retract_alike(memories: Memories) -> None:
    mem, m = memories, memories.m
    first, outcome = room_memory(mem, "X부품  불량률 12%  ", 1_000, post="p1")
    assert outcome == "added" and first.content == "X부품 불량률 12%"
    assert room_memory(mem, "X부품 불량률 12%", 2_000)[1] == "unchanged"
    second, outcome = room_memory(mem, "X부품 불량률은 15%로 올랐다", 3_000, post="p2")
    assert outcome == "superseded" and second.subject == first.subject == "x부품 불량률"
    old_id, new_id = int(first.id[1:]), int(second.id[1:])
    chain = m.versions(mem.conn, new_id)
    assert [r["id"] for r in chain] == [old_id, new_id]
    assert chain[0]["valid_to"] == 3_000 and chain[0]["superseded_by"] == new_id
    assert m.previous_version(mem.conn, new_id)["id"] == old_id
    assert found(mem, "X부품 불량률", 4_000) == ["X부품 불량률은 15%로 올랐다"]  # old left
    assert m.forget_memory(mem.conn, new_id, actor="lee", now_ms=5_000)
    assert not m.forget_memory(mem.conn, new_id, actor="lee", now_ms=5_001)
    assert found(mem, "X부품 불량률", 6_000) == []
    assert mem.restore(new_id, actor="admin", now_ms=7_000)
    assert not mem.restore(new_id, actor="admin", now_ms=7_001)
    assert found(mem, "X부품 불량률", 8_000) == ["X부품 불량률은 15%로 올랐다"]
    assert [r["id"] for r in m.memories_from_post(mem.conn, "p2")] == [new_id]
    m.retract_memory(mem.conn, new_id, 9_000, reason="post deleted")
    assert m.memories_from_post(mem.conn, "p2") == []
    assert found(mem, "X부품 불량률", 10_000) == []
    assert [r["action"] for r in m.audit_trail(mem.conn, new_id)] == [
        "created", "forgotten", "restored", "retracted"]
    assert [r["action"] for r in m.audit_trail(mem.conn, old_id)] == ["created", "superseded"]


def test_places_summaries_and_masking_alike(memories: Memories) -> None:
    mem, m = memories, memories.m
    mine, _ = mem.save("회의는 목요일 3시, 비밀번호: hunter2-Pa55", scope="personal",
                       kind="remember", room=None, owner="kim", author="kim",
                       source_post_id=None, permalink=None, now_ms=1_000)
    assert "hunter2-Pa55" not in mine.content  # stored masked on both
    room, outcome = room_memory(mem, "회의는 목요일 3시, 비밀번호: hunter2-Pa55", 1_000)
    assert outcome == "added" and room.id != mine.id  # another place: another memory
    a, _ = mem.save("요약 하나", scope="room", kind="summary", room="r1", owner=None,
                    author=None, source_post_id=None, permalink=None, now_ms=2_000,
                    window_key="24h:1")
    b, outcome = mem.save("요약 둘", scope="room", kind="summary", room="r1", owner=None,
                          author=None, source_post_id=None, permalink=None, now_ms=3_000,
                          window_key="24h:1")
    assert outcome == "superseded" and m.previous_version(mem.conn, int(b.id[1:]))["id"] == int(
        a.id[1:])
    assert [r.content for r in m.recent_room_memories(mem.conn, "r1", 10)] == [
        "요약 둘", room.content]
    assert m.get_memory(mem.conn, int(a.id[1:])) is None  # superseded: not current
    assert m.get_memory(mem.conn, int(a.id[1:]), current=False) is not None


@pytest.mark.pg
def test_two_transactions_saving_one_subject_make_one_chain(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as setup:
        pg_migrate(setup)
    analyzer = PlainAnalyzer()
    texts = iter(["X부품 불량률 12%", "X부품 불량률 15%"])

    def save(conn: Any) -> tuple[Any, str]:
        return pg_memories.save_memory(conn, analyzer, next(texts), scope="room",
                                       kind="remember", room="r1", owner=None, author="kim",
                                       source_post_id=None, permalink=None, now_ms=1_000)

    (first, o1), (second, o2) = _race(pg_url, save)
    assert (o1, o2) == ("added", "superseded")
    with psycopg.connect(pg_url) as check:
        current = check.execute("SELECT id FROM memories WHERE valid_to IS NULL").fetchall()
        assert current == [(int(second.id[1:]),)]
        assert check.execute("SELECT count(*) FROM memories_search").fetchone() == (1,)
