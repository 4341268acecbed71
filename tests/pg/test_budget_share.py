"""The request budget split into leased shares (``budget_share``) on the real PostgreSQL
server, real clocks, short leases: replicas hammering their buckets together never send more
than the limit in any 1 s window, whatever their number, including while one joins and while
one dies without giving its shares back (its shares are used again only after the lease time
and one window); every live replica gets a share."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from functools import partial

import pytest
import trio

from mchat_actors.budget_share import BudgetShares, ShareBucket
from mchat_actors.pg.database import open_database
from mchat_actors.pg.leases import LeaseSettings, Lessee

pytestmark = pytest.mark.pg

LIMIT = 10
FAST = LeaseSettings(ttl_s=1.0, renew_every_s=0.25, margin_s=0.1)
MARGIN = 0.05
US = 1_000_000


def worst_window(times: list[float] | list[int], window: float = 1.0) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_replicas_never_exceed_the_limit_together(pg_url):
    sent: dict[str, list[float]] = {}
    async with open_database(pg_url) as db, trio.open_nursery() as nursery:

        async def replica(name: str, scope: trio.CancelScope, release: bool,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            shares = BudgetShares(db, Lessee(name, FAST, prefix="budget:"), limit=LIMIT,
                                  span_s=1.0 + MARGIN)
            bucket = ShareBucket(LIMIT, margin_s=MARGIN, shares=shares.usable,
                                 recheck_s=FAST.renew_every_s)
            mine = sent.setdefault(name, [])
            with scope:
                async with trio.open_nursery() as inner:
                    await inner.start(partial(shares.run, bucket, release_on_exit=release))
                    task_status.started()
                    while True:  # as fast as the bucket lets it, answered at once
                        async with bucket.request() as slot:
                            mine.append(trio.current_time())
                            slot.answered()

        scopes = {n: trio.CancelScope() for n in "abc"}
        await nursery.start(replica, "a", scopes["a"], False)
        await nursery.start(replica, "b", scopes["b"], False)
        await trio.sleep(3)
        await nursery.start(replica, "c", scopes["c"], False)  # joins
        await trio.sleep(3)
        scopes["a"].cancel()  # dies without a word: its shares lapse
        await trio.sleep(3)
        before = {n: len(t) for n, t in sent.items()}
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    everything = [t for times in sent.values() for t in times]
    assert worst_window(everything) <= LIMIT
    assert len(everything) >= LIMIT * 6  # the budget is used, not just respected
    assert len(sent["b"]) > before["b"] and len(sent["c"]) > before["c"]  # both survivors send
    # the survivors took the dead one's shares: near the full limit in the last 2 s
    last = [t for n in "bc" for t in sent[n][before[n]:]]
    assert len(last) >= LIMIT * 2 * 0.7


async def _hammer(bucket: ShareBucket, delays: Callable[[], float], arrivals: list[int],
                  until: float) -> None:
    """Requests as fast as ``bucket`` lets them go, each in flight ``delays()`` seconds and
    reaching the server at the end of that (the latest a request can arrive: its answer),
    recorded in ``arrivals`` in µs."""

    async def worker() -> None:
        while trio.current_time() < until:
            async with bucket.request() as slot:
                await trio.sleep(delays())
                arrivals.append(round(trio.current_time() * US))  # exact sums: whole µs
                slot.answered()

    async with trio.open_nursery() as nursery:
        for _ in range(2 * LIMIT):  # more than can be in flight: the bucket is the limit
            nursery.start_soon(worker)


async def test_a_replica_counts_its_requests_by_arrival_not_release(autojump_clock):
    """Five shares; every sixth request is slow to reach the server (a busy machine, a slow
    connection set-up), the others fast. Counted from their release (before), the sixth
    went 1.05 s after the first's release and shared a window of arrivals with the first five:
    6 in 1 s on 5 shares."""
    bucket = ShareBucket(LIMIT, margin_s=MARGIN, shares=lambda _now: 5, recheck_s=0.25)
    slow = itertools.cycle([0.3, 0.0, 0.0, 0.0, 0.0, 0.0])
    arrivals: list[int] = []
    await _hammer(bucket, lambda: next(slow), arrivals, until=20.0)
    assert len(arrivals) >= 5 * 15  # the shares are used, not just respected
    assert worst_window(arrivals, window=US) <= 5


async def test_a_share_given_back_is_not_used_while_its_requests_are_on_their_way(pg_url):
    """Replica a holds every share, its requests slow to arrive (up to 0.6 s); b and then c
    join, a gives shares back, and theirs arrive at once. Given back in the tick that found
    them over the fair share (before), a request a had just sent on one could still be on
    its way when the next holder's went: over the limit in one window."""
    arrivals: list[int] = []
    rng = random.Random(15)
    async with open_database(pg_url) as db, trio.open_nursery() as nursery:

        async def replica(name: str, delays: Callable[[], float], until: float,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                          ) -> None:
            shares = BudgetShares(db, Lessee(name, FAST, prefix="budget:"), limit=LIMIT,
                                  span_s=1.0 + MARGIN)
            bucket = ShareBucket(LIMIT, margin_s=MARGIN, shares=shares.usable,
                                 recheck_s=FAST.renew_every_s)
            async with trio.open_nursery() as inner:
                await inner.start(partial(shares.run, bucket, release_on_exit=False))
                task_status.started()
                await _hammer(bucket, delays, arrivals, until)
                inner.cancel_scope.cancel()

        end = trio.current_time() + 7
        await nursery.start(replica, "a", lambda: rng.uniform(0.0, 0.6), end)
        await trio.sleep(2)
        await nursery.start(replica, "b", lambda: 0.0, end)
        await trio.sleep(2)
        await nursery.start(replica, "c", lambda: 0.0, end)
    assert len(arrivals) >= LIMIT * 4
    assert worst_window(arrivals, window=US) <= LIMIT


async def test_a_request_without_an_answer_counts_until_it_can_have_arrived(autojump_clock):
    """Two shares; a WebSocket upgrade (``acquire()``: no answer is awaited) reaches a busy
    server 0.3 s after its release, the requests after it are answered at once. Counted
    until 50 ms after its release (before), the next two went 1.05 s and 1.1 s after it:
    3 in one window of arrivals on 2 shares."""
    bucket = ShareBucket(LIMIT, margin_s=MARGIN, shares=lambda _now: 2, recheck_s=0.25)
    arrivals: list[int] = []
    await bucket.acquire()
    arrivals.append(round((trio.current_time() + 0.3) * US))
    await _hammer(bucket, lambda: 0.0, arrivals, until=5.0)
    assert len(arrivals) >= 2 * 4
    assert worst_window(arrivals, window=US) <= 2


async def test_the_shares_follow_the_replica_with_the_backlog(pg_url):
    """a has a backlog, b and c are idle (running, no request): a's shares grow to all but
    one each for b and c within a few ticks. Split evenly by replica (before), a was held to
    4 requests a second while 6 shares sat idle. Then b gets a backlog too: shares move back
    to it through the two-step give-back; the three together never exceed the limit."""
    arrivals: dict[str, list[int]] = {n: [] for n in "abc"}
    held: dict[str, BudgetShares] = {}
    async with open_database(pg_url) as db, trio.open_nursery() as nursery:

        async def replica(name: str, busy_from: float, until: float,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                          ) -> None:
            shares = held[name] = BudgetShares(db, Lessee(name, FAST, prefix="budget:"),
                                               limit=LIMIT, span_s=1.0 + MARGIN)
            bucket = ShareBucket(LIMIT, margin_s=MARGIN, shares=shares.usable,
                                 recheck_s=FAST.renew_every_s)
            async with trio.open_nursery() as inner:
                await inner.start(partial(shares.run, bucket, release_on_exit=False))
                task_status.started()
                await trio.sleep_until(busy_from)
                await _hammer(bucket, lambda: 0.0, arrivals[name], until)
                inner.cancel_scope.cancel()

        start = trio.current_time()
        end = start + 9
        for name, busy_from in (("a", start), ("b", start + 5), ("c", end)):
            await nursery.start(replica, name, busy_from, end)
    a, b = ([t / US - start for t in arrivals[n]] for n in "ab")
    everything = [t for times in arrivals.values() for t in times]
    assert worst_window(everything, window=US) <= LIMIT
    # a alone busy: by 2.5 s it sends on 8 shares (4 with the even split)
    assert sum(1 for t in a if 3.0 <= t < 5.0) >= 2 * 7, sorted(a)[-20:]
    # both busy: b got shares back from a within the time left, and a kept its part
    assert sum(1 for t in b if 7.0 <= t < 9.0) >= 2 * 3
    assert sum(1 for t in a if 7.0 <= t < 9.0) >= 2 * 3


async def test_a_bucket_reports_what_it_wanted_and_whether_its_shares_held_it(autojump_clock):
    """``ShareBucket.demand``: idle, nothing; requests within its shares, their count and not
    held back; more than its shares, held back (``BudgetShares`` then claims the limit)."""
    bucket = ShareBucket(LIMIT, margin_s=MARGIN, shares=lambda _now: 3, recheck_s=0.25)
    assert bucket.demand() == (0, False)
    for _ in range(2):
        async with bucket.request() as slot:
            slot.answered()
        await trio.sleep(0.2)
    assert bucket.demand() == (2, False)
    await trio.sleep(1.5)
    assert bucket.demand() == (0, False)  # a window later: nothing wanted any more
    arrivals: list[int] = []
    await _hammer(bucket, lambda: 0.0, arrivals, until=trio.current_time() + 3)
    wanted, held_back = bucket.demand()
    assert held_back and wanted >= 3
    assert bucket.demand()[1] is False  # the flag is per tick
