"""Posts and cursors (and plain posts): the same promises on SQLite and PostgreSQL.

Every test runs on both backends (``backend`` is parametrized): through the real SQLite store
(its storage actor) and through ``PgDatabase.run`` on a real PostgreSQL server (``tests/pg``).
Two transactions at once, which only PostgreSQL has, are in ``test_two_transactions.py``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mchat_actors.chat.protocol import NewMessage
from mchat_actors.errors import ChatServiceError, PostAlreadyHandled, StoreError
from mchat_actors.messages import (
    SendReply,
)
from mchat_actors.outbox import PENDING, SENT
from mchat_actors.posts import PlainPost
from mchat_actors.repository import Repositories

from .helpers import Backend, map_channel, post, reply

# --- posts and cursors ----------------------------------------------------------------------

async def test_a_post_recorded_twice_is_one_row_and_seen(backend: Backend) -> None:
    b, posts = backend, backend.repos.posts
    await map_channel(b)
    assert not await b.run(posts.is_post_seen, "p1")
    await b.run(posts.record_post, post(1, update_at=50), status="stored", source="websocket")
    await b.run(posts.record_post, post(1, update_at=70), status="stored", source="catchup")
    await b.run(posts.record_post, post(1, update_at=60), status="stored", source="sweeper")
    assert await b.run(posts.is_post_seen, "p1")
    assert await b.scalar("SELECT count(*) FROM mchat_posts") == 1
    assert await b.scalar("SELECT update_at FROM mchat_posts") == 70  # the larger, kept
    assert await b.scalar("SELECT source FROM mchat_posts") == "websocket"  # the first
    assert await b.run(posts.seen_among, ["p1", "p2", "p1"]) == {"p1"}
    assert await b.run(posts.seen_among, []) == set()


async def test_the_cursor_never_moves_back(backend: Backend) -> None:
    b, posts = backend, backend.repos.posts
    await map_channel(b)
    assert await b.run(posts.channel_cursor, "c") is None
    assert await b.run(posts.channel_cursor, "unmapped") is None
    await b.run(posts.record_post, post(2, create_at=200), status="s", source="x")
    await b.run(posts.record_post, post(1, create_at=100), status="s", source="x")
    assert await b.run(posts.channel_cursor, "c") == "p2"
    await b.run(posts.record_post, post(3, create_at=200), status="s", source="x")
    assert await b.run(posts.channel_cursor, "c") == "p3"  # same time: the later one
    await b.run(posts.record_post, post(4, create_at=900), status="s", source="x",
                move_cursor=False)
    assert await b.run(posts.channel_cursor, "c") == "p3"
    assert await b.run(posts.is_post_seen, "p4")
    await b.run(posts.record_post, post(5, "unmapped", create_at=1), status="s", source="x")
    assert await b.run(posts.is_post_seen, "p5")  # recorded even with no mapping to move


async def test_cursors_with_times_lists_every_mapped_channel_in_mapping_order(
        backend: Backend) -> None:
    b, posts = backend, backend.repos.posts
    before = time.time()
    await map_channel(b, "c2")
    await map_channel(b, "c1")
    await b.run(posts.record_post, post(7, "c1", create_at=1234), status="s", source="x")
    got = await b.run(posts.cursors_with_times)
    assert [(c, p, t) for c, p, _, t in got] == [("c2", None, 0), ("c1", "p7", 1234)]
    assert all(before - 1 <= created <= time.time() + 1 for _, _, created, _ in got)


async def test_finish_post_returns_the_committed_rows_and_a_replay_changes_nothing(
        backend: Backend) -> None:
    b, posts, outbox = backend, backend.repos.posts, backend.repos.outbox
    await map_channel(b)
    replies = (reply("p1:0"), reply("p1:1", message="가" * 25))
    rows = await b.run(posts.finish_post, post(1), status="answered", source="websocket",
                       replies=replies, max_chars=10)
    keys = [r.reply_key for r in rows]
    assert keys == ["p1:0", "p1:1#0", "p1:1#1", "p1:1#2"]
    assert "".join(r.message for r in rows[1:]) == "가" * 25
    assert rows == await b.run(outbox.load_pending)  # as committed, no re-read needed
    assert len({r.pending_post_id for r in rows}) == 4 and all(r.pending_post_id for r in rows)
    assert all(r.status == PENDING and r.attempts == 0 for r in rows)
    assert await b.run(posts.channel_cursor, "c") == "p1"
    again = await b.run(posts.finish_post, post(1), status="answered", source="websocket",
                        replies=replies, max_chars=10)
    assert again == rows  # same ids, same pending_post_id: the sender dedups on it
    assert await b.scalar("SELECT count(*) FROM outbox") == 4
    assert await b.run(posts.finish_post, post(2), status="stored", source="x", replies=(),
                       max_chars=10) == []


async def test_one_post_finished_by_many_callers_at_once_is_one_row_set(
        backend: Backend) -> None:
    """As at a hand-over, when two owners answer one post: every caller gets the same rows
    (same ids and pending_post_id) and the outbox holds one row set (on PostgreSQL the calls
    run in transactions of the pool, on SQLite the storage actor batches them). Whether two
    PostgreSQL transactions actually overlap here is up to the scheduler (in practice they
    rarely do): the overlap itself is tested deterministically further down."""
    b, posts = backend, backend.repos.posts
    await map_channel(b)
    replies = (reply("p1:0", message="가" * 30), reply("p1:1"))
    results: list[Any] = []

    async def finish() -> None:
        results.append(await b.run(posts.finish_post, post(1), status="answered",
                                   source="websocket", replies=replies, max_chars=10))

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(finish)
    assert len(results) == 8 and all(r == results[0] for r in results)
    assert [r.reply_key for r in results[0]] == ["p1:0#0", "p1:0#1", "p1:0#2", "p1:1"]
    assert await b.scalar("SELECT count(*) FROM outbox") == 4
    assert await b.scalar("SELECT count(*) FROM mchat_posts") == 1


async def test_finish_post_is_all_or_nothing(backend: Backend) -> None:
    b, posts = backend, backend.repos.posts
    await map_channel(b)
    broken = SendReply(channel_id=None, message="x", reply_key="p1:1")  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        await b.run(posts.finish_post, post(1), status="answered", source="x",
                    replies=(reply("p1:0"), broken), max_chars=100)
    assert not await b.run(posts.is_post_seen, "p1")
    assert await b.run(posts.channel_cursor, "c") is None
    assert await b.scalar("SELECT count(*) FROM outbox") == 0


async def test_finish_post_with_the_chat_rows_unless_seen_and_the_first_attempt(
        backend: Backend) -> None:
    """The options of the question path: ``chat_work`` runs in the same transaction (its
    failure leaves nothing), ``attempt_at`` records the new rows' first attempt (the rows come
    back ``marked_unsent``; read back they never are), ``unless_seen`` writes nothing for a
    recorded post (``PostAlreadyHandled``)."""
    b, posts, outbox, state = (backend, backend.repos.posts, backend.repos.outbox,
                               backend.repos.state)
    await map_channel(b)

    def failing(tx: Any) -> None:
        state.set_state(tx, "chat", "written")
        raise ValueError("the ChatService's unit failed")

    with pytest.raises(ValueError):
        await b.run(posts.finish_post, post(1), status="answered", source="websocket",
                    replies=(reply("p1:reply"),), max_chars=100, chat_work=failing,
                    unless_seen=True, attempt_at=100.0)
    assert not await b.run(posts.is_post_seen, "p1")
    assert await b.run(state.get_state, "chat") is None
    assert await b.scalar("SELECT count(*) FROM outbox") == 0
    (row,) = await b.run(posts.finish_post, post(1), status="answered", source="websocket",
                         replies=(reply("p1:reply"),), max_chars=100,
                         chat_work=lambda tx: state.set_state(tx, "chat", "written"),
                         unless_seen=True, attempt_at=100.0)
    assert row.marked_unsent and (row.attempts, row.first_attempt_at, row.last_attempt_at) == (
        1, 100.0, 100.0)
    (stored,) = await b.run(outbox.load_pending)
    assert stored.id == row.id and stored.attempts == 1 and not stored.marked_unsent
    assert await b.run(state.get_state, "chat") == "written"
    with pytest.raises(PostAlreadyHandled):
        await b.run(posts.finish_post, post(1), status="answered", source="websocket",
                    replies=(reply("p1:reply"),), max_chars=100,
                    chat_work=lambda tx: state.set_state(tx, "chat", "twice"),
                    unless_seen=True, attempt_at=200.0)
    assert await b.run(state.get_state, "chat") == "written"
    assert (await b.run(outbox.get_row, row.id)).attempts == 1


async def test_a_reply_delivered_in_the_response_is_never_pending(backend: Backend) -> None:
    b, posts, outbox = backend, backend.repos.posts, backend.repos.outbox
    rows = await b.run(posts.finish_post, post(1), status="answered", source="webhook",
                       replies=(reply("p1:0", message="긴 답" * 20),), max_chars=15,
                       delivered_in_response=True)
    assert rows == []
    assert await b.run(outbox.load_pending) == []
    assert await b.scalar(f"SELECT count(*) FROM outbox WHERE status = '{SENT}'") > 1
    assert await b.scalar("SELECT count(*) FROM outbox WHERE mm_post_id IS NOT NULL") == 0


async def test_store_plain_posts_skips_seen_posts_and_commits_all_or_nothing(
        backend: Backend) -> None:
    b, posts = backend, backend.repos.posts
    async with b.shared_chat() as (chat, room, user):
        await b.run(b.repos.mapping.insert_channel, channel_id="c", team_id="t", name="c",
                    display_name="c", channel_type="O", room_id=room)

        def item(n: int, room_id: str = room, message: bool = True) -> PlainPost:
            p = post(n)
            return PlainPost(p, "stored", "websocket", NewMessage(
                room=room_id, user=user, content=p.message, post_id=p.id, created_at_ms=n)
                if message else None)

        seen, stored = await b.run(posts.store_plain_posts, [item(n) for n in (1, 2, 3)], chat)
        assert seen == set() and [m.mchat_post_id for m in stored] == ["p1", "p2", "p3"]
        assert all(m.is_new and m.room_id == room for m in stored)
        assert await b.run(posts.channel_cursor, "c") == "p3"
        seen, stored = await b.run(posts.store_plain_posts,
                                   [item(2), item(3), item(4), item(4), item(5, message=False)],
                                   chat)
        assert seen == {"p2", "p3"} and [m.mchat_post_id for m in stored] == ["p4"]
        assert await b.run(posts.is_post_seen, "p5")  # recorded, no message
        assert await b.scalar("SELECT count(*) FROM chat_messages") == 4
        with pytest.raises((StoreError, ChatServiceError)):
            await b.run(posts.store_plain_posts, [item(6), item(7, "no-such-room")], chat)
        assert not await b.run(posts.is_post_seen, "p6")
        assert await b.scalar("SELECT count(*) FROM chat_messages") == 4
        assert await b.run(posts.channel_cursor, "c") == "p5"




# --- property: the cursor is the latest post, whatever the arrival order --------------------

@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(times=st.lists(st.integers(0, 5), min_size=1, max_size=12))
def test_the_cursor_is_the_last_recorded_of_the_latest_posts(
        raw: tuple[Repositories, Any], times: list[int]) -> None:
    repos, tx = raw
    channel = uuid.uuid4().hex
    repos.mapping.insert_channel(tx, channel_id=channel, team_id="t", name="n",
                                 display_name="n", channel_type="O", room_id="r")
    for n, at in enumerate(times):
        repos.posts.record_post(tx, post(n, channel, create_at=at), status="s", source="x")
        latest = max(times[: n + 1])
        want = max(i for i, t in enumerate(times[: n + 1]) if t == latest)
        assert repos.posts.channel_cursor(tx, channel) == f"p{want}"
