"""Client-side request pacing for trio: a GCRA token bucket guarded by a sliding-window log.

``TokenBucket`` decides when the next request may go. Three constraints are combined, and a
request waits for the latest of them:

* GCRA pacing: one emission interval (``1 / rate_per_s``) between requests, with a tolerance
  of ``burst - 1`` intervals.
* A sliding-window log of the last ``N = floor(rate_per_s * window_s)`` send times: the next
  request never goes before ``(N-th previous send) + window_s + margin_s``. This is what
  guarantees that **no half-open window of ``window_s`` ever holds more than ``N`` requests**,
  whatever the burst and the scheduler's jitter; ``margin_s`` absorbs the jitter between
  ``acquire()`` returning and the request reaching the server (it costs ``margin_s`` of
  throughput per ``N`` requests: 10/s with the default 10 ms margin paces at ~9.9/s).
* What the server said: ``update_from_headers`` (``X-Ratelimit-Remaining: 0`` blocks everyone
  until ``X-Ratelimit-Reset``) and ``penalize`` (after a 429, everyone waits ``Retry-After``).

Waiting uses ``trio.sleep_until`` on absolute deadlines (no drift). Waiters are served FIFO
(``trio.Lock`` is fair), except that ``acquire(urgent=True)`` (replies) goes before every
non-urgent waiter (polls, backfill reads). The bucket is generic: a per-minute budget is
``rate_per_s=1.0`` or ``rate_per_s=n / 60`` with ``window_s=60.0``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import final

import attrs
import trio


@attrs.frozen(kw_only=True)
class BucketStatistics:
    """A snapshot of a ``TokenBucket``'s counters (trio's ``statistics()`` convention)."""

    rate_per_s: float
    acquired: int  # requests let through
    waits: int  # how many of them had to wait
    total_wait_s: float  # summed waiting time
    waiting: int  # tasks waiting right now
    penalties: int  # penalize() calls (429s)
    blocked_until: float | None  # trio time before which nobody goes (None: not blocked)
    server_limit: int | None  # last X-Ratelimit-Limit seen
    server_remaining: int | None  # last X-Ratelimit-Remaining seen


@final
class TokenBucket:
    """Paces requests; share one instance between every caller of one budget.

    Args:
        rate_per_s: requests per second (may be below 1).
        burst: requests that may go back to back after an idle period (GCRA tolerance);
            the sliding window still caps any ``window_s`` at ``floor(rate_per_s * window_s)``.
        window_s: length of the window the budget is counted over.
        margin_s: extra spacing added to the window rule, to absorb network jitter.
        clock: returns trio's current time (the default); deadlines are slept with
            ``trio.sleep_until``, so a replacement must share trio's time base.
    """

    def __init__(
        self,
        rate_per_s: float,
        *,
        burst: int = 1,
        window_s: float = 1.0,
        margin_s: float = 0.01,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        if not rate_per_s > 0:
            raise ValueError(f"rate_per_s must be > 0, got {rate_per_s!r}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        if not window_s > 0 or margin_s < 0:
            raise ValueError("window_s must be > 0 and margin_s >= 0")
        self._rate = rate_per_s
        self._interval = 1.0 / rate_per_s
        self._tolerance = (burst - 1) * self._interval
        self._window_s = window_s
        self._margin_s = margin_s
        self._clock = clock
        # A tiny epsilon so that 10.0 * 1.0 is not floored to 9 by float noise.
        self._sent: deque[float] = deque(maxlen=max(1, math.floor(rate_per_s * window_s + 1e-9)))
        self._tat = -math.inf  # GCRA theoretical arrival time
        self._blocked_until = -math.inf
        self._lock = trio.Lock()
        self._plain_lock = trio.Lock()  # non-urgent waiters queue here first
        self._urgent = 0  # urgent waiters
        self._no_urgent = trio.Event()  # set (and replaced) when the last urgent one is served
        self._urgent_arrived = trio.Event()  # set (and replaced) when an urgent one arrives
        self._acquired = 0
        self._waits = 0
        self._total_wait_s = 0.0
        self._waiting = 0
        self._penalties = 0
        self._server_limit: int | None = None
        self._server_remaining: int | None = None

    def __repr__(self) -> str:
        used, size = len(self._sent), self._sent.maxlen
        return f"<TokenBucket rate_per_s={self._rate:g} window={used}/{size}>"

    @property
    def rate_per_s(self) -> float:
        return self._rate

    def next_allowed_at(self) -> float:
        """The earliest trio time at which a request may go, given what is known now."""
        at = max(self._tat - self._tolerance, self._blocked_until)
        if len(self._sent) == self._sent.maxlen:
            at = max(at, self._sent[0] + self._window_s + self._margin_s)
        return at

    async def acquire(self, *, urgent: bool = False) -> None:
        """Wait until one request may go, and count it as sent.

        ``urgent`` requests (replies) go before the others (polls, backfill reads): urgent
        waiters queue for the slot directly, the others queue first among themselves and
        only the first of them contends, stepping back while any urgent one waits. Within
        each class, first come, first served.

        Cancellation: a cancelled waiter consumes nothing; it is always a checkpoint.
        """
        start = self._clock()
        self._waiting += 1
        try:
            if urgent:
                now = await self._acquire_urgent()
            else:
                now = await self._acquire_plain()
        finally:
            self._waiting -= 1
        self._acquired += 1
        if now > start:
            self._waits += 1
            self._total_wait_s += now - start

    async def _acquire_urgent(self) -> float:
        self._urgent += 1
        self._urgent_arrived.set()  # the plain request holding the slot steps back
        self._urgent_arrived = trio.Event()
        try:
            async with self._lock:
                now = await self._take_slot(urgent=True)
                assert now is not None
                return now
        finally:
            self._urgent -= 1
            if not self._urgent:
                self._no_urgent.set()
                self._no_urgent = trio.Event()

    async def _acquire_plain(self) -> float:
        async with self._plain_lock:
            while True:
                while self._urgent:
                    await self._no_urgent.wait()
                async with self._lock:
                    now = await self._take_slot(urgent=False)
                if now is not None:
                    return now

    async def _take_slot(self, *, urgent: bool) -> float | None:
        """With the lock held: wait for the next allowed time and take it. None (nothing
        taken) when a plain request must step back for an urgent one."""
        while True:
            if not urgent and self._urgent:
                return None
            now = self._clock()
            deadline = self.next_allowed_at()
            if now >= deadline:
                break
            # Re-check after waking: a penalty (or an urgent request) may have arrived.
            with trio.move_on_at(deadline):
                if urgent:
                    await trio.sleep_forever()
                else:
                    await self._urgent_arrived.wait()
        self._tat = max(self._tat, now) + self._interval
        self._sent.append(now)
        return now

    def update_from_headers(
        self, limit: int | None, remaining: int | None, reset_s: float | None
    ) -> None:
        """Synchronise with the server's ``X-Ratelimit-*`` headers of a response.

        ``remaining == 0`` means the server's budget is spent: nobody goes before
        ``reset_s`` (relative seconds) from now.
        """
        self._server_limit = limit
        self._server_remaining = remaining
        if remaining is not None and remaining <= 0 and reset_s is not None and reset_s > 0:
            self._block_for(reset_s)

    def penalize(self, retry_after_s: float) -> None:
        """After a 429: nobody goes before ``retry_after_s`` seconds from now."""
        self._penalties += 1
        self._block_for(max(0.0, retry_after_s))

    def hold_off(self, seconds: float) -> None:
        """Nobody goes before ``seconds`` from now (e.g. a restarted process waits one window,
        so its requests never share a window with those of the process it replaces)."""
        self._block_for(max(0.0, seconds))

    def _block_for(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def statistics(self) -> BucketStatistics:
        blocked = self._blocked_until if self._blocked_until > self._clock() else None
        return BucketStatistics(
            rate_per_s=self._rate,
            acquired=self._acquired,
            waits=self._waits,
            total_wait_s=self._total_wait_s,
            waiting=self._waiting,
            penalties=self._penalties,
            blocked_until=blocked,
            server_limit=self._server_limit,
            server_remaining=self._server_remaining,
        )
