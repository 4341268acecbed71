from __future__ import annotations

import bisect

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mchat_actors.ratelimit import TokenBucket


def max_in_window(times: list[float], window_s: float = 1.0) -> int:
    """The largest number of times inside any half-open window [t, t + window_s)."""
    times = sorted(times)
    return max(
        (bisect.bisect_left(times, t + window_s) - i for i, t in enumerate(times)), default=0
    )


def run_arrivals(rate: float, burst: int, gaps: list[float], jitter: list[float]) -> list[float]:
    """Send one request per arrival (gaps between arrivals), return server-side arrival times."""
    seen: list[float] = []

    async def client(bucket: TokenBucket, delay: float) -> None:
        await bucket.acquire()
        sent = trio.current_time()
        await trio.sleep(delay)  # network latency, below the bucket's margin
        seen.append(sent + delay)

    async def main() -> None:
        bucket = TokenBucket(rate, burst=burst)
        async with trio.open_nursery() as nursery:
            for gap, delay in zip(gaps, jitter, strict=True):
                await trio.sleep(gap)
                nursery.start_soon(client, bucket, delay)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return seen


@settings(max_examples=40)
@given(
    rate=st.sampled_from([1.0, 2.5, 10.0, 20.0]),
    burst=st.integers(1, 30),
    data=st.data(),
)
def test_no_window_exceeds_rate_for_random_arrivals(rate, burst, data):
    """For random arrivals, bursts and sub-margin jitter, no 1 s window holds more than the rate."""
    n = data.draw(st.integers(1, 60))
    gaps = data.draw(st.lists(st.floats(0, 0.5), min_size=n, max_size=n))
    jitter = data.draw(st.lists(st.floats(0, 0.0099), min_size=n, max_size=n))
    seen = run_arrivals(rate, burst, gaps, jitter)
    assert len(seen) == n
    assert max_in_window(seen) <= int(rate)


@settings(max_examples=10)
@given(rate=st.sampled_from([2.0, 5.0, 10.0]), burst=st.integers(1, 10))
def test_throughput_converges_to_rate_under_backlog(rate, burst):
    """With a backlog of 500, throughput is within 2.5 % of the rate (margin and burst edges)."""
    seen = run_arrivals(rate, burst, [0.0] * 500, [0.0] * 500)
    achieved = (len(seen) - 1) / (max(seen) - min(seen))
    assert achieved == pytest.approx(rate, rel=0.025)
    assert max_in_window(seen) <= rate


async def test_waiters_are_served_first_come_first_served(autojump_clock):
    """Tasks that queue on a busy bucket get through in arrival order."""
    bucket = TokenBucket(5.0)
    order: list[int] = []

    async def client(i: int) -> None:
        await bucket.acquire()
        order.append(i)

    async with trio.open_nursery() as nursery:
        for i in range(12):
            nursery.start_soon(client, i)
            await trio.testing.wait_all_tasks_blocked()
    assert order == list(range(12))


async def test_penalize_holds_everyone_until_retry_after(autojump_clock):
    """After penalize(3), no request goes for 3 seconds."""
    bucket = TokenBucket(10.0)
    await bucket.acquire()
    bucket.penalize(3.0)
    start = trio.current_time()
    await bucket.acquire()
    assert trio.current_time() - start == pytest.approx(3.0)
    assert bucket.statistics().penalties == 1


async def test_remaining_zero_blocks_until_reset(autojump_clock):
    """X-Ratelimit-Remaining 0 with Reset 2 blocks the next request for 2 s."""
    bucket = TokenBucket(10.0)
    bucket.update_from_headers(101, 0, 2)
    start = trio.current_time()
    await bucket.acquire()
    assert trio.current_time() - start == pytest.approx(2.0)
    stats = bucket.statistics()
    assert (stats.server_limit, stats.server_remaining) == (101, 0)


async def test_remaining_above_zero_does_not_block(autojump_clock):
    """A response with budget left does not delay the next request."""
    bucket = TokenBucket(10.0)
    bucket.update_from_headers(101, 50, 1)
    start = trio.current_time()
    await bucket.acquire()
    assert trio.current_time() == start


async def test_penalty_during_a_wait_extends_it(autojump_clock):
    """A waiter already sleeping honours a penalty that arrives meanwhile."""
    bucket = TokenBucket(1.0)
    await bucket.acquire()
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(bucket.acquire)
        await trio.sleep(0.5)
        bucket.penalize(4.0)
    assert trio.current_time() - start == pytest.approx(4.5)


async def test_statistics_count_acquires_and_waits(autojump_clock):
    """statistics() counts acquisitions, the ones that waited and the waiting time."""
    bucket = TokenBucket(2.0)
    for _ in range(3):
        await bucket.acquire()
    stats = bucket.statistics()
    assert stats.acquired == 3
    assert stats.waits == 2
    assert stats.total_wait_s == pytest.approx(0.5 + 0.51)  # the window rule adds the margin
    assert stats.waiting == 0
    assert stats.blocked_until is None


async def test_cancelled_waiter_consumes_nothing(autojump_clock):
    """A waiter cancelled before its turn does not use up a slot."""
    bucket = TokenBucket(1.0)
    await bucket.acquire()
    with trio.move_on_after(0.5):
        await bucket.acquire()
    await bucket.acquire()
    assert bucket.statistics().acquired == 2


async def test_per_minute_budget_with_a_sixty_second_window(autojump_clock):
    """A 3-per-minute bucket never lets a fourth request into any 60 s window."""
    bucket = TokenBucket(3 / 60, burst=3, window_s=60.0)
    times = []
    for _ in range(9):
        await bucket.acquire()
        times.append(trio.current_time())
    assert times[:3] == [times[0]] * 3
    assert max_in_window(times, 60.0) == 3


def test_rejects_invalid_arguments():
    """A non-positive rate or a zero burst is a ValueError."""
    with pytest.raises(ValueError, match="rate_per_s"):
        TokenBucket(0)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(1.0, burst=0)


async def test_urgent_requests_go_before_waiting_polls(autojump_clock):
    """Replies before polls: with 5 polls queued on a 1/s bucket, a reply that arrives later
    goes next (old code: first come, first served, the reply waited ~5 s behind polls)."""
    import trio

    bucket = TokenBucket(1.0)
    order: list[str] = []
    times: list[float] = []

    async def take(name, urgent):
        await bucket.acquire(urgent=urgent)
        order.append(name)
        times.append(trio.current_time())

    async with trio.open_nursery() as n:
        for i in range(5):
            n.start_soon(take, f"poll{i}", False)
            await trio.sleep(0)
        await trio.sleep(0.5)
        n.start_soon(take, "reply", True)
    assert order[:2] == ["poll0", "reply"]
    assert order[2:] == ["poll1", "poll2", "poll3", "poll4"]
    assert max_in_window(times) == 1  # still never more than 1 in any 1 s window


async def test_urgent_requests_keep_the_window_limit(autojump_clock):
    """Priority never bends the budget: a mix of urgent and plain requests on a 10/s bucket
    never puts more than 10 in any 1 s window."""
    import trio

    bucket = TokenBucket(10.0)
    times: list[float] = []

    async def take(urgent):
        await bucket.acquire(urgent=urgent)
        times.append(trio.current_time())

    async with trio.open_nursery() as n:
        for i in range(60):
            n.start_soon(take, i % 3 == 0)
    times.sort()
    assert all(times[i + 10] - times[i] >= 1.0 for i in range(len(times) - 10))
