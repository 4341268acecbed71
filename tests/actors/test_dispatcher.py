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
from mchat_actors.errors import LeaseLost, MattermostUnavailable, StoreError
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


async def no_catch_up(cid, since_ms):
    raise AssertionError(f"unexpected catch-up of {cid}")
    yield []  # pragma: no cover


def start(queues, recv, handle, stats, store=None, catch_up=no_catch_up, lanes=None):
    """A ``dispatcher.run`` for ``nursery.start``, with a durable retry queue on ``store`` and
    a wall clock tied to trio's (virtual) time."""
    queue = SqliteRetryQueue(store or new_store())
    return lambda task_status: dispatcher.run(
        queues, inbox=recv, handle=handle, stats=stats, retry_queue=queue, catch_up=catch_up,
        lanes=lanes, wall_clock=trio.current_time, task_status=task_status)


async def run_dispatch(events, handle, queues=QueueConfig(channel_mailbox=4), store=None,
                       catch_up=no_catch_up):
    stats = dispatcher.DispatcherStats()
    send, recv = trio.open_memory_channel(8)
    async with trio.open_nursery() as n:
        await n.start(start(queues, recv, handle, stats, store, catch_up))
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
        done = seen.setdefault(e.post.channel_id, [])
        if int(e.post.message) not in done:  # the handler drops duplicates by post id
            done.append(int(e.post.message))

    async def catch_up(cid, since_ms):
        """The server: every event of the channel after the last one handled (the cursor)."""
        yield [e for e in events if e.post.channel_id == cid][len(seen.get(cid, [])):]

    async def main():
        stats = dispatcher.DispatcherStats()
        send, recv = trio.open_memory_channel(8)
        async with trio.open_nursery() as n:
            await n.start(start(QueueConfig(channel_mailbox=4), recv, handle, stats,
                                catch_up=catch_up))
            for e in events:
                await send.send(e)
            with trio.fail_after(3600):
                while sum(len(v) for v in seen.values()) < len(events):
                    await trio.sleep(1)
            await send.aclose()

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

    lanes = dispatcher.Lanes()
    async with trio.open_nursery() as n:
        await n.start(start(queues, recv, handle, stats, lanes=lanes))
        await send.send(ev("a", 0))
        await trio.sleep(30)
        assert stats.lanes_reaped == 1 and "a" not in lanes.by_channel
        await send.send(ev("a", 1))
        await trio.sleep(1)
        assert stats.lanes_started == 2
        await send.aclose()
    assert handled == ["a-0", "a-1"]


async def test_a_full_mailbox_never_blocks_the_dispatcher(autojump_clock):
    """Channel a hangs with a full mailbox. Old code: the dispatcher waited on a's mailbox and
    no channel got anything. Now a is marked behind (its dropped posts are not queued), b
    flows, and when a has room again it catches up from the server: every post once, in
    order."""
    gate = trio.Event()
    handled: list[str] = []
    server = {"a": [ev("a", i) for i in range(10)]}  # what the server would return

    async def handle(e):
        if e.post.channel_id == "a":
            await gate.wait()
        if e.post.id in handled:  # the handler drops duplicates by post id
            return
        handled.append(e.post.id)

    async def catch_up(cid, since_ms):
        done = [p for p in handled if p.startswith(cid)]
        cursor = len(done)  # the cursor: the last handled post
        posts = server[cid][cursor:]
        for start_at in range(0, len(posts), 3):  # pages of 3
            yield posts[start_at:start_at + 3]

    stats = dispatcher.DispatcherStats()
    lanes = dispatcher.Lanes()
    send, recv = trio.open_memory_channel(0)
    async with trio.open_nursery() as n:
        await n.start(start(QueueConfig(channel_mailbox=2), recv, handle, stats,
                            catch_up=catch_up, lanes=lanes))
        with trio.fail_after(1):
            for e in server["a"]:
                await send.send(e)
            for i in range(5):
                await send.send(ev("b", i))
        await trio.sleep(0.1)
        assert [p for p in handled if p.startswith("b")] == [f"b-{i}" for i in range(5)]
        assert lanes.behind_channels() == ["a"] and stats.dropped_behind == 7
        gate.set()
        await trio.sleep(0.1)
        await send.aclose()
    assert [p for p in handled if p.startswith("a")] == [f"a-{i}" for i in range(10)]
    assert stats.catch_ups == 1 and lanes.behind_channels() == []


async def test_a_failed_catch_up_is_tried_again(autojump_clock):
    gate = trio.Event()
    handled: list[str] = []
    tries = []

    async def handle(e):
        await gate.wait()
        if e.post.id not in handled:
            handled.append(e.post.id)

    async def catch_up(cid, since_ms):
        tries.append(since_ms)
        if len(tries) == 1:
            raise MattermostUnavailable("503")
        yield [ev("a", i) for i in range(len(handled), 6)]

    stats = dispatcher.DispatcherStats()
    send, recv = trio.open_memory_channel(0)
    async with trio.open_nursery() as n:
        await n.start(start(QueueConfig(channel_mailbox=1), recv, handle, stats,
                            catch_up=catch_up))
        for i in range(6):
            await send.send(ev("a", i))
        gate.set()
        await trio.sleep(dispatcher.CATCH_UP_RETRY_S + 1)
        await send.aclose()
    assert handled == [f"a-{i}" for i in range(6)]
    assert stats.catch_up_failures == 1 and len(tries) == 2 and tries[0] == tries[1]


def start_batched(queues, recv, handle, handle_batch, stats):
    queue = SqliteRetryQueue(new_store())
    return lambda task_status: dispatcher.run(
        queues, inbox=recv, handle=handle, stats=stats, retry_queue=queue,
        catch_up=no_catch_up, handle_batch=handle_batch, wall_clock=trio.current_time,
        task_status=task_status)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=80),
       st.lists(st.booleans(), max_size=20))
def test_lane_batches_keep_order_and_handle_each_post_once(schedule, failures):
    """Plain posts go in lane batches (one storage request each), questions one at a time; a
    batch that fails commits nothing and its posts take the one-at-a-time path. Whatever the
    interleaving: every post handled exactly once, each channel in the order it was sent."""
    handled: list[str] = []
    alone: list[str] = []
    fail = iter(failures)
    counters = {"i": 0}

    def make(channel: str, question: bool) -> PostCreated:
        counters["i"] += 1
        text = "?" if question else "plain"
        return PostCreated(post=Post(id=PostId(f"{channel}-{counters['i']}"),
                                     channel_id=ChannelId(channel),
                                     user_id=MattermostUserId("u"), message=text))

    events = [make(c, q) for c, q in schedule]

    async def handle(e):
        await trio.sleep(0.01)
        handled.append(e.post.id)
        alone.append(e.post.id)

    async def handle_batch(run):
        await trio.sleep(0.01)
        taken = []
        for e in run:
            if e.post.message == "?":
                break
            taken.append(e.post.id)
        if taken and next(fail, False):
            raise StoreError("batch failed")  # nothing of it recorded
        handled.extend(taken)
        return len(taken)

    async def main():
        stats = dispatcher.DispatcherStats()
        send, recv = trio.open_memory_channel(0)
        async with trio.open_nursery() as n:
            await n.start(start_batched(QueueConfig(channel_mailbox=100), recv, handle,
                                        handle_batch, stats))
            async with send:
                for e in events:
                    await send.send(e)
                    await trio.sleep(0)
        return stats

    stats = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    sent = [e.post.id for e in events]
    assert sorted(handled) == sorted(sent)  # each once: no loss, no duplicate
    for channel in "abc":
        assert [p for p in handled if p[0] == channel] == [p for p in sent if p[0] == channel]
    plain = [e.post.id for e in events if e.post.message != "?"]
    assert stats.batched_posts + len([p for p in alone if p in plain]) == len(plain)
    assert stats.batch_fallbacks <= len(failures)
    if plain and not any(failures):
        assert stats.batched_posts == len(plain)  # no plain post went one at a time


async def test_a_queued_question_raises_its_lanes_request_class(autojump_clock):
    """A question queued behind a post still being handled raises the class of the lane's
    requests (the earlier post's mapping waits in it), and the class drops back after the
    question; other lanes stay background."""
    from mchat_actors.ratelimit import Priority

    seen: list[tuple[str, Priority, Priority]] = []  # (post, class at start, class at end)

    async def handle(e, *, request_class):
        start = request_class.priority
        await trio.sleep(1.0)  # the post's mapping waits in the budget meanwhile
        seen.append((e.post.id, start, request_class.priority))

    def is_question(e):
        return e.post.message.startswith("@ai")

    question = PostCreated(post=Post(id=PostId("a-q"), channel_id=ChannelId("a"),
                                     user_id=MattermostUserId("u"), message="@ai 어때?"))
    stats = dispatcher.DispatcherStats()
    lanes = dispatcher.Lanes()
    send, recv = trio.open_memory_channel(8)
    async with trio.open_nursery() as n:
        await n.start(lambda task_status: dispatcher.run(
            QueueConfig(channel_mailbox=4), inbox=recv, handle=handle, stats=stats,
            retry_queue=SqliteRetryQueue(new_store()), catch_up=no_catch_up, lanes=lanes,
            is_question=is_question, wall_clock=trio.current_time, task_status=task_status))
        async with send:
            await send.send(ev("a", 0))
            await send.send(ev("b", 0))
            await trio.sleep(0.5)
            await send.send(question)
            await trio.sleep(0.1)
            assert lanes.by_channel["a"].request_class.priority is Priority.QUESTION
            assert lanes.by_channel["b"].request_class.priority is Priority.BACKGROUND
            await trio.sleep(3.0)
            assert lanes.by_channel["a"].request_class.priority is Priority.BACKGROUND
            assert lanes.by_channel["a"].questions == 0
    by_id = {pid: (start, end) for pid, start, end in seen}
    assert by_id["a-0"] == (Priority.BACKGROUND, Priority.QUESTION)  # raised while waiting
    assert by_id["a-q"][0] is Priority.QUESTION
    assert by_id["b-0"] == (Priority.BACKGROUND, Priority.BACKGROUND)


async def test_a_question_read_by_a_catch_up_raises_the_class_of_its_page(autojump_clock):
    """A lane that fell behind dropped a question at its full mailbox: the catch-up page that
    holds it is handled in the question class (the posts before it too), then back."""
    from mchat_actors.ratelimit import Priority

    gate = trio.Event()
    classes: dict[str, Priority] = {}
    question = PostCreated(post=Post(id=PostId("a-q"), channel_id=ChannelId("a"),
                                     user_id=MattermostUserId("u"), message="@ai 질문"))
    server = [ev("a", i) for i in range(4)] + [question]

    async def handle(e, *, request_class):
        if e.post.id == "a-0":
            await gate.wait()
        classes.setdefault(e.post.id, request_class.priority)

    async def catch_up(cid, since_ms):
        yield [e for e in server if e.post.id not in classes]

    lanes = dispatcher.Lanes()
    send, recv = trio.open_memory_channel(0)
    async with trio.open_nursery() as n:
        await n.start(lambda task_status: dispatcher.run(
            QueueConfig(channel_mailbox=1), inbox=recv, handle=handle,
            stats=dispatcher.DispatcherStats(), retry_queue=SqliteRetryQueue(new_store()),
            catch_up=catch_up, lanes=lanes, is_question=lambda e: "@ai" in e.post.message,
            wall_clock=trio.current_time, task_status=task_status))
        for e in server:
            await send.send(e)
        await trio.sleep(0.1)
        assert lanes.behind_channels() == ["a"]  # the question was dropped, not queued
        gate.set()
        await trio.sleep(0.1)
        assert lanes.by_channel["a"].request_class.priority is Priority.BACKGROUND
        await send.aclose()
    assert classes["a-0"] is Priority.BACKGROUND
    assert classes["a-2"] is Priority.QUESTION and classes["a-q"] is Priority.QUESTION


async def test_a_question_parked_behind_a_parked_event_leaves_no_raised_class(autojump_clock):
    """A parked lane parks a later question behind its head: the question is uncounted then,
    so the lane's other reads do not stay in the question class."""
    from mchat_actors.ratelimit import Priority

    async def handle(e, *, request_class):
        raise StoreError("a bug: parked at once")

    question = PostCreated(post=Post(id=PostId("a-q"), channel_id=ChannelId("a"),
                                     user_id=MattermostUserId("u"), message="@ai 질문"))
    lanes = dispatcher.Lanes()
    stats = dispatcher.DispatcherStats()
    send, recv = trio.open_memory_channel(0)
    async with trio.open_nursery() as n:
        await n.start(lambda task_status: dispatcher.run(
            QueueConfig(channel_mailbox=4), inbox=recv, handle=handle, stats=stats,
            retry_queue=SqliteRetryQueue(new_store()), catch_up=no_catch_up, lanes=lanes,
            is_question=lambda e: "@ai" in e.post.message, wall_clock=trio.current_time,
            task_status=task_status))
        await send.send(ev("a", 0))
        await trio.sleep(0.1)
        assert lanes.parked_channels() == ["a"]
        await send.send(question)
        await trio.sleep(0.1)
        assert stats.parked == 2
        assert lanes.by_channel["a"].questions == 0
        assert lanes.by_channel["a"].request_class.priority is Priority.BACKGROUND
        n.cancel_scope.cancel()


async def test_an_event_whose_channel_lease_is_lost_is_dropped_not_parked(autojump_clock):
    """Replicas: a write refused by the lease's fence (``LeaseLost``: another replica owns
    the channel now and reads it again from the cursor) drops the event: not retried, not
    parked (a parked event would be retried by a replica that does not own its channel); the
    channel's next events are handled (a lease gained again)."""
    calls = []

    async def handle(e):
        calls.append(e.post.id)
        if len(calls) == 1:
            raise LeaseLost("bucket:3 (epoch 4) is no longer this replica's")

    stats = await run_dispatch([ev("a", 0), ev("a", 1)], handle)
    assert calls == ["a-0", "a-1"]
    assert stats.lease_lost == 1 and stats.parked == 0 and stats.errors == 0
