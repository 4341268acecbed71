"""PostgreSQL only: what SQLite's single writer never sees, two transactions at once. The
second must be seen waiting on the first's lock (``pg_stat_activity``), then both commit,
and the promise of the write still holds."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from mchat_actors.chat.protocol import NewMessage
from mchat_actors.pg.chat_messages import PgSharedMessages
from mchat_actors.posts import PlainPost

from .helpers import Conn, post, reply, second


@pytest.mark.pg
def test_two_transactions_recording_one_post_make_one_row(pg: Any) -> None:
    repos, connect = pg
    setup = connect()
    repos.mapping.insert_channel(setup, channel_id="c", team_id="t", name="c",
                                 display_name="c", channel_type="O", room_id="r")
    setup.commit()
    second(connect,
           lambda a: repos.posts.record_post(a, post(1, update_at=5), status="s", source="ws"),
           lambda b: repos.posts.record_post(b, post(1, update_at=9), status="s", source="cu"))
    assert setup.execute("SELECT count(*), max(update_at), min(source) FROM mchat_posts"
                         ).fetchone() == (1, 9, "ws")
    assert repos.posts.channel_cursor(setup, "c") == "p1"


@pytest.mark.pg
def test_the_cursor_never_moves_back_when_commits_come_in_the_other_order(pg: Any) -> None:
    repos, connect = pg
    setup = connect()
    repos.mapping.insert_channel(setup, channel_id="c", team_id="t", name="c",
                                 display_name="c", channel_type="O", room_id="r")
    setup.commit()
    second(connect,
           lambda a: repos.posts.record_post(a, post(2, create_at=200), status="s", source="x"),
           lambda b: repos.posts.record_post(b, post(1, create_at=100), status="s", source="x"))
    setup.rollback()
    assert repos.posts.channel_cursor(setup, "c") == "p2"
    assert repos.posts.seen_among(setup, ["p1", "p2"]) == {"p1", "p2"}


@pytest.mark.pg
@pytest.mark.parametrize("message", ["짧은 답", "긴 답변 " * 30])
def test_two_transactions_enqueuing_one_reply_make_one_row_set(pg: Any, message: str) -> None:
    repos, connect = pg
    enqueue = repos.outbox.enqueue_replies
    ids_a, ids_b = second(connect,
                          lambda a: enqueue(a, [reply("k:1", message=message)], max_chars=40),
                          lambda b: enqueue(b, [reply("k:2"), reply("k:1", message=message)],
                                            max_chars=40))
    assert ids_b[1:] == ids_a and len(ids_b) == len(ids_a) + 1
    setup = connect()
    assert [r.id for r in repos.outbox.load_pending(setup)] == sorted(ids_b)
    keys = [k for (k,) in setup.execute("SELECT reply_key FROM outbox ORDER BY id")]
    assert len(keys) == len(set(keys)) == len(ids_b)


@pytest.mark.pg
def test_two_transactions_mapping_one_channel_get_the_same_row(pg: Any) -> None:
    repos, connect = pg
    names = itertools.count()

    def insert(conn: Conn) -> dict[str, Any]:
        row: dict[str, Any] = repos.mapping.insert_channel(
            conn, channel_id="c", team_id="t", name=f"n{next(names)}", display_name="c",
            channel_type="O", room_id="r")
        return row

    row_a, row_b = second(connect, insert, insert)
    assert row_a == row_b and row_a["mchat_channel_name"] == "n0"


@pytest.mark.pg
def test_two_transactions_storing_one_plain_post_store_one_message(pg: Any) -> None:
    repos, connect = pg
    setup = connect()
    setup.execute("INSERT INTO users (id, name, created_at) VALUES ('u1', 'kim', 0)")
    setup.execute("INSERT INTO chat_rooms (id, name, kind, created_at) VALUES ('r1', 'r', 'O', 0)")
    repos.mapping.insert_channel(setup, channel_id="c", team_id="t", name="c",
                                 display_name="c", channel_type="O", room_id="r1")
    setup.commit()
    chat = PgSharedMessages()
    p = post(1)
    item = PlainPost(p, "stored", "websocket", NewMessage(
        room="r1", user="u1", content=p.message, post_id=p.id, created_at_ms=1))
    (seen_a, stored_a), (seen_b, stored_b) = second(
        connect, lambda a: repos.posts.store_plain_posts(a, [item], chat),
        lambda b: repos.posts.store_plain_posts(b, [item], chat))
    assert seen_a == seen_b == set()  # neither saw the other's uncommitted mark
    assert [m.is_new for m in stored_a + stored_b] == [True, False]  # one extraction, not two
    assert stored_a[0].id == stored_b[0].id
    setup.rollback()
    assert setup.execute("SELECT count(*) FROM chat_messages").fetchone() == (1,)
    assert setup.execute("SELECT count(*) FROM mchat_posts").fetchone() == (1,)
    assert repos.posts.channel_cursor(setup, "c") == "p1"
