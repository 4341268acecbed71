"""The replica's channel ownership actor (``actors.ownership``) on the real PostgreSQL server,
real clocks, short leases: two replicas split the buckets and never both own a channel; one
dies without giving its leases back (SIGKILL) and the other takes them within lease time + one
renew period, drops nothing of the channels it owns, and reads the channels it gained again
from their cursors; a clean stop gives the leases back at once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any

import pytest
import trio

from mchat_actors.actors.ownership import (
    ChannelOwnership,
    OwnershipChange,
    forward_owned,
    resume_gained,
)
from mchat_actors.errors import StoreUnavailable
from mchat_actors.messages import (
    ChannelId,
    InboundEvent,
    MattermostUserId,
    Post,
    PostCreated,
    PostId,
    channel_of,
)
from mchat_actors.pg.database import PgDatabase, open_database
from mchat_actors.pg.leases import LeaseSettings, Lessee, declare, owners

pytestmark = pytest.mark.pg

FAST = LeaseSettings(ttl_s=1.0, renew_every_s=0.25, margin_s=0.1)
CHANNELS = [f"ch{n}" for n in range(24)]


def event(channel: str, n: int = 0) -> PostCreated:
    return PostCreated(post=Post(id=PostId(f"{channel}-p{n}"), channel_id=ChannelId(channel),
                                 user_id=MattermostUserId("u"), message="질문"))


async def wait_for(predicate, within_s: float) -> float:
    """Seconds until ``predicate()`` held (polled: the leases change in another thread)."""
    start = trio.current_time()
    with trio.fail_after(within_s):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(0.02)
    return trio.current_time() - start


async def test_two_replicas_split_the_channels_and_one_takes_over_a_dead_one(pg_url):
    async with open_database(pg_url) as db, trio.open_nursery() as nursery:
        a = ChannelOwnership(db, Lessee("replica-a", FAST), buckets=8)
        b = ChannelOwnership(db, Lessee("replica-b", FAST), buckets=8)
        a_changes_send, a_changes = trio.open_memory_channel[OwnershipChange](16)
        await nursery.start(partial(a.run, a_changes_send))
        assert all(a.owns(c) for c in CHANNELS)  # alone: everything after its first tick
        b_scope = trio.CancelScope()

        async def run_b(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            send, recv = trio.open_memory_channel[OwnershipChange](16)
            with b_scope:
                async with recv:
                    await b.run(send, release_on_exit=False, task_status=task_status)

        await nursery.start(run_b)
        overlap: list[str] = []

        async def watch() -> None:  # never two owners of one channel, at any moment
            while True:
                overlap.extend(c for c in CHANNELS if a.owns(c) and b.owns(c))
                await trio.sleep(0.01)

        nursery.start_soon(watch)
        await wait_for(lambda: len(a.held()) == 4 and len(b.held()) == 4, within_s=4 * 0.25 + 2)
        mine = [c for c in CHANNELS if a.owns(c)]
        assert 0 < len(mine) < len(CHANNELS)
        assert all(b.owns(c) for c in CHANNELS if c not in mine)

        # intake filter: a passes on only its own channels' events, in order
        raw_send, raw_recv = trio.open_memory_channel[InboundEvent](64)
        out_send, out_recv = trio.open_memory_channel[InboundEvent](64)
        nursery.start_soon(forward_owned, raw_recv, out_send, a)
        for n, c in enumerate(CHANNELS):
            await raw_send.send(event(c, n))
        passed: list[str] = []

        async def collect() -> None:
            async for e in out_recv:
                passed.append(str(channel_of(e)))

        nursery.start_soon(collect)
        await wait_for(lambda: a.stats.dropped_events + len(passed) == len(CHANNELS), within_s=2)
        assert passed == mine and a.stats.dropped_events == len(CHANNELS) - len(mine)

        # b dies without a word (SIGKILL: no release); a reads b's channels again
        caught: list[str] = []

        async def catch_up(cid: str, since_ms: int) -> AsyncIterator[Sequence[InboundEvent]]:
            caught.append(cid)
            yield [event(cid, 99)]

        async def channel_ids() -> list[str]:
            return CHANNELS

        while True:  # the changes so far (a's first take, its give-back to b) are past
            try:
                a_changes.receive_nowait()
            except trio.WouldBlock:
                break
        resumed_send, resumed_recv = trio.open_memory_channel[InboundEvent](64)
        nursery.start_soon(partial(resume_gained, a_changes, resumed_send, a,
                                   channel_ids=channel_ids, catch_up=catch_up,
                                   since_ms=lambda: 0))
        b_scope.cancel()
        took = await wait_for(lambda: all(a.owns(c) for c in CHANNELS), within_s=5)
        assert took <= FAST.ttl_s + FAST.renew_every_s + 1.0  # + slack for a loaded machine
        await wait_for(lambda: len(caught) == len(CHANNELS) - len(mine), within_s=2)
        assert sorted(caught) == sorted(c for c in CHANNELS if c not in mine)
        resumed = [resumed_recv.receive_nowait() for _ in caught]
        assert {str(channel_of(e)) for e in resumed} == set(caught)
        assert overlap == []
        nursery.cancel_scope.cancel()


async def test_a_clean_stop_gives_the_leases_back_at_once(pg_url):
    async with open_database(pg_url) as db:
        a = ChannelOwnership(db, Lessee("replica-a", FAST), buckets=4)
        send, recv = trio.open_memory_channel[OwnershipChange](8)
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(a.run, send))
            assert len(a.held()) == 4
            nursery.cancel_scope.cancel()
        assert set((await db.run(owners)).values()) == {None}
        assert not a.owns("ch1")
        recv.close()


class FailingTicks:
    """The database as the actor sees it, with every lease tick failing (the server gone)."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await self._db.run(fn, *args, **kwargs)

    async def run_own(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("server gone")


async def test_a_failed_tick_lets_the_leases_lapse_instead_of_trusting_them(pg_url):
    async with open_database(pg_url) as db:
        a = ChannelOwnership(db, Lessee("replica-a", FAST), buckets=4)
        send, recv = trio.open_memory_channel[OwnershipChange](8)
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(a.run, send, release_on_exit=False))
            assert a.owns("ch1") and recv.receive_nowait().gained == a.held()
            a.db = FailingTicks(db)
            await wait_for(lambda: not a.owns("ch1"), within_s=FAST.ttl_s + 0.5)
            change = await recv.receive()
            assert change.lost and not change.gained and a.stats.tick_failures >= 1
            nursery.cancel_scope.cancel()
        recv.close()


class Channel:
    """One channel as the server and the database see it: its posts in order, the durable
    cursor (the last post recorded, never moved back) and what was handled."""

    def __init__(self, posts: list[str], cursor: str) -> None:
        self.posts, self.cursor, self.handled = posts, cursor, [cursor]

    def record(self, post_id: str) -> None:
        self.handled.append(post_id)
        if self.posts.index(post_id) > self.posts.index(self.cursor):
            self.cursor = post_id


async def test_a_taken_channel_is_read_from_the_cursor_it_had_when_taken(pg_url):
    """Issue #15's lost first question, deterministic: the previous owner died before it
    recorded p1; p2 comes from the new owner's WebSocket before its re-read reaches the
    channel (the re-read waits for the bot's channel list, a rate-limited REST call). Before
    the fix the new owner handled p2 at once, which moved the durable cursor past p1, and
    the re-read started from that cursor: p1 lost. Now the gained bucket is served only
    after its channels were read again from the cursors they had when taken: p1, p2 in
    order."""
    ch = Channel(["p0", "p1", "p2"], cursor="p0")

    def post(pid: str, source: str = "websocket") -> PostCreated:
        return PostCreated(post=Post(id=PostId(pid), channel_id=ChannelId("ch1"),
                                     user_id=MattermostUserId("u"), message="@ai 질문"),
                           source=source)

    async def cursors() -> dict[str, str | None]:
        return {"ch1": ch.cursor}

    async def channel_ids() -> list[str]:
        await trio.sleep(0.5)  # the bot's channel list: one REST request in a small budget
        return ["ch1"]

    async def catch_up(cid: str, since_ms: int, *taken: str | None
                       ) -> AsyncIterator[Sequence[InboundEvent]]:
        start = taken[0] if taken else ch.cursor  # as Sweeper.catch_up
        yield [post(p, "catch_up") for p in ch.posts[ch.posts.index(start) + 1:]] if start else []

    async with open_database(pg_url) as db, trio.open_nursery() as nursery:
        b = ChannelOwnership(db, Lessee("replica-b", FAST), buckets=1, gate_gains=True)
        changes_send, changes_recv = trio.open_memory_channel[OwnershipChange](8)
        raw_send, raw_recv = trio.open_memory_channel[InboundEvent](64)
        out_send, out_recv = trio.open_memory_channel[InboundEvent](64)
        nursery.start_soon(forward_owned, raw_recv, out_send, b)
        nursery.start_soon(partial(resume_gained, changes_recv, raw_send.clone(), b,
                                   channel_ids=channel_ids, catch_up=catch_up,
                                   cursors=cursors, since_ms=lambda: 0))

        async def handler() -> None:  # records what passes the filter, in order
            async for e in out_recv:
                if e.post.id not in ch.handled:  # type: ignore[union-attr]
                    ch.record(str(e.post.id))  # type: ignore[union-attr]

        nursery.start_soon(handler)
        await nursery.start(partial(b.run, changes_send))  # b takes the only bucket
        assert b.held() == {"bucket:0"} and not b.owns("ch1")  # not served before the re-read
        await raw_send.send(post("p2"))  # live, from b's WebSocket, before the re-read
        await wait_for(lambda: b.stats.dropped_events == 1, within_s=1)  # held back
        await wait_for(lambda: b.owns("ch1"), within_s=3)  # served once it was read again
        await wait_for(lambda: "p1" in ch.handled, within_s=3)  # lost before the fix
        # in order: the cursor never moved past a post not recorded yet (a replica killed
        # during its re-read leaves a cursor the next owner can start from)
        assert ch.handled == ["p0", "p1", "p2"] and ch.cursor == "p2"
        await raw_send.send(post("p3"))
        ch.posts.append("p3")
        await wait_for(lambda: "p3" in ch.handled, within_s=1)  # served: live events pass
        nursery.cancel_scope.cancel()


async def test_a_gained_bucket_is_not_served_before_its_cursors_are_read(pg_url):
    """Events of a gained bucket are dropped (and read again) until resume_gained has read
    the cursors: nothing handled meanwhile can move a cursor the re-read starts from."""
    async with open_database(pg_url) as db:
        b = ChannelOwnership(db, Lessee("replica-b2", FAST), buckets=1, gate_gains=True)
        await db.run(declare, ["bucket:0"])
        change = await b.tick()
        assert change is not None and change.gained == {"bucket:0"}
        assert b.held() == {"bucket:0"} and not b.owns("ch1")
        b.trust(change.gained)
        assert b.owns("ch1")
        await db.run_own(b.lessee.shutdown)
        assert not b.owns("ch1")
        b.trust(change.gained)  # given back: trusting it again serves nothing
        assert not b.owns("ch1")
