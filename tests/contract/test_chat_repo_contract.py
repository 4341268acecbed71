"""The ChatService's users, rooms, members and messages on both backends: ``chat/repo.py``
on SQLite and ``pg/chat_repo.py`` on PostgreSQL answer the same calls alike (teams come from
the runtime's channel mapping, in the same database on both). PostgreSQL only: two
transactions creating one e-mail's user, or storing one post's message, end with one row."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import psycopg
import pytest

from mchat_actors.chat import repo as sqlite_repo
from mchat_actors.chat.schema import connect as chat_connect
from mchat_actors.pg import chat_repo as pg_repo
from mchat_actors.pg.schema import migrate as pg_migrate
from mchat_actors.store import migrate as runtime_migrate

from .helpers import BACKENDS


@pytest.fixture(params=BACKENDS)
def chat(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[ModuleType, Any]]:
    """(the backend's repo module, an autocommit connection)."""
    if request.param == "sqlite":
        conn = chat_connect(str(tmp_path / "chat.db"))
        import sqlite_utils

        runtime_migrate(sqlite_utils.Database(conn))  # mchat_channel_mapping (teams)
        yield sqlite_repo, conn
        conn.close()
        return
    with psycopg.connect(request.getfixturevalue("pg_url"), autocommit=True) as conn:
        pg_migrate(conn)
        yield pg_repo, conn


def _map(conn: Any, channel: str, team: str, room: str) -> None:
    mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    conn.execute("INSERT INTO mchat_channel_mapping (mchat_channel_id, mchat_team_id,"
                 " agent_room_id, created_at, updated_at) VALUES "
                 f"({mark}, {mark}, {mark}, 0, 0)", (channel, team, room))


def test_users_rooms_members_and_teams_answer_alike(chat: tuple[ModuleType, Any]) -> None:
    repo, conn = chat
    kim = repo.create_user(conn, "kim", "Kim@Example.com", 1)
    assert repo.create_user(conn, "kim again", " kim@example.COM ", 2) == kim
    assert repo.find_user_by_email(conn, "KIM@example.com") == kim
    lee = repo.create_user(conn, "lee", None, 3)
    nobody = repo.create_user(conn, "nobody", None, 3)
    assert lee != nobody and repo.user_exists(conn, lee.id)
    quality = repo.create_room(conn, "quality", "channel", 4)
    secret = repo.create_room(conn, "secret", "private", 4)
    other = repo.create_room(conn, "other team", "channel", 4)
    same_team = repo.create_room(conn, "same team", "channel", 4)
    dm = repo.create_room(conn, "dm", "direct", 4)
    assert repo.room_exists(conn, quality.id) and not repo.room_exists(conn, "nope")
    _map(conn, "c-quality", "team-a", quality.id)
    _map(conn, "c-secret", "team-a", secret.id)
    _map(conn, "c-other", "team-b", other.id)
    _map(conn, "c-same", "team-a", same_team.id)
    repo.add_member(conn, quality.id, kim.id, 5)
    repo.add_member(conn, quality.id, kim.id, 6)  # twice: one row
    repo.add_member(conn, secret.id, lee.id, 5)
    assert repo.room_members(conn, quality.id) == {kim.id}
    assert repo.set_room_members(conn, quality.id, [kim.id, lee.id], 7) == (1, 0)
    assert repo.set_room_members(conn, quality.id, [lee.id], 8) == (0, 1)
    assert repo.room_kind(conn, secret.id) == "private" and repo.room_kind(conn, "x") == "channel"
    assert repo.room_team(conn, quality.id) == "team-a" and repo.room_team(conn, dm.id) == ""
    assert repo.user_teams(conn, lee.id) == {"team-a"}
    assert repo.member_rooms(conn, lee.id, dm.id) == [dm.id, *sorted([quality.id, secret.id])]
    # lee sees the rooms they are in and team-a's public rooms, not team-b's nor the others'
    visible = repo.visible_rooms(conn, lee.id, quality.id)
    assert visible[0] == quality.id
    assert set(visible) == {quality.id, secret.id, same_team.id}
    infos = repo.room_infos(conn, [quality.id, secret.id, "unknown"])
    assert set(infos) == {quality.id, secret.id}
    assert infos[secret.id].kind == "private" and infos[secret.id].members == {lee.id}
    assert infos[quality.id].team == "team-a"
    repo.remove_member(conn, secret.id, lee.id)
    assert repo.room_members(conn, secret.id) == frozenset()


def test_messages_answer_alike(chat: tuple[ModuleType, Any]) -> None:
    repo, conn = chat
    kim = repo.create_user(conn, "kim", None, 1)
    room = repo.create_room(conn, "quality", "channel", 1)
    first = repo.insert_message(conn, room=room.id, user=kim.id, content="X부품 불량률 12%",
                                role="user", post_id="p1", root_id=None, created_at_ms=100,
                                permalink="http://mm/_redirect/pl/p1")
    assert first.is_new and first.content == "X부품 불량률 12%" and first.mchat_post_id == "p1"
    again = repo.insert_message(conn, room=room.id, user=kim.id, content="other text",
                                role="user", post_id="p1", root_id=None, created_at_ms=101)
    assert not again.is_new and again.id == first.id and again.content == "X부품 불량률 12%"
    for n in range(2, 5):
        repo.insert_message(conn, room=room.id, user=kim.id, content=f"메시지 {n}", role="user",
                            post_id=f"p{n}", root_id="p1", created_at_ms=100 + n)
    repo.insert_message(conn, room=room.id, user=None, content="답변", role="assistant",
                        post_id=None, root_id=None, created_at_ms=110)
    assert repo.edit_message(conn, "p2", "메시지 2 (고침)", 200)
    assert not repo.edit_message(conn, "missing", "x", 200)
    assert repo.delete_message(conn, "p3", 201) and not repo.delete_message(conn, "p3", 202)
    rows = repo.room_messages(conn, room.id)
    assert [r["content"] for r in rows] == ["X부품 불량률 12%", "메시지 2 (고침)", "메시지 4"]
    assert {r["user_name"] for r in rows} == {"kim"}
    assert [r["content"] for r in repo.room_messages(conn, room.id, limit=2)] == [
        "메시지 2 (고침)", "메시지 4"]
    assert [r["content"] for r in repo.room_messages(conn, room.id, since_ms=102,
                                                       until_ms=103)] == ["메시지 2 (고침)"]
    ids = [int(r["id"]) for r in rows[:2]]
    assert [r["mchat_post_id"] for r in repo.room_messages(conn, room.id, ids=ids)] == [
        "p1", "p2"]
    row = repo.message_by_post(conn, "p1")
    assert row is not None and row["permalink"] == "http://mm/_redirect/pl/p1"
    assert repo.message_by_post(conn, "nope") is None


def _race(pg_url: str, call: Any) -> tuple[Any, Any]:
    """``call(conn)`` in two transactions: the second starts while the first has not
    committed, must be seen waiting, and finishes after the first commits."""
    import threading

    with psycopg.connect(pg_url) as one, psycopg.connect(pg_url) as two:
        first = call(one)
        results: list[Any] = []

        def second() -> None:
            results.append(call(two))
            two.commit()

        worker = threading.Thread(target=second)
        worker.start()
        worker.join(0.3)
        assert worker.is_alive()  # blocked on the first one's unique key
        one.commit()
        worker.join(10)
    return first, results[0]


@pytest.mark.pg
def test_two_transactions_make_one_user_and_one_message(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as setup:
        pg_migrate(setup)
        room = pg_repo.create_room(setup, "r", "channel", 0)
    first, second = _race(pg_url, lambda c: pg_repo.create_user(c, "kim", "kim@example.com", 1))
    assert second == first
    m1, m2 = _race(pg_url, lambda c: pg_repo.insert_message(
        c, room=room.id, user=first.id, content="a", role="user", post_id="p1", root_id=None,
        created_at_ms=1))
    assert m1.is_new and not m2.is_new and m2.id == m1.id
    with psycopg.connect(pg_url) as check:
        assert check.execute("SELECT count(*) FROM users").fetchone() == (1,)
        assert check.execute("SELECT count(*) FROM chat_messages").fetchone() == (1,)


def test_the_audience_rules_read_alike(chat: tuple[ModuleType, Any]) -> None:
    """``units.audience_scope`` (one implementation) over either backend's queries."""
    from mchat_actors.chat import units

    repo, conn = chat
    kim, lee = repo.create_user(conn, "kim", None, 1), repo.create_user(conn, "lee", None, 1)
    a_room = repo.create_room(conn, "a", "channel", 1)
    b_room = repo.create_room(conn, "b", "channel", 1)
    dm = repo.create_room(conn, "dm", "direct", 1)
    _map(conn, "ca", "team-a", a_room.id)
    _map(conn, "cb", "team-b", b_room.id)
    repo.set_room_members(conn, a_room.id, [kim.id, lee.id], 2)
    repo.set_room_members(conn, b_room.id, [kim.id], 2)
    repo.set_room_members(conn, dm.id, [kim.id, lee.id], 2)
    audience, infos = units.audience_scope(conn, dm.id, kim.id, False, [a_room.id, b_room.id],
                                           q=repo)
    assert audience.teams == {"team-a"}  # a DM's readers: the teams all of them are in
    assert audience.readers == {kim.id, lee.id} and audience.kind == "direct"
    assert {r: i.team for r, i in infos.items()} == {a_room.id: "team-a", b_room.id: "team-b"}
    alone, _ = units.audience_scope(conn, dm.id, kim.id, True, [], q=repo)
    assert alone.teams == {"team-a", "team-b"} and alone.readers == {kim.id}
