"""The token bucket's priority classes: reply > question > background, FIFO inside a class,
the sliding-window limit unchanged, cancellation consumes nothing, background not starved."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mchat_actors.ratelimit import BucketStatistics, Priority, RequestClass, TokenBucket

from .test_ratelimit import max_in_window


@attrs.define
class Req:
    seq: int
    priority: Priority
    arrived: float
    granted: float | None = None
    order: int | None = None  # grant order
    cancelled: bool = False


def run_mix(rate: float, arrivals: list[tuple[float, Priority, float | None]],
            penalties: list[tuple[float, float]], question_run: int) -> tuple[
                list[Req], list[tuple[str, int]], BucketStatistics]:
    """Start one request per arrival (gap, class, give up after); return what happened."""
    reqs: list[Req] = []
    granted = 0
    log: list[tuple[str, int]] = []  # ("arrive" | "grant", seq) in the order they happened
    stats_box: list[BucketStatistics] = []

    async def client(bucket: TokenBucket, req: Req, patience: float | None) -> None:
        nonlocal granted
        with trio.move_on_after(patience if patience is not None else float("inf")):
            await bucket.acquire(req.priority)
            req.granted, req.order = trio.current_time(), granted
            granted += 1
            log.append(("grant", req.seq))
            return
        req.cancelled = True

    async def penalize(bucket: TokenBucket) -> None:
        for at, seconds in penalties:
            await trio.sleep_until(at)
            bucket.penalize(seconds)

    async def main() -> None:
        bucket = TokenBucket(rate, question_run=question_run, reply_run=question_run)
        with trio.fail_after(100_000):  # a lost wake-up deadlocks: fail instead of hanging
            async with trio.open_nursery() as nursery:
                nursery.start_soon(penalize, bucket)
                for seq, (gap, priority, patience) in enumerate(arrivals):
                    await trio.sleep(gap)
                    req = Req(seq, priority, trio.current_time())
                    reqs.append(req)
                    log.append(("arrive", seq))
                    nursery.start_soon(client, bucket, req, patience)
        stats_box.append(bucket.statistics())

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return reqs, log, stats_box[0]


arrival = st.tuples(
    st.sampled_from([0.0, 0.0, 0.0, 0.01, 0.05, 0.3]),
    st.sampled_from(list(Priority)),
    st.one_of(st.none(), st.none(), st.floats(0.0, 3.0)),
)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.sampled_from([2.0, 5.0, 10.0]),
    arrivals=st.lists(arrival, min_size=1, max_size=70),
    penalties=st.lists(st.tuples(st.floats(0, 5), st.floats(0, 2)), max_size=2),
    question_run=st.integers(1, 6),
)
def test_classes_keep_the_window_order_and_progress(rate, arrivals, penalties, question_run):
    """Random arrivals of the three classes, some giving up, some 429 penalties:
    * no 1 s window holds more than the rate; cancelled waiters consume nothing;
    * nobody waits behind a request of a lower class, or of its own class, that arrived later;
    * while a background request waits, at most ``question_run`` questions that arrived after
      it go between two background grants (the starvation bound);
    * while a question or background request waits, at most ``reply_run`` (here the same
      number) replies that arrived after it go between two grants of other classes."""
    reqs, log, stats = run_mix(rate, arrivals, sorted(penalties), question_run)
    done = [r for r in reqs if r.granted is not None]
    assert all(r.cancelled != (r.granted is not None) for r in reqs)
    assert max_in_window([r.granted for r in done]) <= int(rate)
    assert stats.acquired == len(done)  # the cancelled ones took nothing
    assert stats.waiting == 0
    for a in done:
        for b in done:
            if b.order < a.order and b.seq > a.seq:  # b arrived later and went first
                assert b.priority < a.priority or (
                    a.priority is Priority.BACKGROUND and b.priority is Priority.QUESTION), (a, b)
    by_seq = {r.seq: r for r in reqs}
    for w in (r for r in done if r.priority is Priority.BACKGROUND):
        span = log[log.index(("arrive", w.seq)):log.index(("grant", w.seq))]
        newer_questions = 0  # since the last background grant
        for kind, seq in span:
            if kind != "grant":
                continue
            if by_seq[seq].priority is Priority.BACKGROUND:
                newer_questions = 0
            elif by_seq[seq].priority is Priority.QUESTION and seq > w.seq:
                newer_questions += 1
                assert newer_questions <= question_run, (w, span)
    for w in (r for r in done if r.priority is not Priority.REPLY):
        span = log[log.index(("arrive", w.seq)):log.index(("grant", w.seq))]
        newer_replies = 0  # since the last grant of another class
        for kind, seq in span:
            if kind != "grant":
                continue
            if by_seq[seq].priority is not Priority.REPLY:
                newer_replies = 0
            elif seq > w.seq:
                newer_replies += 1
                assert newer_replies <= question_run, (w, span)


async def test_question_goes_before_a_background_backlog(autojump_clock):
    """2 000 background reads queued on a 10/s bucket (the scale scenario's mapping); a
    question's reads that arrive later go within a few slots, and the backlog still moves at
    its share (1 in question_run + 1 slots) while questions keep coming."""
    bucket = TokenBucket(10.0)
    grants: list[tuple[str, float]] = []

    async def take(name: str, priority: Priority) -> None:
        await bucket.acquire(priority)
        grants.append((name, trio.current_time()))

    async with trio.open_nursery() as nursery:
        for i in range(2000):
            nursery.start_soon(take, f"bg{i}", Priority.BACKGROUND)
        await trio.sleep(1.0)
        asked = trio.current_time()
        for i in range(3):  # the question's channel, members, user
            nursery.start_soon(take, f"q{i}", Priority.QUESTION)
        await trio.sleep(0.6)
        for i in range(40):  # a stream of question reads
            nursery.start_soon(take, f"more{i}", Priority.QUESTION)
        await trio.sleep(10.0)
        nursery.cancel_scope.cancel()
    at = dict(grants)
    assert max(at[f"q{i}"] for i in range(3)) - asked < 0.5  # not 200 s behind the backlog
    names = [n for n, _ in grants]
    more = [i for i, n in enumerate(names) if n.startswith("more")]
    assert len(more) == 40
    window = names[more[0]:more[-1] + 1]
    backgrounds = sum(n.startswith("bg") for n in window)
    assert backgrounds >= 40 // 4 - 1  # one background slot per 4 question slots


async def test_urgent_flag_is_the_reply_class(autojump_clock):
    """``acquire(urgent=True)`` (the old API) is Priority.REPLY: before a queued question."""
    bucket = TokenBucket(1.0)
    order: list[str] = []

    async def take(name: str, priority: Priority = Priority.BACKGROUND,
                   urgent: bool = False) -> None:
        await bucket.acquire(priority, urgent=urgent)
        order.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take, "first")
        await trio.sleep(0)
        nursery.start_soon(take, "question", Priority.QUESTION)
        await trio.sleep(0)
        nursery.start_soon(take, "reply", Priority.BACKGROUND, True)
    assert order == ["first", "reply", "question"]
    assert bucket.statistics().acquired_by_priority == {"reply": 1, "question": 1,
                                                        "background": 1}


def test_question_run_must_be_positive():
    with pytest.raises(ValueError, match="question_run"):
        TokenBucket(1.0, question_run=0)
    with pytest.raises(ValueError, match="reply_run"):
        TokenBucket(1.0, reply_run=0)


async def test_a_question_read_is_not_starved_by_a_reply_backlog(autojump_clock):
    """The backlog scenario: replies keep coming at the whole budget (10/s) and a channel's
    question needs one read (its mapping). The read goes after at most reply_run replies
    (old code: only once the replies ran out, 37 s in the scenario), and replies keep
    4 of every 5 slots while reads keep coming."""
    bucket = TokenBucket(10.0)
    grants: list[str] = []

    async def take(name: str, priority: Priority) -> None:
        await bucket.acquire(priority)
        grants.append(name)

    async def replies(worker: int) -> None:
        for i in range(200):  # two senders, each always waiting with its next reply
            await take(f"r{worker}.{i}", Priority.REPLY)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(replies, 0)
        nursery.start_soon(replies, 1)
        await trio.sleep(2.0)
        nursery.start_soon(take, "read", Priority.QUESTION)
        await trio.sleep(0)
        at = len(grants)
        await trio.sleep(3.0)
        assert "read" in grants[at:at + 5]
        for i in range(10):  # background reads behind the replies
            nursery.start_soon(take, f"bg{i}", Priority.BACKGROUND)
        await trio.sleep(0)
        at = len(grants)
        await trio.sleep(6.0)
        nursery.cancel_scope.cancel()
    window = grants[at:at + 50]
    assert sum(n.startswith("bg") for n in window) == 10
    assert sum(n.startswith("r") for n in window) == 40


async def test_raising_a_request_class_moves_its_waiting_request_up(autojump_clock):
    """A lane's read already waiting in the background class (its channel's mapping) moves
    ahead of the backlog when a question is queued in that lane, in its arrival order."""
    bucket = TokenBucket(1.0)
    lane = RequestClass()
    order: list[str] = []

    async def take(name: str, priority: Priority | RequestClass) -> None:
        await bucket.acquire(priority)
        order.append(name)

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(take, f"bg{i}", Priority.BACKGROUND)
            await trio.sleep(0)
        nursery.start_soon(take, "lane", lane)
        await trio.sleep(0)
        nursery.start_soon(take, "question", Priority.QUESTION)
        await trio.sleep(0.5)
        lane.raise_to(Priority.QUESTION)
    # bg0 went at once; the raised lane read arrived before the question: it goes first
    assert order[:3] == ["bg0", "lane", "question"], order
    lane.reset()
    assert lane.priority is Priority.BACKGROUND


async def test_a_cancelled_request_leaves_its_class(autojump_clock):
    """A waiter of a class that gives up is forgotten by the class: raising it later moves
    nothing and breaks nothing; the request took no slot."""
    bucket = TokenBucket(1.0)
    lane = RequestClass()
    await bucket.acquire()
    with trio.move_on_after(0.3):
        await bucket.acquire(lane)
    lane.raise_to(Priority.QUESTION)
    assert bucket.statistics().acquired == 1
    assert bucket.statistics().waiting == 0


async def test_lending_raises_the_holder_now_and_later(autojump_clock):
    """Priority inheritance: a class waiting for a lock lends its class to the holder's,
    at once and when it is raised while it waits; not after."""
    waiting, holder = RequestClass(), RequestClass()
    with waiting.lending_to(holder):
        assert holder.priority is Priority.BACKGROUND
        waiting.raise_to(Priority.QUESTION)
        assert holder.priority is Priority.QUESTION
    holder.reset()
    waiting.raise_to(Priority.REPLY)
    assert holder.priority is Priority.BACKGROUND


async def test_a_reply_arriving_when_the_reply_run_is_spent_wakes_the_oldest_read(
        autojump_clock):
    """Four replies in a row while a background and a question read wait: the run is spent.
    The question (head while no reply waits) sleeps until its turn; a fifth reply arriving
    meanwhile makes the older background read the head. The bucket must wake it: it hung
    forever before (a lost wake-up seen as test_rate's backlog stalling for 30 s)."""
    bucket = TokenBucket(10.0, burst=1)
    order: list[str] = []

    async def take(name: str, priority: Priority, at: float) -> None:
        await trio.sleep_until(at)
        await bucket.acquire(priority)
        order.append(name)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(take, "r0", Priority.REPLY, 0.0)
            nursery.start_soon(take, "b", Priority.BACKGROUND, 0.01)
            nursery.start_soon(take, "q", Priority.QUESTION, 0.02)
            for n in range(1, 5):
                nursery.start_soon(take, f"r{n}", Priority.REPLY, 0.03 + n / 1000)
            nursery.start_soon(take, "r5", Priority.REPLY, 0.45)
    assert order[:5] == ["r0", "r1", "r2", "r3", "r4"]
    assert sorted(order[5:]) == ["b", "q", "r5"]
    assert order[5] == "b"  # the oldest read after a spent reply run
