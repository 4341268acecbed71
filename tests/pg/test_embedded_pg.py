"""The embedded ChatService on PostgreSQL (``pg.chat_db``): the same service object as on
SQLite, its units run with ``PgQueries``. /remember then a question in other words, versions
(a new fact replaces, never overwrites), retraction on edit and delete, /forget, /search,
history, the admin calls; a private room's memory never shown outside its audience (the
confidentiality and visibility properties run on PostgreSQL with the same checks)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mchat_actors.chat import handlers
from mchat_actors.errors import ChatServiceError
from mchat_actors.pg import chat_repo
from mchat_actors.pg.chat_db import PgQueries, open_pg_embedded_chat_service
from mchat_actors.pg.database import open_database
from tests.chat import test_confidentiality_property as confidentiality
from tests.chat import test_team_confidentiality_property as teams
from tests.chat.test_visibility_property import ROOMS, USERS, WORDS, memory_specs

pytestmark = pytest.mark.pg


async def test_remember_then_ask_in_other_words_on_postgresql(pg_url: str, kiwi: Any) -> None:
    now = [1_800_000_000.0]
    async with open_database(pg_url) as db, open_pg_embedded_chat_service(
            db, analyzer=kiwi, clock=lambda: now[0]) as svc:
        kim = await svc.create_user(name="kim", email="kim@example.com")
        lee = await svc.create_user(name="lee", email="lee@example.com")
        quality = await svc.create_room(name="quality", kind="channel")
        secret = await svc.create_room(name="secret", kind="private")
        for room in (quality, secret):
            await svc.add_room_member(room.id, kim.id)
        await svc.add_room_member(quality.id, lee.id)
        done = await svc.send_message(quality.id, kim.id, "@ai /remember X부품 불량률 12%",
                                      post_id="p1", respond=True,
                                      prompt="/remember X부품 불량률 12%")
        assert "기억했습니다" in (done.assistant_message or "")
        again = await svc.send_message(quality.id, kim.id, "@ai /remember X부품 불량률 12%",
                                       post_id="p1", respond=True,
                                       prompt="/remember X부품 불량률 12%")
        assert again.assistant_message == done.assistant_message  # stored answer, not re-run
        await svc.send_message(secret.id, kim.id, "/remember 코드명 블루버드 출시 6월",
                               post_id="p2", respond=True,
                               prompt="/remember 코드명 블루버드 출시 6월")
        asked = await svc.send_message(quality.id, lee.id, "@ai X부품 불량 비율 얼마였어?",
                                       post_id="q1", respond=True,
                                       prompt="X부품 불량 비율 얼마였어?")
        assert "12%" in (asked.assistant_message or "")
        # the one-commit path: the answer, and the unit storing it in the runtime's transaction
        prepared = await svc.prepare_answer(_message(quality.id, lee.id),
                                            prompt="X부품 불량 비율 얼마였어?")
        assert prepared is not None and not prepared.seen and "12%" in prepared.answer
        assert prepared.work is not None
        assert await db.run(lambda c: c.execute(
            "SELECT count(*) FROM chat_messages WHERE mchat_post_id = 'x1'").fetchone()) == (0,)
        await db.run(prepared.work)  # as the runtime's finish_post runs it
        stored = await svc.send_message(quality.id, lee.id, "@ai 불량률?", post_id="x1",
                                        respond=True, prompt="X부품 불량 비율 얼마였어?")
        assert not stored.user_message.is_new and stored.assistant_message == prepared.answer
        handled = await svc.prepare_answer(_message(quality.id, lee.id), prompt="불량률?",
                                           seen=lambda conn: True)
        assert handled is not None and handled.seen and handled.work is None
        # the private room's memory: not in the public channel, even for its member kim
        leak = await svc.send_message(quality.id, kim.id, "@ai 블루버드 출시 언제?",
                                      post_id="q2", respond=True, prompt="블루버드 출시 언제?")
        assert "6월" not in (leak.assistant_message or "")
        inside = await svc.send_message(secret.id, kim.id, "@ai 블루버드 언제 나와?",
                                        post_id="q3", respond=True, prompt="블루버드 언제 나와?")
        assert "6월" in (inside.assistant_message or "")
        found, hidden = await svc.search_scoped(quality.id, lee.id, "블루버드 출시")
        assert found == [] and hidden == 0  # lee may not even know it exists
        # a new fact: a new version, the old one kept in the history, never overwritten
        now[0] += 60
        await svc.send_message(quality.id, kim.id, "/remember X부품 불량률 9%", post_id="p3",
                               respond=True, prompt="/remember X부품 불량률 9%")
        current = await svc.search(quality.id, lee.id, "X부품 불량률")
        assert [m.content for m in current][:1] == ["X부품 불량률 9%"]
        chain = await svc.memory_versions(int(current[0].id[1:]))
        assert [m.content for m in chain] == ["X부품 불량률 12%", "X부품 불량률 9%"]
        history = await svc.send_message(quality.id, kim.id, "/memory history X부품",
                                         post_id="h1", respond=True,
                                         prompt="/memory history X부품")
        assert "12%" in (history.assistant_message or "") and history.ephemeral
        # an edited /remember post: a new version; a deleted post: its memories retracted
        await svc.edit_message(post_id="p3", content="/remember X부품 불량률 8%")
        assert [m.content for m in await svc.search(quality.id, lee.id, "X부품 불량률")][:1] \
            == ["X부품 불량률 8%"]
        await svc.delete_message(post_id="p3")
        assert all("8%" not in m.content
                   for m in await svc.search(quality.id, lee.id, "X부품 불량률"))
        searched = await svc.send_message(secret.id, kim.id, "/search 블루버드", post_id="s1",
                                          respond=True, prompt="/search 블루버드")
        assert "블루버드" in (searched.assistant_message or "") and searched.ephemeral
        forgot = await svc.send_message(secret.id, kim.id, "/forget 코드명 블루버드 출시 6월",
                                        post_id="f1", respond=True,
                                        prompt="/forget 코드명 블루버드 출시 6월")
        assert "잊었습니다" in (forgot.assistant_message or "")
        assert await svc.search(secret.id, kim.id, "블루버드") == []
        forgotten = await svc.admin_memories(state="forgotten")
        assert {m.content for m in forgotten} == {"코드명 블루버드 출시 6월"}  # both copies
        [room_copy] = [m for m in forgotten if m.scope == "room"]
        assert await svc.restore_memory(int(room_copy.id[1:]), actor="admin")
        trail = await svc.memory_audit(int(room_copy.id[1:]))
        assert [t["action"] for t in trail] == ["created", "forgotten", "restored"]
        listed = await svc.send_message(secret.id, kim.id, "/memory", post_id="l1",
                                        respond=True, prompt="/memory")
        assert "블루버드" in (listed.assistant_message or "")  # restored
        await svc.send_message(quality.id, lee.id, "내일 오전 10시 3층에서 품질 회의 합니다",
                               post_id="m1")
        summary = await svc.summarize_room(quality.id, hours=1)
        assert summary is not None and "품질 회의" in summary.content
        with pytest.raises(ChatServiceError, match="no PostgreSQL twin"):
            await svc.db(handlers._labelled)  # noqa: SLF001 - a chat function with no twin
    with psycopg.connect(pg_url) as conn:  # all of it on PostgreSQL
        (count,) = conn.execute("SELECT count(*) FROM memories").fetchone() or (0,)
        assert count >= 6


def _message(room: str, user: str) -> Any:
    from mchat_actors.chat.protocol import NewMessage

    return NewMessage(room=room, user=user, content="@ai 불량률?", post_id="x1",  # type: ignore[arg-type]
                      root_id=None, created_at_ms=None, permalink=None)


@pytest.fixture
def pg_conn(pg_url: str, kiwi: Any) -> Iterator[tuple[psycopg.Connection[Any], PgQueries]]:
    """A migrated database's connection; each hypothesis example runs in a transaction rolled
    back at its end."""
    import trio

    async def migrate() -> None:
        async with open_database(pg_url):
            pass

    trio.run(migrate)
    with psycopg.connect(pg_url) as conn:
        yield conn, PgQueries(kiwi)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(*confidentiality._GROUP_LEAK)  # noqa: SLF001
@example(*confidentiality._CHANNEL_LEAK)  # noqa: SLF001
@example(*confidentiality._LEFT)  # noqa: SLF001
@given(initial=st.sets(st.tuples(st.sampled_from(sorted(confidentiality.KINDS)),
                                 st.sampled_from(confidentiality.USERS))),
       steps=st.lists(st.one_of(confidentiality.remember, confidentiality.membership,
                                confidentiality.question), min_size=1, max_size=30))
def test_no_reply_shows_a_memory_outside_its_audience_on_postgresql(
        pg_conn: tuple[psycopg.Connection[Any], PgQueries],
        initial: set[tuple[str, str]], steps: list[tuple[object, ...]]) -> None:
    conn, q = pg_conn
    with conn.transaction(force_rollback=True):
        for room, kind in confidentiality.KINDS.items():
            conn.execute("INSERT INTO chat_rooms (id, name, kind, created_at)"
                         " VALUES (%s, %s, %s, 0)", (room, room, kind))
        confidentiality.check_steps(conn, q, initial, steps)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members=st.sets(st.tuples(st.sampled_from(ROOMS), st.sampled_from(USERS))),
       memories=st.lists(memory_specs, max_size=25), asker=st.sampled_from(USERS),
       room=st.sampled_from(ROOMS),
       query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join))
def test_search_returns_only_visible_memories_on_postgresql(
        pg_conn: tuple[psycopg.Connection[Any], PgQueries], members: set[tuple[str, str]],
        memories: list[tuple[str, str, str, str]], asker: str, room: str, query: str) -> None:
    conn, q = pg_conn
    with conn.transaction(force_rollback=True):
        for member_room, user in members:
            q.add_member(conn, member_room, user, 0)
        for text, scope, memory_room, author in memories:
            q.save_memory(conn, text, scope=scope, kind="remember", room=memory_room,
                          owner=author if scope == "personal" else None, author=author,
                          source_post_id=None, permalink=None, now_ms=0)
        found = q.search_memories(conn, query, rooms=chat_repo.visible_rooms(conn, asker, room),
                                  owner=asker, current_room=room, now_ms=0, limit=50)
        for memory in found:
            if memory.scope == "room":
                assert memory.room_id == room or (memory.room_id, asker) in members
            else:
                assert memory.owner_id == asker




async def test_extraction_with_an_llm_on_postgresql(pg_url: str, kiwi: Any) -> None:
    """Memories the LLM finds in a room's messages are stored on PostgreSQL (room scope, the
    source message's author and post), and a deleted post's extracted memory is retracted."""
    from tests.chat.chat_fakes import FakeLLM
    from tests.chat.test_embedded_extraction import extract_every_line

    llm = FakeLLM(extract_every_line)
    async with open_database(pg_url) as db, open_pg_embedded_chat_service(
            db, analyzer=kiwi, llm=llm, extraction_debounce_s=3600.0,
            clock=lambda: 1_800_000_000.0) as svc:
        kim = await svc.create_user(name="kim", email="kim@example.com")
        room = await svc.create_room(name="quality", kind="private")
        await svc.add_room_member(room.id, kim.id)
        await svc.send_message(room.id, kim.id, "Y부품 출하 검사는 매주 목요일", post_id="e1")
        await svc.send_message(room.id, kim.id, "금형 3호기 수리 완료", post_id="e2")
        saved = await svc.extract_memories(room.id)
        assert sorted(m.content for m in saved) == ["Y부품 출하 검사는 매주 목요일",
                                                    "금형 3호기 수리 완료"]
        assert {m.scope for m in saved} == {"room"} and {m.kind for m in saved} == {"extracted"}
        found = await svc.search(room.id, kim.id, "Y부품 출하 검사 언제")
        assert [m.content for m in found][:1] == ["Y부품 출하 검사는 매주 목요일"]
        llm.reply = "[]"  # the update decision: no target (the rules decide)
        done = await svc.send_message(room.id, kim.id, "/remember 금형 3호기 점검 주기 2주",
                                      post_id="e3", respond=True,
                                      prompt="/remember 금형 3호기 점검 주기 2주")
        assert "기억했습니다" in (done.assistant_message or "")  # _update_candidates ran on PG
        await svc.delete_message(post_id="e1")
        assert all("Y부품" not in m.content
                   for m in await svc.search(room.id, kim.id, "Y부품 출하 검사 언제"))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(*teams._CROSS_TEAM)  # noqa: SLF001
@given(initial=st.sets(st.tuples(st.sampled_from(sorted(teams.ROOMS)),
                                 st.sampled_from(teams.USERS))),
       steps=st.lists(st.one_of(teams.remember, teams.membership, teams.question),
                      min_size=1, max_size=25))
def test_no_reply_shows_another_teams_or_a_private_memory_on_postgresql(
        pg_conn: tuple[psycopg.Connection[Any], PgQueries],
        initial: set[tuple[str, str]], steps: list[tuple[object, ...]]) -> None:
    """The rooms' teams come from the runtime's channel mapping in the same database."""
    conn, q = pg_conn
    with conn.transaction(force_rollback=True):
        for room, (kind, team) in teams.ROOMS.items():
            conn.execute("INSERT INTO chat_rooms (id, name, kind, created_at)"
                         " VALUES (%s, %s, %s, 0)", (room, room, kind))
            if room != "unmapped":
                conn.execute("INSERT INTO mchat_channel_mapping (mchat_channel_id,"
                             " mchat_team_id, agent_room_id, created_at, updated_at)"
                             " VALUES (%s, %s, %s, 0, 0)", (f"ch-{room}", team, room))
        teams.check_team_steps(conn, q, initial, steps)
