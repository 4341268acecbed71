"""The request budget split into leased shares (``budget_share``) on the real PostgreSQL
server, real clocks, short leases: replicas hammering their buckets together never send more
than the limit in any 1 s window, whatever their number, including while one joins and while
one dies without giving its shares back (its shares are used again only after the lease time
and one window); every live replica gets a share."""

from __future__ import annotations

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


def worst_window(times: list[float], window: float = 1.0) -> int:
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
                    while True:  # as fast as the bucket lets it
                        await bucket.acquire()
                        mine.append(trio.current_time())

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
