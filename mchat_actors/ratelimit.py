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

Waiting uses ``trio.sleep_until`` on absolute deadlines (no drift). Waiters are served by
``Priority`` class, first come first served inside a class: ``REPLY`` (replies, reactions: every
non-GET request) before ``QUESTION`` (the reads a waiting question needs: mapping its channel and
user, the earlier posts of its channel) before ``BACKGROUND`` (backfill, sweeps, mapping for
channels with plain posts only, membership re-checks, polls). Starvation guard: while a
background waiter waits, at most ``question_run`` question-class slots in a row go before it,
then one goes to the oldest background waiter, if it arrived before the oldest question waiter
(so a question never waits behind a background request that arrived later). The oldest
background waiter therefore goes after at most (question waiters older than it) +
``question_run`` question slots; replies always go first (their volume is that of answers).
The bucket is generic: a per-minute budget is
``rate_per_s=1.0`` or ``rate_per_s=n / 60`` with ``window_s=60.0``.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType

import attrs
import trio


class Priority(enum.IntEnum):
    """A request's class in the shared budget (lower goes first)."""

    REPLY = 0  # writes: replies, reactions, joins
    QUESTION = 1  # reads a waiting question needs (its channel's mapping and earlier posts)
    BACKGROUND = 2  # backfill, sweeps, plain posts' mapping, membership re-checks, polls


QUESTION_RUN = 4  # question slots in a row before a waiting (older) background request


@attrs.define(eq=False)
class _Waiter:
    priority: Priority
    seq: int  # arrival order
    wake: trio.Event = attrs.Factory(trio.Event)


@attrs.define(eq=False)
class RequestClass:
    """The class of a group of requests (a channel's lane) that can be raised while its
    requests wait: ``raise_to(Priority.QUESTION)`` when a question is queued behind a post
    whose mapping already waits in the background class moves that request up too, in its
    arrival order. ``reset()`` is for requests made from then on."""

    priority: Priority = Priority.BACKGROUND
    _waiting: dict[_Waiter, TokenBucket] = attrs.Factory(dict)
    _lent_to: list[RequestClass] = attrs.Factory(list)

    def raise_to(self, priority: Priority) -> None:
        if priority >= self.priority:
            return
        self.priority = priority
        for waiter, bucket in list(self._waiting.items()):
            bucket._promote(waiter, priority)
        for other in list(self._lent_to):
            other.raise_to(priority)

    @contextmanager
    def lending_to(self, holder: RequestClass | None) -> Iterator[None]:
        """While this class waits for something ``holder`` holds (a lock), ``holder`` is
        raised to this class, now and whenever this class is raised (priority inheritance)."""
        if holder is None or holder is self:
            yield
            return
        self._lent_to.append(holder)
        holder.raise_to(self.priority)
        try:
            yield
        finally:
            self._lent_to.remove(holder)

    def reset(self, priority: Priority = Priority.BACKGROUND) -> None:
        self.priority = priority


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
    acquired_by_priority: Mapping[str, int] = MappingProxyType({})  # reply/question/background


class TokenBucket:  # subclassed by budget_share.ShareBucket (replicas' leased shares)
    """Paces requests; share one instance between every caller of one budget.

    Args:
        rate_per_s: requests per second (may be below 1).
        burst: requests that may go back to back after an idle period (GCRA tolerance);
            the sliding window still caps any ``window_s`` at ``floor(rate_per_s * window_s)``.
        window_s: length of the window the budget is counted over.
        margin_s: extra spacing added to the window rule, to absorb network jitter.
        clock: returns trio's current time (the default); deadlines are slept with
            ``trio.sleep_until``, so a replacement must share trio's time base.
        question_run: question-class slots in a row before an older background waiter gets
            one (the starvation guard, see the module docstring).
    """

    def __init__(
        self,
        rate_per_s: float,
        *,
        burst: int = 1,
        window_s: float = 1.0,
        margin_s: float = 0.01,
        clock: Callable[[], float] = trio.current_time,
        question_run: int = QUESTION_RUN,
    ) -> None:
        if not rate_per_s > 0:
            raise ValueError(f"rate_per_s must be > 0, got {rate_per_s!r}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        if not window_s > 0 or margin_s < 0:
            raise ValueError("window_s must be > 0 and margin_s >= 0")
        if question_run < 1:
            raise ValueError(f"question_run must be >= 1, got {question_run!r}")
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
        self._queues: dict[Priority, deque[_Waiter]] = {p: deque() for p in Priority}
        self._seq = itertools.count()
        self._question_run_max = question_run
        self._question_run = 0  # question slots taken in a row while background waited
        self._by_priority = {p: 0 for p in Priority}
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

    async def acquire(self, priority: Priority | RequestClass = Priority.BACKGROUND, *,
                      urgent: bool = False) -> None:
        """Wait until one request may go, and count it as sent.

        ``priority`` is the request's class, or a ``RequestClass`` whose class may be raised
        while it waits (``urgent=True`` is ``Priority.REPLY``); see the module docstring for
        the order and the starvation guard. Only the waiter at the head of that order sleeps
        until the next allowed time; the others wait to be woken.

        Cancellation: a cancelled waiter consumes nothing; it is always a checkpoint.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        group = priority if isinstance(priority, RequestClass) else None
        level = priority.priority if isinstance(priority, RequestClass) else Priority(priority)
        if urgent:
            level = Priority.REPLY
        start = self._clock()
        waiter = _Waiter(level, next(self._seq))
        self._queues[waiter.priority].append(waiter)
        if group is not None:
            group._waiting[waiter] = self
        self._waiting += 1
        taken = False
        try:
            while True:
                waiter.wake = trio.Event()
                if self._head() is not waiter:
                    await waiter.wake.wait()
                    continue
                now = self._clock()
                deadline = self.next_allowed_at()
                if now >= deadline:
                    self._take(waiter, now)
                    taken = True
                    break
                # woken early when a penalty or a request of a higher class arrives
                with trio.move_on_at(deadline):
                    await waiter.wake.wait()
        finally:
            self._waiting -= 1
            if group is not None:
                del group._waiting[waiter]
            if not taken:
                self._queues[waiter.priority].remove(waiter)
            self._wake_head()
        self._acquired += 1
        if now > start:
            self._waits += 1
            self._total_wait_s += now - start
        await trio.lowlevel.cancel_shielded_checkpoint()

    def _head(self) -> _Waiter | None:
        """The waiter that goes next (see the module docstring)."""
        replies, questions, background = (self._queues[p] for p in Priority)
        if replies:
            return replies[0]
        if not questions or not background:
            return (questions or background or (None,))[0]
        old_background = background[0].seq < questions[0].seq
        if old_background and self._question_run >= self._question_run_max:
            return background[0]
        return questions[0]

    def _take(self, waiter: _Waiter, now: float) -> None:
        self._queues[waiter.priority].popleft()
        if waiter.priority is Priority.BACKGROUND:
            self._question_run = 0
        elif waiter.priority is Priority.QUESTION and self._queues[Priority.BACKGROUND]:
            self._question_run += 1
        self._by_priority[waiter.priority] += 1
        self._tat = max(self._tat, now) + self._interval
        self._sent.append(now)

    def _promote(self, waiter: _Waiter, priority: Priority) -> None:
        """Move a waiting request to a higher class, in its arrival order there."""
        if priority >= waiter.priority:
            return
        self._queues[waiter.priority].remove(waiter)
        queue = self._queues[priority]
        at = len(queue)
        while at and queue[at - 1].seq > waiter.seq:
            at -= 1
        queue.insert(at, waiter)
        waiter.priority = priority
        self._wake_head()

    def _wake_head(self) -> None:
        head = self._head()
        if head is not None:
            head.wake.set()

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
        self._wake_head()  # it re-reads the deadline

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
            acquired_by_priority=MappingProxyType(
                {p.name.lower(): n for p, n in self._by_priority.items()}),
        )
