"""One request budget across replicas: the bot token's limit split into leased shares.

The server gives the token ``L`` requests per second whatever the number of processes
(docs/postgresql.md, "One request budget"). With MCHAT_REPLICAS=on the budget is ``L`` lease
rows ``budget:0`` .. ``budget:L-1`` (``pg.leases``), shared out by demand: each replica
publishes at its tick the requests it wanted in the last window (the whole limit when one
waited for its shares), and ``pg.share_plan`` moves shares to the busy ones, the idle ones
keeping one each when the limit allows (the channels are split by hash, not the work: an
even split left 35-44 % of the budget unused with 3 replicas); a replica may send as many
requests in any window as the shares it holds, so the replicas together never exceed ``L``,
whatever their number (a replica with no share, when there are more replicas than ``L``,
sends nothing).

Counting: a replica's requests are counted by when they can have reached the server (their
answer; a failed one: its failure + margin), not by their release (``ShareBucket``). In any
window of the server's arrivals, replica ``i`` then has at most the shares it held at its
last release among them.

Hand-over: a share is used by a replica only from one window (+ margin) after it took it,
and never after its local deadline (which passes before the database lets anyone else take
it). A share given back (the fair share fell, a clean stop) first stops being used, and is
given back only once every request released while it counted has reached the server
(``BudgetShares``). So the sets of shares counted in one window are disjoint across
replicas. The one case left: a replica whose lease lapses (paused, cut off) with a request
that reaches the server more than the lease margin (0.5 s by default) + margin after its
deadline.

``ShareBucket`` is the ``TokenBucket`` (every REST request, WebSocket upgrade and post goes
through it) with that extra rule; the server's rate-limit headers and 429s still win (the
base class's blocking).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import deque
from collections.abc import Callable
from functools import partial

import attrs
import trio

from .actors.ownership import LeaseDatabase
from .errors import StoreError
from .pg.leases import Lessee, TickResult, declare
from .ratelimit import Slot, TokenBucket

logger = logging.getLogger(__name__)

PREFIX = "budget:"
# a request without an answer counts against this replica's shares this long after it ended:
# a WebSocket upgrade reached the fake server later than its release + 50 ms on 2 loaded
# cores (one more request in a 1 s window of the 3-replica test)
UNANSWERED_S = 1.0


class ShareBucket(TokenBucket):
    """A ``TokenBucket`` at the whole limit that also keeps to this replica's shares: with
    ``k`` shares usable, a request goes a window after the answers of all this replica's
    requests ``k`` or more back (a failed one: its failure + margin), as the base class does
    with the whole limit. Before, they were counted from their release: a request slow to
    arrive (a busy machine, a slow connection set-up) and the next one fast put ``k + 1`` in
    one window of the server's arrivals (the 3-replica test saw 11 and 13 in 1 s with a
    limit of 10). Unlike the base class, a request's last byte written does not bound it: a
    busy server counts it when it gets to it, which can be later than written + margin (the
    3-replica test, on 2 loaded cores, then saw 12); the cost is that an answer the server
    is slow to give holds this replica's window (its other shares still go)."""

    def __init__(self, rate_per_s: float, *, margin_s: float, shares: Callable[[float], int],
                 recheck_s: float, clock: Callable[[], float] = trio.current_time) -> None:
        super().__init__(rate_per_s, margin_s=margin_s, clock=clock)
        self._shares = shares
        self._recheck_s = recheck_s
        self._mine: deque[Slot] = deque()  # this replica's requests, in release order
        self._ended: dict[Slot, float] = {}  # answered (or failed + margin) at
        self._starved = False  # a request waited for this replica's shares

    def next_allowed_at(self) -> float:
        at = super().next_allowed_at()
        now = self._clock()
        mine = self._mine
        ended = self._ended
        while mine and (end := ended.get(mine[0])) is not None and end + self._window_s <= now:
            ended.pop(mine.popleft())  # answered a window ago: bounds nothing any more
        k = self._shares(now)
        if k <= 0:
            self._starved = True
            return max(at, now + self._recheck_s)  # no share yet: look again (woken on change)
        floor = -math.inf
        for slot in itertools.islice(mine, 0, max(0, len(mine) - (k - 1))):
            end = ended.get(slot)
            if end is None:
                self._starved = True
                return math.inf  # in flight: woken by its answer or failure
            floor = max(floor, end)
        if floor + self._window_s > max(at, now):
            self._starved = True  # held back by its shares, not by the whole limit
        return max(at, floor + self._window_s)

    def demand(self) -> tuple[int, bool]:
        """The requests this replica wanted in the last window (let through, or waiting
        now), and whether a request waited for its shares since the last call (it would
        have sent more with more shares): what ``BudgetShares`` publishes."""
        since = self._clock() - self._window_s
        recent = sum(1 for slot in self._mine if slot.released_at > since)
        starved, self._starved = self._starved, False
        return recent + self._waiting, starved

    def _track(self, slot: Slot) -> None:
        self._mine.append(slot)

    def _finish(self, slot: Slot, end: float) -> None:
        now = self._clock()
        # an answer ends a request now; one without an answer (failed, cancelled, a WebSocket
        # upgrade: the base counts it until ``margin_s`` later) may reach a busy server later
        self._ended[slot] = end if end <= now else max(end, now + UNANSWERED_S)
        super()._finish(slot, end)

    def settled(self, since: float) -> bool:
        """Whether every request released up to ``since`` has reached the server by now
        (``BudgetShares`` gives a share back only then)."""
        now = self._clock()
        for slot in self._mine:
            if slot.released_at > since:
                break
            end = self._ended.get(slot)
            if end is None or end > now:
                return False
        return True

    def shares_changed(self) -> None:
        self._wake_head()


@attrs.define
class BudgetShares:
    """This replica's shares of the budget, ticked like the channel leases.

    Giving shares back (another replica needs them: ``pg.share_plan``; a clean stop) takes two
    steps: a share to give back stops being used at once (``_retiring``), and is
    given back at a later tick, once every request this replica released while it still
    counted that share has reached the server (``ShareBucket.settled``). The next holder
    uses it one window (+ margin) after taking it, so their requests never share a window.
    Before, it was given back in the same tick, while a request sent on it could still be
    on its way: the next holder's requests could join it in one window."""

    db: LeaseDatabase
    lessee: Lessee
    limit: int
    span_s: float  # a share is usable this long after it was taken (window + margin)
    clock: Callable[[], float] = trio.current_time
    # the demand published is the highest of this many ticks (hysteresis: a replica that
    # just drained its backlog keeps its claim a little; ``pg.share_plan``)
    demand_ticks: int = 2
    _taken_at: dict[str, float] = attrs.Factory(dict)
    _retiring: dict[str, float] = attrs.Factory(dict)  # share -> when it stopped being used
    _demands: deque[int] = attrs.Factory(deque)
    ticks: int = 0
    tick_failures: int = 0

    def demand(self, bucket: TokenBucket | None) -> int | None:
        """What to publish at this tick: the requests wanted in the last window, the whole
        limit when a request waited for this replica's shares, the highest of the last
        ``demand_ticks`` ticks; None (the even split) without a ``ShareBucket``."""
        if not isinstance(bucket, ShareBucket):
            return None
        wanted, starved = bucket.demand()
        self._demands.append(self.limit if starved else min(self.limit, wanted))
        while len(self._demands) > max(1, self.demand_ticks):
            self._demands.popleft()
        return max(self._demands)

    def apply(self, result: TickResult, taken: float) -> None:
        """A committed tick: shares acquired are usable a span after ``taken``; the ones held
        back stop being used (given back once settled)."""
        for r in result.acquired:
            self._taken_at[r] = taken
        for r in list(self._taken_at):
            if r not in self.lessee.deadlines:
                del self._taken_at[r]
        self._retiring = {r: self._retiring.get(r, taken) for r in result.held_back}

    def usable(self, now: float) -> int:
        return sum(1 for r in self.lessee.held(now) if r not in self._retiring
                   and self._taken_at.get(r, math.inf) + self.span_s <= now)

    def held(self) -> int:
        return len(self.lessee.held(self.clock()))

    def _releasable(self, bucket: TokenBucket | None) -> frozenset[str]:
        if not isinstance(bucket, ShareBucket):
            return frozenset(self._retiring)
        return frozenset(r for r, since in self._retiring.items() if bucket.settled(since))

    async def run(self, bucket: TokenBucket | None = None, *, release_on_exit: bool = True,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Declare the shares, tick until cancelled (started after the first tick); the
        shares are given back at a clean stop."""
        await self.db.run(declare, [f"{PREFIX}{n}" for n in range(self.limit)])
        started = False
        try:
            while True:
                began = self.clock()
                try:
                    result = await self.db.run_own(partial(
                        self.lessee.tick, releasable=self._releasable(bucket),
                        demand=self.demand(bucket)), began)
                    self.ticks += 1
                    # from the commit, not the tick's start: the acquiring statement may run
                    # after the previous holder's give-back committed, late in a slow tick
                    self.apply(result, self.clock())
                except StoreError as exc:
                    self.tick_failures += 1
                    logger.warning("budget: share tick failed (%s); shares lapse", exc)
                if isinstance(bucket, ShareBucket):
                    bucket.shares_changed()
                if not started:
                    task_status.started()
                    started = True
                await trio.sleep(self.lessee.settings.renew_every_s)
        finally:
            if release_on_exit:
                await self._release(bucket)

    async def _release(self, bucket: TokenBucket | None) -> None:
        """Stop using every share, wait (a little) until the requests sent on them have
        arrived, give them back; not settled in time: they lapse after the lease time."""
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            stop = self.clock()
            self._retiring = dict.fromkeys(self.lessee.deadlines, stop)
            if isinstance(bucket, ShareBucket):
                with trio.move_on_after(2 * self.span_s) as waited:
                    while not bucket.settled(stop):  # noqa: ASYNC110 - answers come in other tasks
                        await trio.sleep(0.05)
                if waited.cancelled_caught:
                    logger.warning("budget: requests still in flight; the shares lapse after "
                                   "the lease time instead of being given back")
                    return
            try:
                await self.db.run_own(self.lessee.shutdown)
            except StoreError as exc:
                logger.warning("budget: could not give the shares back (%s)", exc)
