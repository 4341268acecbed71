"""An idle lane holds nothing of what it handled (the memory of idle channel actors: with
10 000 channels, each lane keeping its last post, or its last batch of up to 128, would cost
that much per channel for as long as the lane lives; bench/bench_lanes.py measures a lane)."""

from __future__ import annotations

import gc
import weakref

import trio

from mchat_actors.actors import dispatcher
from mchat_actors.config import QueueConfig
from tests.actors.test_dispatcher import ev, start, start_batched


async def test_an_idle_lane_holds_none_of_its_handled_posts(autojump_clock):
    handled: list[weakref.ref[object]] = []

    async def handle(event):
        handled.append(weakref.ref(event))

    stats, lanes = dispatcher.DispatcherStats(), dispatcher.Lanes()
    send, recv = trio.open_memory_channel(8)
    async with trio.open_nursery() as n:
        await n.start(start(QueueConfig(channel_mailbox=4), recv, handle, stats, lanes=lanes))
        for i in range(3):
            await send.send(ev("a", i))
        await send.send(ev("b", 0))  # the dispatcher's loop holds the last event it routed
        await trio.sleep(1)
        gc.collect()
        assert len(handled) == 4 and sorted(lanes.by_channel) == ["a", "b"]  # idle, not reaped
        assert not lanes.by_channel["a"].busy
        assert [ref() for ref in handled[:3]] == [None, None, None]
        await send.aclose()


async def test_an_idle_lane_holds_none_of_its_last_batch(autojump_clock):
    handled: list[weakref.ref[object]] = []

    async def handle(event):
        raise AssertionError("every post goes in a batch here")

    async def handle_batch(run):
        handled.extend(weakref.ref(e) for e in run)
        await trio.lowlevel.checkpoint()
        return len(run)

    stats = dispatcher.DispatcherStats()
    send, recv = trio.open_memory_channel(8)
    async with trio.open_nursery() as n:
        await n.start(start_batched(QueueConfig(channel_mailbox=8), recv, handle,
                                    handle_batch, stats))
        for i in range(6):
            send.send_nowait(ev("a", i))
        send.send_nowait(ev("b", 0))  # the dispatcher's loop holds the last event it routed
        await trio.sleep(1)
        gc.collect()
        assert len(handled) == 7 and stats.batches >= 2 and stats.lanes_reaped == 0
        assert [ref() for ref in handled[:6]] == [None] * 6
        await send.aclose()
