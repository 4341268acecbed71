from __future__ import annotations

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mchat_actors.actors import dispatcher
from mchat_actors.config import QueueConfig
from mchat_actors.errors import MattermostUnavailable
from mchat_actors.messages import ChannelId, MattermostUserId, Post, PostCreated, PostId


def ev(channel: str, n: int) -> PostCreated:
    return PostCreated(post=Post(id=PostId(f"{channel}-{n}"), channel_id=ChannelId(channel),
                                 user_id=MattermostUserId("u"), message=str(n)))


async def run_dispatch(events, handle, queues=QueueConfig(channel_mailbox=4)):
    stats = dispatcher.DispatcherStats()
    send, recv = trio.open_memory_channel(8)
    async with trio.open_nursery() as n:
        await n.start(lambda task_status: dispatcher.run(queues, inbox=recv, handle=handle,
                                                         stats=stats, task_status=task_status))
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


async def test_a_bug_in_one_event_is_counted_and_the_channel_goes_on(autojump_clock):
    async def handle(e):
        if e.post.id == "a-0":
            raise KeyError("bug")

    seen = []

    async def wrapped(e):
        await handle(e)
        seen.append(e.post.id)

    stats = await run_dispatch([ev("a", 0), ev("a", 1)], wrapped)
    assert seen == ["a-1"] and stats.errors == 1


async def test_idle_lanes_are_reaped_and_restarted(autojump_clock):
    """An idle channel's serializer exits; a later event starts a new one."""
    queues = QueueConfig(channel_mailbox=4, channel_idle_s=10)
    stats = dispatcher.DispatcherStats()
    send, recv = trio.open_memory_channel(8)
    handled = []

    async def handle(e):
        handled.append(e.post.id)

    async with trio.open_nursery() as n:
        await n.start(lambda task_status: dispatcher.run(queues, inbox=recv, handle=handle,
                                                         stats=stats, task_status=task_status))
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
        await n.start(lambda task_status: dispatcher.run(
            QueueConfig(channel_mailbox=2), inbox=recv, handle=handle, stats=stats,
            task_status=task_status))
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
