"""What the contract tests share: the backends, a Backend's handles, posts and replies,
and ``second`` (two PostgreSQL transactions, the second waiting on the first)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs
import psycopg
import pytest

from mchat_actors.messages import (
    ChannelId,
    MattermostUserId,
    Post,
    PostId,
    SendReply,
)
from mchat_actors.repository import Repositories

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



Conn = psycopg.Connection[Any]


def second(connect: Callable[[], Conn], first: Callable[[Conn], Any],
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
        try:
            while (watch.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                                 (b.info.backend_pid,)).fetchone() or [None])[0] != "Lock":
                assert not later.done(), "the second transaction did not wait for the first"
                assert time.monotonic() < deadline, "the second transaction never waited"
                time.sleep(0.01)
        except BaseException:
            a.rollback()  # let the thread finish: leaving the pool waits for it
            raise
        a.commit()
        got_b = later.result(timeout=10)
    b.commit()
    return got_a, got_b
