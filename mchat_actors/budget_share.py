"""One request budget across replicas: the bot token's limit split into leased shares.

The server gives the token ``L`` requests per second whatever the number of processes
(docs/postgresql.md, "One request budget"). With MCHAT_REPLICAS=on the budget is ``L`` lease
rows ``budget:0`` .. ``budget:L-1`` (``pg.leases``, the same fair share as the channel
buckets: ``ceil(L / live replicas)``); a replica may send as many requests in any window as
the shares it holds, so the replicas together never exceed ``L``, whatever their number (a
replica with no share, when there are more replicas than ``L``, sends nothing).

Hand-over: a share is used by a replica only from one window (+ margin) after it took it,
and never after its local deadline (which passes before the database lets anyone else take
it). So one share is never used by two replicas within one window: in any window, replica
``i`` sent at most the shares it held at its last send in that window, and those sets are
disjoint across replicas.

``ShareBucket`` is the ``TokenBucket`` (every REST request, WebSocket upgrade and post goes
through it) with that extra rule; the server's rate-limit headers and 429s still win (the
base class's blocking).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import attrs
import trio

from .actors.ownership import LeaseDatabase
from .errors import StoreError
from .pg.leases import Lessee, declare
from .ratelimit import TokenBucket

logger = logging.getLogger(__name__)

PREFIX = "budget:"


class ShareBucket(TokenBucket):
    """A ``TokenBucket`` at the whole limit that also keeps to this replica's shares."""

    def __init__(self, rate_per_s: float, *, margin_s: float, shares: Callable[[float], int],
                 recheck_s: float, clock: Callable[[], float] = trio.current_time) -> None:
        super().__init__(rate_per_s, margin_s=margin_s, clock=clock)
        self._shares = shares
        self._recheck_s = recheck_s
        self._mine: list[float] = []  # this replica's send times, last window (+ margin)

    def next_allowed_at(self) -> float:
        at = super().next_allowed_at()
        now = self._clock()
        span = self._window_s + self._margin_s
        self._mine = [t for t in self._mine if t > now - span]
        k = self._shares(now)
        if len(self._mine) < k:
            return at
        if k > 0:  # when the k-th most recent send leaves the window
            return max(at, self._mine[-k] + span)
        return max(at, now + self._recheck_s)  # no share yet: look again (woken on change)

    def _take(self, waiter: Any, now: float, *rest: Any) -> None:
        super()._take(waiter, now, *rest)  # every request counted, whatever the base adds
        self._mine.append(now)

    def shares_changed(self) -> None:
        self._wake_head()


@attrs.define
class BudgetShares:
    """This replica's shares of the budget, ticked like the channel leases."""

    db: LeaseDatabase
    lessee: Lessee
    limit: int
    span_s: float  # a share is usable this long after it was taken (window + margin)
    clock: Callable[[], float] = trio.current_time
    _taken_at: dict[str, float] = attrs.Factory(dict)
    ticks: int = 0
    tick_failures: int = 0

    def usable(self, now: float) -> int:
        return sum(1 for r in self.lessee.held(now)
                   if self._taken_at.get(r, math.inf) + self.span_s <= now)

    def held(self) -> int:
        return len(self.lessee.held(self.clock()))

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
                    result = await self.db.run_own(self.lessee.tick, began)
                    self.ticks += 1
                    for r in result.acquired:
                        self._taken_at[r] = began
                    for r in list(self._taken_at):
                        if r not in self.lessee.deadlines:
                            del self._taken_at[r]
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
                await self._release()

    async def _release(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            try:
                await self.db.run_own(self.lessee.shutdown)
            except StoreError as exc:
                logger.warning("budget: could not give the shares back (%s)", exc)
