"""The runtime's repositories keep the same promises on SQLite and on PostgreSQL.

Every test of the first part runs on both backends (``backend`` is parametrized): through the
real SQLite store (its storage actor) and through ``PgDatabase.run`` on a real PostgreSQL
server (``tests/pg``). The second part is PostgreSQL only: writers that SQLite's single writer
never has, two transactions at once.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import attrs
import psycopg
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mchat_actors import retry_queue, webhook_inbox
from mchat_actors.chat.embedded import open_embedded_chat_service
from mchat_actors.chat.protocol import NewMessage, SharedStorage
from mchat_actors.errors import ChatServiceError, StoreError
from mchat_actors.messages import (
    ChannelId,
    MattermostUserId,
    MemberJoined,
    Post,
    PostCreated,
    PostId,
    SendReply,
)
from mchat_actors.outbox import FAILED, PENDING, SENT
from mchat_actors.pg.chat_messages import PgSharedMessages
from mchat_actors.pg.database import open_database
from mchat_actors.pg.repos import pg_repositories
from mchat_actors.pg.retry_inbox import PgRetryQueue, PgRetryRows, PgWebhookInbox
from mchat_actors.pg.schema import migrate as pg_migrate
from mchat_actors.posts import PlainPost
from mchat_actors.repository import Repositories, sqlite_repositories
from mchat_actors.retry_queue import SqliteRetryQueue
from mchat_actors.store import connect as sqlite_connect
from mchat_actors.store import migrate as sqlite_migrate
from mchat_actors.store import open_store

from .pg.conftest import pg_server, pg_url  # noqa: F401  (the PostgreSQL server's fixtures)

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)]


@attrs.frozen
class Backend:
    name: str
    repos: Repositories
    run: Callable[..., Awaitable[Any]]  # run(fn, *args): fn(tx, *args) in one transaction
    scalar: Callable[[str], Awaitable[Any]]  # the first column of a query's first row
    shared_chat: Callable[[], Any]  # async context: (SharedStorage, room id, user id)
    retry_rows: Any  # retry_queue's functions (the module, or PgRetryRows)
    queue: Any  # the dispatcher's RetryQueue
    inbox: Any  # webhook_inbox's functions


@pytest.fixture(params=BACKENDS)
def where(request: pytest.FixtureRequest, tmp_path: Any) -> tuple[str, str]:
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "contract.db")
    return "postgresql", request.getfixturevalue("pg_url")


@pytest.fixture
async def backend(where: tuple[str, str]) -> AsyncIterator[Backend]:
    name, target = where
    if name == "sqlite":
        async with open_store(target) as store:

            @asynccontextmanager
            async def sqlite_chat() -> AsyncIterator[tuple[SharedStorage, str, str]]:
                async with open_embedded_chat_service(target, store=store) as chat:
                    user = await chat.create_user(name="kim", email=None)
                    room = await chat.create_room(name="r", kind="channel")
                    yield chat, room.id, user.id

            yield Backend(name, sqlite_repositories(), store.run,
                          lambda sql: store.read(lambda db: db.conn.execute(sql).fetchone()[0]),
                          sqlite_chat, retry_queue, SqliteRetryQueue(store), webhook_inbox)
        return
    async with open_database(target) as db:

        @asynccontextmanager
        async def pg_chat() -> AsyncIterator[tuple[SharedStorage, str, str]]:
            def rows(conn: psycopg.Connection[Any]) -> None:
                conn.execute("INSERT INTO users (id, name, created_at) VALUES ('u1', 'kim', 0)")
                conn.execute("INSERT INTO chat_rooms (id, name, kind, created_at)"
                             " VALUES ('r1', 'r', 'channel', 0)")
            await db.run(rows)
            yield PgSharedMessages(), "r1", "u1"

        yield Backend(name, pg_repositories(), db.run,
                      lambda sql: db.run(lambda conn: conn.execute(sql).fetchone()[0]), pg_chat,
                      PgRetryRows(), PgRetryQueue(db), PgWebhookInbox())


def post(n: int, channel: str = "c", *, create_at: int | None = None,
         update_at: int = 0) -> Post:
    return Post(id=PostId(f"p{n}"), channel_id=ChannelId(channel),
                user_id=MattermostUserId("u"), message=f"부품{n} 불량률",
                create_at=n if create_at is None else create_at, update_at=update_at)


def reply(key: str, channel: str = "c", message: str = "답변입니다") -> SendReply:
    return SendReply(channel_id=ChannelId(channel), message=message, reply_key=key)


async def map_channel(b: Backend, channel: str = "c", name: str = "c") -> dict[str, Any]:
    row: dict[str, Any] = await b.run(
        b.repos.mapping.insert_channel, channel_id=channel, team_id="t", name=name,
        display_name=name, channel_type="O", room_id=f"room-{channel}")
    return row


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


# --- outbox ---------------------------------------------------------------------------------

async def test_a_reply_enqueued_twice_is_one_row_with_one_pending_post_id(
        backend: Backend) -> None:
    b, outbox = backend, backend.repos.outbox
    first = await b.run(outbox.enqueue_replies, [reply("k:1")], max_chars=100, now=5.0)
    second = await b.run(outbox.enqueue_replies, [reply("k:1", message="다른 글")],
                         max_chars=100, now=9.0)
    assert first == second and len(first) == 1
    (row,) = await b.run(outbox.load_pending)
    assert (row.message, row.created_at, row.next_attempt_at) == ("답변입니다", 5.0, 5.0)
    # a key that only starts like another one is another reply
    near = await b.run(outbox.enqueue_replies, [reply("k:10"), reply("k:1#x"), reply("k")],
                       max_chars=100)
    assert len(set(near) | set(first)) == 4
    assert await b.run(outbox.enqueue_replies, [reply("k:1")], max_chars=100) == first
    long = await b.run(outbox.enqueue_replies, [reply("k:2", message="나" * 250)],
                       max_chars=100)
    assert len(long) == 3
    assert await b.run(outbox.enqueue_replies, [reply("k:2", message="나" * 250)],
                       max_chars=7) == long
    assert await b.scalar("SELECT count(*) FROM outbox") == 7


@pytest.mark.parametrize("chunks", [100, 201])
async def test_a_reply_of_many_chunks_is_found_whole_when_enqueued_again(
        backend: Backend, chunks: int) -> None:
    b, outbox = backend, backend.repos.outbox
    text = "".join(chr(0xAC00 + n) for n in range(chunks))  # one char a chunk, all different
    ids = await b.run(outbox.enqueue_replies, [reply("big", message=text)], max_chars=1)
    assert len(ids) == chunks
    assert await b.run(outbox.enqueue_replies, [reply("big", message=text)], max_chars=1) == ids
    rows = await b.run(outbox.load_pending, ids=ids)
    assert "".join(r.message for r in rows) == text
    assert [r.reply_key for r in rows] == [f"big#{n}" for n in range(chunks)]


async def test_admin_calls_on_outbox_rows(backend: Backend) -> None:
    """Beyond the Protocol, what the admin page and health call: get_row, retry_failed,
    status_counts, mark_delivered_elsewhere (both backends have them)."""
    b, outbox = backend, backend.repos.outbox
    one, two = await b.run(outbox.enqueue_replies, [reply("r:1"), reply("r:2")],
                           max_chars=100)
    await b.run(outbox.mark_attempt, one, now=3.0)
    await b.run(outbox.mark_failed, one, error="403")
    assert not await b.run(outbox.retry_failed, two, now=4.0)  # not failed: nothing to do
    before = await b.run(outbox.get_row, one)
    assert await b.run(outbox.retry_failed, one, now=5.0)
    after = await b.run(outbox.get_row, one)
    assert (before.status, after.status, after.next_attempt_at) == (FAILED, PENDING, 5.0)
    assert (after.pending_post_id, after.attempts) == (before.pending_post_id, 1)
    assert await b.run(outbox.get_row, 10_000) is None
    assert await b.run(outbox.mark_delivered_elsewhere, "r:2",
                       how="webhook-response") == 1
    assert await b.run(outbox.mark_delivered_elsewhere, "r:2",
                       how="again") == 0
    assert await b.run(outbox.status_counts) == {
        PENDING: 1, SENT: 1, FAILED: 0}


async def test_pending_rows_come_in_enqueue_order_per_channel(backend: Backend) -> None:
    b, outbox = backend, backend.repos.outbox
    order = [("a", 0), ("b", 0), ("a", 1), ("a", 2), ("b", 1), ("c", 0), ("b", 2)]
    for channel, n in order:
        await b.run(outbox.enqueue_replies, [reply(f"{channel}:{n}", channel)], max_chars=100)
    ids = await b.run(outbox.enqueue_replies,
                      [reply("a:3", "a"), reply("c:1", "c", message="다" * 30)], max_chars=12)
    rows = await b.run(outbox.load_pending)
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    for channel in "abc":
        keys = [r.reply_key for r in rows if r.channel_id == channel]
        want = [f"{channel}:{n}" for c, n in order if c == channel]
        want += {"a": ["a:3"], "b": [], "c": ["c:1#0", "c:1#1", "c:1#2"]}[channel]
        assert keys == want
    subset = await b.run(outbox.load_pending, ids=[ids[-1], ids[0], ids[0], 10_000])
    assert [r.reply_key for r in subset] == ["a:3", "c:1#2"]
    assert await b.run(outbox.load_pending, ids=[]) == []


async def test_a_row_moves_pending_to_sent_or_failed_and_never_back(backend: Backend) -> None:
    b, outbox = backend, backend.repos.outbox
    one, two, three = await b.run(outbox.enqueue_replies,
                                  [reply("r:1"), reply("r:2"), reply("r:3")], max_chars=100)
    await b.run(outbox.mark_attempt, one, now=10.0)
    await b.run(outbox.mark_retry, one, next_attempt_at=20.0, error="503 " + "e" * 600)
    await b.run(outbox.mark_attempt, one, now=20.0)
    (row, *_) = await b.run(outbox.load_pending, ids=[one])
    assert (row.attempts, row.first_attempt_at, row.last_attempt_at) == (2, 10.0, 20.0)
    assert row.next_attempt_at == 20.0 and row.last_error is not None
    assert len(row.last_error) == 500
    await b.run(outbox.mark_sent, one, mm_post_id="mm1", now=21.0)
    await b.run(outbox.mark_failed, one, error="late 403")  # sent stays sent
    await b.run(outbox.mark_retry, one, next_attempt_at=99.0, error="late")
    await b.run(outbox.mark_failed, two, error="403 forbidden")
    await b.run(outbox.mark_retry, two, next_attempt_at=99.0, error="late")  # failed stays
    assert [r.id for r in await b.run(outbox.load_pending)] == [three]
    for row_id, want in ((one, (SENT, "mm1", "503 " + "e" * 496)),
                         (two, (FAILED, None, "403 forbidden"))):
        got = [await b.scalar(f"SELECT {column} FROM outbox WHERE id = {row_id}")
               for column in ("status", "mm_post_id", "last_error")]
        assert tuple(got) == want


# --- mapping and state ----------------------------------------------------------------------

async def test_mapping_inserts_are_idempotent_and_keep_the_first_row(backend: Backend) -> None:
    b, mapping = backend, backend.repos.mapping
    assert await b.run(mapping.get_channel, "c") is None
    first = await map_channel(b, "c", name="town-square")
    again = await map_channel(b, "c", name="renamed")
    assert again == first and first["mchat_channel_name"] == "town-square"
    assert first["sync_enabled"] is True and first["agent_room_id"] == "room-c"
    assert await b.run(mapping.set_channel_sync, "c", False)
    assert not await b.run(mapping.set_channel_sync, "nope", False)
    assert (await b.run(mapping.get_channel, "c"))["sync_enabled"] is False
    await map_channel(b, "a")
    assert [r["mchat_channel_id"] for r in await b.run(mapping.list_channels)] == ["c", "a"]
    assert await b.run(mapping.get_user, "u") is None
    user = await b.run(mapping.insert_user, user_id="u", username="kim", email=None,
                       agent_user_id="agent-1", matched_by="created")
    other = await b.run(mapping.insert_user, user_id="u", username="lee", email="l@x",
                        agent_user_id="agent-2", matched_by="email")
    assert other == user and user["agent_user_id"] == "agent-1"
    assert await b.scalar("SELECT count(*) FROM mchat_user_mapping") == 1


async def test_state_values_are_set_and_replaced(backend: Backend) -> None:
    b, state = backend, backend.repos.state
    assert await b.run(state.get_state, "sweep_horizon_ms") is not None  # made by migrate
    assert await b.run(state.get_state, "k") is None
    await b.run(state.set_state, "k", "1")
    await b.run(state.set_state, "k", "2")
    assert await b.run(state.get_state, "k") == "2"


# --- retry queue and webhook inbox ---------------------------------------------------------

async def test_parked_events_wait_in_channel_order_and_park_once(backend: Backend) -> None:
    b, q, rows = backend, backend.queue, backend.retry_rows
    await map_channel(b)
    assert await q.park(PostCreated(post=post(1)), attempts=1, error="503",
                        next_attempt_at=5.0)
    assert not await q.park(PostCreated(post=post(1, update_at=3)), attempts=1, error="again",
                            next_attempt_at=6.0)  # the same post: parked once
    assert await q.park(PostCreated(post=post(2, "d")), attempts=1, error="x",
                        next_attempt_at=1.0)
    assert await q.park(PostCreated(post=post(3)), attempts=1, error="x", next_attempt_at=1.0)
    assert await q.channels() == ["c", "d"]
    head = await q.head("c")
    assert head.event == PostCreated(post=post(1))
    assert (head.attempts, head.last_error) == (1, "503")
    await q.failed(head.id, error="still 503", next_attempt_at=9.0)
    again = await q.head("c")
    assert (again.id, again.attempts, again.next_attempt_at) == (head.id, 2, 9.0)
    await q.done(head.id)
    assert (await q.head("c")).event.post.id == "p3"
    assert await b.run(rows.counts) == {"pending": 2, "discarded": 0}
    joined = MemberJoined(channel_id=ChannelId("c"), user_id=MattermostUserId("u"))
    assert await q.park(joined, attempts=1, error="x", next_attempt_at=1.0)
    assert [r["kind"] for r in await b.run(rows.listing)] == [
        "PostCreated", "MemberJoined", "PostCreated"]


async def test_admin_discard_records_the_post_without_moving_the_cursor(
        backend: Backend) -> None:
    b, q, rows = backend, backend.queue, backend.retry_rows
    await map_channel(b)
    await q.park(PostCreated(post=post(1, create_at=500)), attempts=3, error="x",
                 next_attempt_at=1.0)
    await q.park(PostCreated(post=post(2, "d")), attempts=1, error="x", next_attempt_at=1.0)
    row_id = (await q.head("c")).id
    assert await b.run(rows.retry_now, row_id, remote_addr="10.0.0.1", now=2.0) == "requeued"
    assert (await q.head("c")).next_attempt_at == 2.0
    assert await b.run(rows.discard, row_id, remote_addr="10.0.0.1") == "discarded"
    assert await b.run(rows.discard, row_id, remote_addr="10.0.0.1") == "already discarded"
    assert await b.run(rows.retry_now, 10_000, remote_addr="x") == "not_found"
    assert await q.head("c") is None
    assert (await q.head("d")).event.post.id == "p2"  # another row: untouched
    assert await b.run(b.repos.posts.is_post_seen, "p1")
    assert await b.run(b.repos.posts.channel_cursor, "c") is None
    assert await b.scalar("SELECT count(*) FROM audit_log WHERE remote_addr = '10.0.0.1'") == 2


async def test_webhook_payloads_are_kept_until_handled_without_the_token(
        backend: Backend) -> None:
    b, inbox = backend, backend.inbox
    fields = {"token": "outgoing-secret", "post_id": "p1", "text": "@ai 질문", "timestamp": 5}
    await b.run(inbox.keep, "p1", fields, "json", now=100.0)
    await b.run(inbox.keep, "p1", {**fields, "text": "changed"}, "json", now=101.0)
    await b.run(inbox.keep, "p2", {"post_id": "p2", "text": "x"}, "form", now=200.0)
    assert await b.scalar("SELECT count(*) FROM webhook_inbox"
                          " WHERE payload LIKE '%outgoing-secret%'") == 0
    assert await b.run(inbox.pending, received_before=150.0) == [
        ({"post_id": "p1", "text": "@ai 질문", "timestamp": 5}, "json")]
    await b.run(b.repos.posts.record_post, post(1), status="answered", source="webhook")
    assert await b.run(inbox.pending, received_before=1e12) == [
        ({"post_id": "p2", "text": "x"}, "form")]
    assert await b.scalar("SELECT count(*) FROM webhook_inbox") == 1


# --- property: the cursor is the latest post, whatever the arrival order --------------------

@pytest.fixture(params=BACKENDS)
def raw(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[Repositories, Any]]:
    """(repos, handle) for synchronous calls, each call committed (autocommit)."""
    if request.param == "sqlite":
        db = sqlite_connect(tmp_path / "raw.db")
        sqlite_migrate(db)
        yield sqlite_repositories(), db
        db.conn.close()
        return
    with psycopg.connect(request.getfixturevalue("pg_url"), autocommit=True) as conn:
        pg_migrate(conn)
        yield pg_repositories(), conn


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


# --- PostgreSQL: two transactions at once ---------------------------------------------------

Conn = psycopg.Connection[Any]


@pytest.fixture
def pg(pg_url: str) -> Iterator[tuple[Repositories, Callable[[], Conn]]]:  # noqa: F811
    with psycopg.connect(pg_url, autocommit=True) as conn:
        pg_migrate(conn)
    opened: list[Conn] = []

    def connect() -> Conn:
        opened.append(psycopg.connect(pg_url))
        return opened[-1]

    yield pg_repositories(), connect
    for conn in opened:
        conn.close()


def _second(connect: Callable[[], Conn], first: Callable[[Conn], Any],
            second: Callable[[Conn], Any]) -> tuple[Any, Any]:
    """``first`` in a transaction (uncommitted), then ``second`` in another one in a thread,
    which must wait on the first's lock; the first commits, the second finishes and commits.
    Both results."""
    a, b, watch = connect(), connect(), connect()
    watch.autocommit = True
    for conn in (a, b):  # a transaction open, as PgDatabase.run lends it: savepoints inside
        conn.execute("SELECT 1")
    got_a = first(a)
    with ThreadPoolExecutor(1) as pool:
        later: Future[Any] = pool.submit(second, b)
        deadline = time.monotonic() + 10
        while (watch.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                             (b.info.backend_pid,)).fetchone() or [None])[0] != "Lock":
            assert not later.done(), "the second transaction did not wait for the first"
            assert time.monotonic() < deadline, "the second transaction never waited"
            time.sleep(0.01)
        a.commit()
        got_b = later.result(timeout=10)
    b.commit()
    return got_a, got_b


@pytest.mark.pg
def test_two_transactions_recording_one_post_make_one_row(pg: Any) -> None:
    repos, connect = pg
    setup = connect()
    repos.mapping.insert_channel(setup, channel_id="c", team_id="t", name="c",
                                 display_name="c", channel_type="O", room_id="r")
    setup.commit()
    _second(connect,
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
    _second(connect,
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
    ids_a, ids_b = _second(connect,
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

    row_a, row_b = _second(connect, insert, insert)
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
    (seen_a, stored_a), (seen_b, stored_b) = _second(
        connect, lambda a: repos.posts.store_plain_posts(a, [item], chat),
        lambda b: repos.posts.store_plain_posts(b, [item], chat))
    assert seen_a == seen_b == set()  # neither saw the other's uncommitted mark
    assert [m.is_new for m in stored_a + stored_b] == [True, False]  # one extraction, not two
    assert stored_a[0].id == stored_b[0].id
    setup.rollback()
    assert setup.execute("SELECT count(*) FROM chat_messages").fetchone() == (1,)
    assert setup.execute("SELECT count(*) FROM mchat_posts").fetchone() == (1,)
    assert repos.posts.channel_cursor(setup, "c") == "p1"


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sends=st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 5), st.integers(1, 30)),
                      min_size=1, max_size=15))
def test_pending_rows_of_a_channel_come_in_first_enqueue_order(
        raw: tuple[Repositories, Any], sends: list[tuple[str, int, int]]) -> None:
    """Replies enqueued in any interleaving of channels, some again (same key, any text):
    each key is one row set, and a channel's pending rows come in the order of each key's
    first enqueue, chunks in order."""
    repos, tx = raw
    run = uuid.uuid4().hex[:8]
    first_order: dict[str, list[str]] = {}
    for channel, n, size in sends:
        key = f"{run}:{channel}:{n}"
        repos.outbox.enqueue_replies(tx, [reply(key, f"{run}{channel}", "가" * size)],
                                     max_chars=10)
        if key not in first_order.setdefault(channel, []):
            first_order[channel].append(key)
    pending = [r for r in repos.outbox.load_pending(tx) if r.reply_key.startswith(run)]
    for channel, keys in first_order.items():
        got = [r.reply_key.split("#")[0] for r in pending if r.channel_id == f"{run}{channel}"]
        assert list(dict.fromkeys(got)) == keys
        for key in keys:
            chunk_keys = [r.reply_key for r in pending if r.reply_key.split("#")[0] == key]
            assert chunk_keys in ([key], [f"{key}#{i}" for i in range(len(chunk_keys))])
