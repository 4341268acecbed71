"""The sender of a replica (MCHAT_REPLICAS=on) around a hand-over, on the real PostgreSQL server:
per channel, the answers go out in the order they were committed, whoever committed them.

Issue #15's "answers out of order after a hand-over", as the 3-replica test's log showed it:
the new owner answers the posts it reads again while the gained bucket is held but not served
yet (``ChannelOwnership.gate_gains``); the sender dropped those committed rows (it sent only
*served* channels' rows) and they waited for the next outbox rescan, while the answers
committed once the channel was served went at once. And the rows the previous owner committed
and did not send waited for that rescan too. The rescan is set to a minute here: before the
fix both tests time out (or see the newer answer first)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, cast

import pytest
import trio
import trio.testing

from mchat_actors.actors.ownership import ChannelOwnership
from mchat_actors.actors.sender import Sender, SenderSettings
from mchat_actors.messages import ChannelId, OutboundRequest, PostId, SendReply
from mchat_actors.outbox import OutboxRow
from mchat_actors.pg.database import PgDatabase, open_database
from mchat_actors.pg.leases import LeaseSettings, Lessee, declare
from mchat_actors.pg.repos import pg_repositories
from mchat_actors.pg.store import PgStore
from tests.actors.test_sender import BOT, CFG
from tests.actors.test_sender_transport import RecordingTransport

pytestmark = pytest.mark.pg

# ticked by hand: the leases last far longer than a test
LONG = LeaseSettings(ttl_s=60.0, renew_every_s=20.0, margin_s=1.0)
REPOS = pg_repositories()


def answer(n: int) -> SendReply:
    return SendReply(channel_id=ChannelId("ch1"), message=f"answer {n}", reply_key=f"p{n}:reply",
                     root_id=None, trigger_post_id=PostId(f"p{n}"))


async def commit(store: PgStore, reply: SendReply) -> SendReply:
    """The handler's commit of one answer: its outbox row, as committed (``finish_post``)."""

    def work(conn: Any) -> list[OutboxRow]:
        ids = REPOS.outbox.enqueue_replies(conn, [reply], max_chars=4000)
        return REPOS.outbox.load_pending(conn, ids=ids)

    rows = await store.run(work)
    return SendReply(channel_id=reply.channel_id, message=reply.message,
                     reply_key=reply.reply_key, trigger_post_id=reply.trigger_post_id,
                     committed=tuple(rows))


@asynccontextmanager
async def replica_sender(db: PgDatabase, ownership: ChannelOwnership, transport: RecordingTransport
                         ) -> AsyncIterator[tuple[trio.MemorySendChannel[OutboundRequest],
                                                  Sender]]:
    send, recv = trio.open_memory_channel[OutboundRequest](16)
    sender = Sender(CFG, store=PgStore(db), client=cast(Any, None), bot_user_id=BOT,
                    transport=transport, repos=REPOS, leases=ownership,
                    settings=SenderSettings(rescan_interval_s=60.0))
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(sender.run, recv))
        yield send, sender
        nursery.cancel_scope.cancel()


async def posted(transport: RecordingTransport, n: int) -> list[str]:
    with trio.fail_after(5):  # a rescan would take 60 s
        while len(transport.posts) < n:  # noqa: ASYNC110
            await trio.sleep(0.02)
    return [p["message"] for p in transport.posts]


async def test_rows_the_previous_owner_left_go_before_the_new_owners_answers(pg_url):
    async with open_database(pg_url) as db:
        store = PgStore(db)
        await db.run(declare, ["bucket:0"])
        a = Lessee("replica-a", LONG, prefix="bucket:")
        await db.run_own(a.tick, 0.0)
        await commit(store, answer(0))  # a answered p0 and went away before sending it
        await db.run_own(a.shutdown)
        b = ChannelOwnership(db, Lessee("replica-b", LONG, prefix="bucket:"), buckets=1,
                             gate_gains=True)
        transport = RecordingTransport()
        async with replica_sender(db, b, transport) as (to_sender, _):  # it holds nothing
            change = await b.tick()
            assert change is not None and change.gained == {"bucket:0"}
            b.trust(change.gained)
            await to_sender.send(await commit(store, answer(1)))  # b answers p1 at once
            assert await posted(transport, 2) == ["answer 0", "answer 1"]


async def test_answers_of_posts_read_again_before_the_bucket_is_served_go_first(pg_url):
    async with open_database(pg_url) as db:
        store = PgStore(db)
        await db.run(declare, ["bucket:0"])
        b = ChannelOwnership(db, Lessee("replica-b", LONG, prefix="bucket:"), buckets=1,
                             gate_gains=True)
        transport = RecordingTransport()
        async with replica_sender(db, b, transport) as (to_sender, sender):
            change = await b.tick()
            assert change is not None and b.holds("ch1") and not b.owns("ch1")
            # resume_gained's re-read: p1 (left unrecorded by the previous owner) is answered
            # while the bucket is held, not served yet
            await to_sender.send(await commit(store, answer(1)))
            while sender.stats.replies < 1:  # noqa: ASYNC110
                await trio.sleep(0.01)
            await trio.testing.wait_all_tasks_blocked()  # its committed row was taken in
            b.trust(change.gained)
            await to_sender.send(await commit(store, answer(2)))  # a live question, served
            assert await posted(transport, 2) == ["answer 1", "answer 2"]


async def test_a_lost_channels_rows_are_left_to_its_new_owner(pg_url):
    async with open_database(pg_url) as db:
        store = PgStore(db)
        await db.run(declare, ["bucket:0"])
        b = ChannelOwnership(db, Lessee("replica-b", LONG, prefix="bucket:"), buckets=1)
        transport = RecordingTransport()
        async with replica_sender(db, b, transport) as (to_sender, _):
            await b.tick()
            await db.run_own(b.lessee.shutdown)  # given back: another replica sends
            await to_sender.send(await commit(store, answer(1)))
            await trio.sleep(0.5)
            assert transport.posts == []
            assert [r.reply_key for r in await store.run(REPOS.outbox.load_pending)] == [
                "p1:reply"]
