"""Client-side request pacing for trio: a GCRA token bucket guarded by a sliding-window log.

``TokenBucket`` decides when the next request may go. Three constraints are combined, and a
request waits for the latest of them:

* GCRA pacing: one emission interval (``1 / rate_per_s``) between requests, with a tolerance
  of ``burst - 1`` intervals.
* A sliding window over the server's clock, ``N = floor(rate_per_s * window_s)``: request
  ``j`` goes at least ``window_s`` after the **latest moment any request ``i <= j - N`` can
  have reached the server**, i.e. its answer (``async with bucket.request() as slot`` ...
  ``slot.answered()``), waiting while such a request is still in flight. A request arrives
  after its release and before its answer, so **no half-open window of ``window_s`` of the
  server's arrivals holds more than ``N`` requests**, whatever the connection set-up,
  scheduling or network jitter (and arrivals may reorder). It costs one round trip per ``N``
  requests (10/s with 5 ms answers: ~9.95/s). A request whose last byte is written
  (``slot.sent()``, from httpx's trace) reaches the server within ``margin_s`` of that: a
  server slow to answer holds the window that long, not until the answer or the time-out.
  An unanswered request (error, timeout, cancelled) and a bare ``acquire()`` (e.g. a
  WebSocket upgrade) are assumed to arrive within ``margin_s`` of their failure or release.
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
``question_run`` question slots. Replies go first with the same guard (``reply_run``): a
sustained reply backlog must not hold a channel whose question needs one read forever (the
backlog scenario saw one wait 37 s). Per minute: ``rate_per_s=n / 60``, ``window_s=60``.
The classes and the raisable ``RequestClass`` live in ``request_class`` (re-exported here).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType

import attrs
import trio

from .request_class import QUESTION_RUN as QUESTION_RUN
from .request_class import REPLY_RUN as REPLY_RUN
from .request_class import Priority as Priority
from .request_class import RequestClass as RequestClass
from .request_class import _Waiter


@attrs.define(eq=False)
class Slot:
    """One request let through by ``TokenBucket.request``: call ``answered()`` as soon as the
    server's response (its status line and headers) has come back."""

    released_at: float
    _bucket: TokenBucket
    _end: float | None = None  # latest moment the request can have reached the server
    _sent_by: float | None = None  # its last byte written: it reaches the server by then

    def sent(self) -> None:
        """The request's last byte has been written to the socket (httpx's trace
        ``send_request_body.complete``): it reaches the server within ``margin_s``, so a
        request the server is slow to answer holds the window only that long, not until its
        answer or time-out."""
        if self._end is None and self._sent_by is None:
            self._sent_by = self._bucket._clock() + self._bucket._margin_s
            self._bucket._wake_head()

    def answered(self) -> None:
        if self._end is None:
            self._bucket._finish(self, self._bucket._clock())

    def _bound(self, end: float) -> float:
        return end if self._sent_by is None else min(end, self._sent_by)


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
    in_flight: int = 0  # requests let through and not answered or failed yet
    acquired_by_priority: Mapping[str, int] = MappingProxyType({})  # reply/question/background


class TokenBucket:  # subclassed by budget_share.ShareBucket (replicas' leased shares)
    """Paces requests; share one instance between every caller of one budget.

    Args:
        rate_per_s: requests per second (may be below 1).
        burst: requests that may go back to back after an idle period (GCRA tolerance);
            the sliding window still caps any ``window_s`` at ``floor(rate_per_s * window_s)``.
        window_s: length of the window the budget is counted over.
        margin_s: how long after its release (or failure) an unanswered request may still
            reach the server (the window rule's allowance for requests without an answer).
        clock: returns trio's current time (the default); deadlines are slept with
            ``trio.sleep_until``, so a replacement must share trio's time base.
        question_run: question-class slots in a row before an older background waiter gets
            one (the starvation guard, see the module docstring).
        reply_run: reply slots in a row before an older waiter of another class gets one.
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
        reply_run: int = REPLY_RUN,
    ) -> None:
        if not rate_per_s > 0:
            raise ValueError(f"rate_per_s must be > 0, got {rate_per_s!r}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        if not window_s > 0 or margin_s < 0:
            raise ValueError("window_s must be > 0 and margin_s >= 0")
        if question_run < 1 or reply_run < 1:
            raise ValueError(f"question_run and reply_run must be >= 1, got {question_run!r}, "
                             f"{reply_run!r}")
        self._rate = rate_per_s
        self._interval = 1.0 / rate_per_s
        self._tolerance = (burst - 1) * self._interval
        self._window_s = window_s
        self._margin_s = margin_s
        self._clock = clock
        # A tiny epsilon so that 10.0 * 1.0 is not floored to 9 by float noise.
        self._n = max(1, math.floor(rate_per_s * window_s + 1e-9))  # requests per window
        # requests not yet folded into _floor, in release order; the newest N-1 stay here
        self._recent: deque[Slot] = deque()
        self._floor = -math.inf  # latest arrival bound of every request folded out of _recent
        self._in_flight = 0
        self._tat = -math.inf  # GCRA theoretical arrival time
        self._blocked_until = -math.inf
        self._queues: dict[Priority, deque[_Waiter]] = {p: deque() for p in Priority}
        self._seq = itertools.count()
        self._question_run_max = question_run
        self._question_run = 0  # question slots taken in a row while background waited
        self._reply_run_max = reply_run
        self._reply_run = 0  # reply slots taken in a row while another class waited
        self._by_priority = {p: 0 for p in Priority}
        self._acquired = 0
        self._waits = 0
        self._total_wait_s = 0.0
        self._waiting = 0
        self._penalties = 0
        self._server_limit: int | None = None
        self._server_remaining: int | None = None

    def __repr__(self) -> str:
        return f"<TokenBucket rate_per_s={self._rate:g} window={len(self._recent)}/{self._n}>"

    @property
    def rate_per_s(self) -> float:
        return self._rate

    def next_allowed_at(self) -> float:
        """The earliest trio time at which a request may go, given what is known now."""
        at = max(self._tat - self._tolerance, self._blocked_until)
        keep = self._n - 1  # the newest N-1 requests do not bound the next one
        recent = self._recent
        while len(recent) > keep and (end := recent[0]._end) is not None:
            recent.popleft()
            self._floor = max(self._floor, end)
        floor = self._floor
        for slot in itertools.islice(recent, 0, max(0, len(recent) - keep)):
            # still in flight, N or more back: bounded by its last byte written, if known
            bound = slot._end if slot._end is not None else slot._sent_by
            if bound is None:
                return math.inf  # not even written yet: wait for its answer or failure
            floor = max(floor, bound)
        return max(at, floor + self._window_s)

    @asynccontextmanager
    async def request(self, priority: Priority | RequestClass = Priority.BACKGROUND, *,
                      urgent: bool = False) -> AsyncIterator[Slot]:
        """``acquire()`` for one request whose answer is awaited in the block: call
        ``slot.answered()`` when the response came back. Leaving the block without it (an
        error, a timeout, a cancellation) counts the request as reaching the server up to
        ``margin_s`` after that moment."""
        slot = await self._acquire(priority, urgent)
        try:
            yield slot
        finally:
            if slot._end is None:
                self._finish(slot, self._clock() + self._margin_s)

    async def acquire(self, priority: Priority | RequestClass = Priority.BACKGROUND, *,
                      urgent: bool = False) -> None:
        """Wait until one request may go, and count it as sent (reaching the server within
        ``margin_s``; ``request()`` measures that instead).

        ``priority`` is the request's class, or a ``RequestClass`` whose class may be raised
        while it waits (``urgent=True`` is ``Priority.REPLY``); see the module docstring for
        the order and the starvation guard. Only the waiter at the head of that order sleeps
        until the next allowed time; the others wait to be woken.

        Cancellation: a cancelled waiter consumes nothing; it is always a checkpoint.
        """
        slot = await self._acquire(priority, urgent)
        self._finish(slot, slot.released_at + self._margin_s)

    async def _acquire(self, priority: Priority | RequestClass, urgent: bool) -> Slot:
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
        # an arrival can hand the head to someone else: a reply arriving while the reply run
        # is spent makes the oldest waiting read the head (it was asleep, not the head before)
        self._wake_head()
        taken = False
        slept_from: float | None = None
        try:
            while True:
                waiter.wake = trio.Event()
                if self._head() is not waiter:
                    slept_from = None
                    await waiter.wake.wait()
                    continue
                now = self._clock()
                deadline = self.next_allowed_at()
                if now >= deadline:
                    # the pacing grid keeps the time it was due, not the scheduler's lateness,
                    # unless the server has no burst to spare for two requests < 1 interval apart
                    spare = self._server_remaining is None or self._server_remaining >= 2
                    due = now if slept_from is None or not spare else max(deadline, slept_from)
                    self._take(waiter, now, due)
                    taken = True
                    break
                slept_from = now  # woken early by a penalty, a higher class, an answer
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
        slot = Slot(now, self)
        self._recent.append(slot)
        self._track(slot)
        self._in_flight += 1
        await trio.lowlevel.cancel_shielded_checkpoint()
        return slot

    def _track(self, slot: Slot) -> None:
        """A request let through (``ShareBucket`` counts its own)."""

    def _finish(self, slot: Slot, end: float) -> None:
        slot._end = slot._bound(end)
        self._in_flight -= 1
        self._wake_head()  # an answer can free the window

    def _head(self) -> _Waiter | None:
        """The waiter that goes next (see the module docstring)."""
        replies, questions, background = (self._queues[p] for p in Priority)
        if replies:
            others = [q[0] for q in (questions, background) if q]
            oldest = min(others, key=lambda w: w.seq, default=None)
            if (oldest is not None and oldest.seq < replies[0].seq
                    and self._reply_run >= self._reply_run_max):
                return oldest
            return replies[0]
        if not questions or not background:
            return (questions or background or (None,))[0]
        old_background = background[0].seq < questions[0].seq
        if old_background and self._question_run >= self._question_run_max:
            return background[0]
        return questions[0]

    def _take(self, waiter: _Waiter, now: float, due: float) -> None:
        self._queues[waiter.priority].popleft()
        if waiter.priority is not Priority.REPLY:
            self._reply_run = 0
        elif self._queues[Priority.QUESTION] or self._queues[Priority.BACKGROUND]:
            self._reply_run += 1
        if waiter.priority is Priority.BACKGROUND:
            self._question_run = 0
        elif waiter.priority is Priority.QUESTION and self._queues[Priority.BACKGROUND]:
            self._question_run += 1
        self._by_priority[waiter.priority] += 1
        self._tat = max(self._tat, due) + self._interval

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
            in_flight=self._in_flight,
            acquired_by_priority=MappingProxyType(
                {p.name.lower(): n for p, n in self._by_priority.items()}),
        )


def written(slot: Slot, also: Callable[[], None] | None = None
            ) -> Callable[[str, Mapping[str, object]], Awaitable[None]]:
    """An httpx ``trace`` extension telling ``slot`` (and ``also``, when given) when the
    request's body is written."""

    async def trace(event: str, _info: Mapping[str, object]) -> None:
        if event.endswith("send_request_body.complete"):
            slot.sent()
            if also is not None:
                also()

    return trace
