from __future__ import annotations

import tempfile
from pathlib import Path

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mchat_actors import retry_queue
from mchat_actors.actors import dispatcher
from mchat_actors.config import QueueConfig
from mchat_actors.errors import MattermostUnavailable, StoreError
from mchat_actors.messages import ChannelId, MattermostUserId, Post, PostCreated, PostId
from mchat_actors.retry_queue import SqliteRetryQueue
from tests.fakes import InlineStore


def ev(channel: str, n: int) -> PostCreated:
    return PostCreated(post=Post(id=PostId(f"{channel}-{n}"), channel_id=ChannelId(channel),
                                 user_id=MattermostUserId("u"), message=str(n)))


def new_store(path=None) -> InlineStore:
    if path is None:
        path = Path(tempfile.mkdtemp()) / "d.db"
    return InlineStore.open(path)


def start(queues, recv, handle, stats, store=None):
    """A ``dispatcher.run`` for ``nursery.start``, with a durable retry queue on ``store`` and
    a wall clock tied to trio's (virtual) time."""
    queue = SqliteRetryQueue(store or new_store())
    return lambda task_status: dispatcher.run(
        queues, inbox=recv, handle=handle, stats=stats, retry_queue=queue,
        wall_clock=trio.current_time, task_status=task_status)


async def run_dispatch(events, handle, queues=QueueConfig(channel_mailbox=4), store=None):
    stats = dispatcher.DispatcherStats()
    send, recv = trio.open_memory_channel(8)
    async with trio.open_nursery() as n:
        await n.start(start(queues, recv, handle, stats, store))
        async with send:
            for e in events:
                await send.send(e)
    return stats


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 3)), max_size=60))
def test_each_channel_is_handled_strictly_in_order(schedule):
    """Whatever the interleaving and per-event delays, a channel's events keep their order."""
    counters = {c: 0 for c in "abcd"}
    events = []
    delays = {}
    for channel, delay in schedule:
        e = ev(channel, counters[channel])
        counters[channel] += 1
        events.append(e)
        delays[e.post.id] = delay
    seen: dict[str, list[int]] = {}

    async def handle(e):
        await trio.sleep(delays[e.post.id])
        seen.setdefault(e.post.channel_id, []).append(int(e.post.message))

    async def main():
        await run_dispatch(events, handle)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    for channel, numbers in seen.items():
        assert numbers == list(range(counters[channel]))
    assert sum(len(v) for v in seen.values()) == len(events)


async def test_a_hung_channel_does_not_delay_others(autojump_clock):
    """Channel a's handler hangs for 30 s; channel b's events are done long before."""
    done_at: dict[str, float] = {}

    async def handle(e):
        if e.post.channel_id == "a":
            await trio.sleep(30)
        done_at[e.post.id] = trio.current_time()

    start = trio.current_time()
    await run_dispatch([ev("a", 0)] + [ev("b", i) for i in range(10)], handle)
    assert max(done_at[f"b-{i}"] for i in range(10)) - start < 1
    assert done_at["a-0"] - start >= 30


async def test_transient_errors_retry_the_same_event_in_order(autojump_clock):
    """A MattermostUnavailable retries that event before the channel's next one."""
    calls = []

    async def handle(e):
        calls.append(e.post.id)
        if e.post.id == "a-0" and calls.count("a-0") < 3:
            raise MattermostUnavailable("down")

    stats = await run_dispatch([ev("a", 0), ev("a", 1)], handle)
    assert calls == ["a-0", "a-0", "a-0", "a-1"]
    assert stats.retries == 2 and stats.errors == 0


async def test_a_bug_parks_the_event_and_holds_the_channel_behind_it(autojump_clock):
    """A programming error is not dropped (it was: the channel went on without the post) and
    not retried in place as if transient: the event is parked at once and retried from the
    durable queue, and the channel's later events wait behind it."""
    calls = []
    seen = []

    async def handle(e):
        calls.append(e.post.id)
        if e.post.id == "a-0" and calls.count("a-0") == 1:
            raise KeyError("bug")
        seen.append(e.post.id)

    store = new_store()
    stats = dispatcher.DispatcherStats()
    send, recv = trio.open_memory_channel(8)
    async with trio.open_nursery() as n:
        await n.start(start(QueueConfig(channel_mailbox=4), recv, handle, stats, store))
        await send.send(ev("a", 0))
        await send.send(ev("a", 1))
        await send.send(ev("b", 0))
        await trio.sleep(0.1)
        assert seen == ["b-0"]  # a-1 waits behind the parked a-0; b flows
        assert [r["post_id"] for r in retry_queue.listing(store.db)] == ["a-0", "a-1"]
        await trio.sleep(retry_queue.backoff_s(1) + 0.1)
        assert seen == ["b-0", "a-0", "a-1"]
        assert retry_queue.listing(store.db) == []
        await send.aclose()
    assert stats.errors == 1 and stats.retries == 0 and stats.parked == 2


async def test_an_event_that_keeps_failing_is_never_given_up(autojump_clock):
    """Old code gave up after 7 tries (61 s) and the channel moved on: the post was lost. Now
    it is retried from the durable queue until it succeeds, and the channel keeps its order."""
    calls = []
    seen = []

    async def handle(e):
        calls.append(e.post.id)
        if e.post.id == "a-0" and calls.count("a-0") < 12:
            raise MattermostUnavailable("down")
        seen.append(e.post.id)

    store = new_store()
    stats = await run_dispatch_until([ev("a", 0), ev("a", 1)], handle, store, lambda: len(seen)
                                     == 2, within_s=3600)
    assert seen == ["a-0", "a-1"]
    assert calls.count("a-0") == 12
    assert stats.parked_failures == 12 - len(dispatcher.RETRY_DELAYS_S) - 2
    assert retry_queue.listing(store.db) == []


async def run_dispatch_until(events, handle, store, done, *, within_s):
    stats = dispatcher.DispatcherStats()
    send, recv = trio.open_memory_channel(8)
    async with trio.open_nursery() as n:
        await n.start(start(QueueConfig(channel_mailbox=4), recv, handle, stats, store))
        for e in events:
            await send.send(e)
        with trio.fail_after(within_s):
            while not done():
                await trio.sleep(1)
        await send.aclose()
    return stats


async def test_parked_events_survive_a_restart_and_go_first(autojump_clock, tmp_path):
    """Events parked by one run are in the database; the next run's dispatcher starts their
    lane at once and handles them before the channel's new events."""
    store = InlineStore.open(tmp_path / "r.db")

    async def broken(e):
        raise MattermostUnavailable("down")

    await run_dispatch([ev("a", 0), ev("a", 1)], broken, store=store)
    assert [r["post_id"] for r in retry_queue.listing(store.db)] == ["a-0", "a-1"]
    seen = []

    async def works(e):
        seen.append(e.post.id)

    await run_dispatch_until([ev("a", 2)], works, store, lambda: len(seen) == 3, within_s=600)
    assert seen == ["a-0", "a-1", "a-2"]


async def test_store_errors_that_are_bugs_are_not_retried_in_place(autojump_clock):
    """A StoreError that is not StoreUnavailable (bad SQL) is a bug: parked, no quick retries."""
    calls = []

    async def handle(e):
        calls.append(e.post.id)
        if len(calls) == 1:
            raise StoreError("no such column")

    stats = await run_dispatch([ev("a", 0)], handle)
    assert calls == ["a-0"] and stats.retries == 0 and stats.parked == 1


async def test_idle_lanes_are_reaped_and_restarted(autojump_clock):
    """An idle channel's serializer exits; a later event starts a new one."""
    queues = QueueConfig(channel_mailbox=4, channel_idle_s=10)
    stats = dispatcher.DispatcherStats()
    send, recv = trio.open_memory_channel(8)
    handled = []

    async def handle(e):
        handled.append(e.post.id)

    async with trio.open_nursery() as n:
        await n.start(start(queues, recv, handle, stats))
        await send.send(ev("a", 0))
        await trio.sleep(30)
        assert stats.lanes_reaped == 1 and "a" not in stats.lanes
        await send.send(ev("a", 1))
        await trio.sleep(1)
        assert stats.lanes_started == 2
        await send.aclose()
    assert handled == ["a-0", "a-1"]


async def test_full_mailbox_applies_back_pressure(autojump_clock):
    """With a blocked channel and a full mailbox, the dispatcher stops taking events."""
    gate = trio.Event()

    async def handle(e):
        await gate.wait()

    stats = dispatcher.DispatcherStats()
    send, recv = trio.open_memory_channel(0)
    async with trio.open_nursery() as n:
        await n.start(start(QueueConfig(channel_mailbox=2), recv, handle, stats))
        sent = 0
        with trio.move_on_after(5):
            for i in range(10):
                await send.send(ev("a", i))
                sent += 1
        # 1 in the handler + 2 in the mailbox + 1 held by the dispatcher's pending send
        assert sent == 4
        assert stats.mailbox_depths() == {"a": 2}
        gate.set()
        await send.aclose()
