"""Writes fenced by the lease (``pg.fence``, issue #15) on the real PostgreSQL server.

Replica a holds a channel's bucket and has a question in flight; it is paused (GC, SIGSTOP)
past its lease: the database's clock moves on while a's does not (a's local deadline is far
away here, as it is for a process that was stopped and has not looked at its clock yet).
Replica b takes the bucket over and answers the question. Then a wakes: its answer commit,
its record of another post (with the cursor) and its sender's claim of a row are refused
with ``LeaseLost`` in their own transaction, the sender drops the channel: nothing is written
twice, nothing posted twice. Before the fence a's commit found the post recorded (a
duplicate, harmless), but its claim went through and the row was posted by both."""

from __future__ import annotations

from functools import partial
from typing import Any, cast

import pytest
import trio

from mchat_actors.actors.ownership import ChannelOwnership
from mchat_actors.actors.sender import Sender, SenderSettings
from mchat_actors.errors import LeaseLost
from mchat_actors.messages import ChannelId, MattermostUserId, OutboundRequest, Post, PostId
from mchat_actors.pg.database import PgDatabase, open_database
from mchat_actors.pg.leases import Lessee, declare
from mchat_actors.pg.store import PgStore
from mchat_actors.replica import Replica
from tests.actors.test_sender import BOT, CFG
from tests.actors.test_sender_transport import RecordingTransport
from tests.pg.test_replica_sender import LONG, answer

pytestmark = pytest.mark.pg


def replica(db: PgDatabase, name: str) -> Replica:
    return Replica(replica_id=name, database="pg", ownership=ChannelOwnership(
        db, Lessee(name, LONG, prefix="bucket:"), buckets=1))


def question(n: int) -> Post:
    return Post(id=PostId(f"p{n}"), channel_id=ChannelId("ch1"), user_id=MattermostUserId("u"),
                message="@ai 불량률?", create_at=1000 + n)


async def count(db: PgDatabase, sql: str, *args: object) -> int:
    def q(conn: Any) -> int:
        return int(conn.execute(sql, args).fetchone()[0])

    return await db.run(q)


async def take_over(db: PgDatabase, a: Replica, b: Replica) -> None:
    """a holds the bucket; the database's clock passes its expiry (a paused); b takes it."""
    await db.run(declare, ["bucket:0"])
    await a.ownership.tick()
    assert a.ownership.holds("ch1")
    await db.run(lambda conn: conn.execute("UPDATE leases SET expires_at = 0"))
    change = await b.ownership.tick()
    assert change is not None and change.gained == {"bucket:0"}
    assert a.ownership.holds("ch1")  # a does not know yet


async def test_a_paused_replicas_commits_are_refused_once_its_lease_is_taken(pg_url):
    async with open_database(pg_url) as db:
        store = PgStore(db)
        a, b = replica(db, "replica-a"), replica(db, "replica-b")
        ra, rb = a.repositories(), b.repositories()
        await take_over(db, a, b)
        finish: dict[str, Any] = {"status": "answered", "source": "websocket",
                                  "replies": (answer(1),), "max_chars": 4000,
                                  "unless_seen": True, "attempt_at": 1.0}
        rows = await store.run(rb.posts.finish_post, question(1), **finish)
        with pytest.raises(LeaseLost):  # a's answer, computed before its pause
            await store.run(ra.posts.finish_post, question(1), **finish)
        with pytest.raises(LeaseLost):  # a post b has not read yet: a records nothing
            await store.run(ra.posts.finish_post, question(2), status="ignored",
                            source="websocket", replies=(), max_chars=4000)
        with pytest.raises(LeaseLost):  # a's sender claiming the row b wrote
            await store.run(ra.outbox.mark_attempt, rows[0].id, now=2.0)
        assert await count(db, "SELECT count(*) FROM outbox") == 1
        assert await count(db, "SELECT attempts FROM outbox") == 1  # b's own claim only
        assert await count(db, "SELECT count(*) FROM mchat_posts") == 1
        await store.run(rb.outbox.mark_attempt, rows[0].id, now=3.0)  # b's goes through
        assert await count(db, "SELECT attempts FROM outbox") == 2


async def test_a_paused_replicas_sender_posts_nothing_of_a_channel_taken_over(pg_url):
    async with open_database(pg_url) as db:
        store = PgStore(db)
        a, b = replica(db, "replica-a"), replica(db, "replica-b")
        await db.run(declare, ["bucket:0"])
        await a.ownership.tick()
        ids = await store.run(a.repositories().outbox.enqueue_replies, [answer(1)],
                              max_chars=4000)
        await db.run(lambda conn: conn.execute("UPDATE leases SET expires_at = 0"))
        await b.ownership.tick()  # b owns the channel; a, paused, still believes it does
        transport = RecordingTransport()
        send, recv = trio.open_memory_channel[OutboundRequest](4)
        sender = Sender(CFG, store=store, client=cast(Any, None), bot_user_id=BOT,
                        transport=transport, repos=a.repositories(), leases=a.ownership,
                        settings=SenderSettings(rescan_interval_s=60.0))
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(sender.run, recv))
            with trio.fail_after(5):
                while sender.stats.lease_lost < 1:  # noqa: ASYNC110
                    await trio.sleep(0.02)
            await send.aclose()
        assert transport.posts == [] and sender.stats.errors == 0
        assert [r.id for r in await store.run(a.repositories().outbox.load_pending)] == ids
        assert await count(db, "SELECT attempts FROM outbox") == 0
