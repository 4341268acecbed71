"""Routes events to one serializer per channel: strict order inside a channel, parallel across.

Each active channel has a lane: a bounded mailbox and one serializer task that handles its
events one at a time. A slow channel only fills its own mailbox; when a mailbox is full the
dispatcher waits (explicit back-pressure up to the connection, never an unbounded queue).
Lanes idle for ``channel_idle_s`` with an empty mailbox are reaped; the next event for that
channel starts a fresh lane.

An event is done only when it is handled (for a post: durably stored). A transient failure
(Mattermost, the ChatService or SQLite unavailable) is retried a few times in place; then, or at
once for any other error (a bug is logged with its traceback, never retried as "transient"), the
event is parked in the durable retry queue (``retry_queue.py``) and the lane is *parked*: every
later event of that channel is parked behind it, in order, so the channel's cursor never passes
an unstored post. A parked lane retries its head with backoff until it succeeds or an admin
resolves it, then returns to its mailbox. Lanes of channels with parked events are started at
once when the dispatcher starts (the queue survives restarts).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable

import attrs
import trio

from ..config import QueueConfig
from ..errors import (
    ChatServiceError,
    MattermostAuthError,
    MattermostUnavailable,
    RateLimited,
    StoreUnavailable,
)
from ..messages import InboundEvent, channel_of
from ..retry_queue import ParkedEvent, RetryQueue, backoff_s

logger = logging.getLogger(__name__)

Handle = Callable[[InboundEvent], Awaitable[None]]
TRANSIENT = (MattermostUnavailable, RateLimited, StoreUnavailable, ChatServiceError)
RETRY_DELAYS_S = (0.5, 1.0, 2.0)  # quick tries in place before the event is parked
RECHECK_S = 5.0  # a parked lane re-reads its head at least this often (admin retry/discard)


@attrs.define
class _Lane:
    send: trio.MemorySendChannel[InboundEvent]
    receive: trio.MemoryReceiveChannel[InboundEvent]
    busy: bool = False
    last_active: float = 0.0
    parked: bool = False  # the channel has events in the retry queue: new ones go behind


@attrs.define
class DispatcherStats:
    events: int = 0
    lanes_started: int = 0
    lanes_reaped: int = 0
    errors: int = 0  # unexpected errors (bugs): parked at once, logged with a traceback
    retries: int = 0  # quick transient retries in place
    parked: int = 0  # events put in the retry queue
    parked_done: int = 0  # parked events handled on a later try
    parked_failures: int = 0  # failed tries of a parked head
    lanes: dict[str, _Lane] = attrs.Factory(dict)

    def mailbox_depths(self) -> dict[str, int]:
        return {cid: lane.receive.statistics().current_buffer_used
                for cid, lane in self.lanes.items()}

    def parked_channels(self) -> list[str]:
        return sorted(cid for cid, lane in self.lanes.items() if lane.parked)


async def run(
    queues: QueueConfig,
    *,
    inbox: trio.MemoryReceiveChannel[InboundEvent],
    handle: Handle,
    stats: DispatcherStats,
    retry_queue: RetryQueue,
    wall_clock: Callable[[], float] = time.time,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Dispatch until ``inbox`` ends, then let every lane drain and return.

    Cancellation: lanes are cancelled mid-event; an unfinished event was not recorded as
    handled, so the next start's backfill (or the retry queue) brings it back.
    """
    lanes = stats.lanes
    ctx = _Context(handle=handle, stats=stats, queue=retry_queue, wall=wall_clock)
    async with trio.open_nursery() as work_nursery:

        def lane_for(cid: str) -> _Lane:
            lane = lanes.get(cid)
            if lane is None:
                send, receive = trio.open_memory_channel[InboundEvent](queues.channel_mailbox)
                lane = lanes[cid] = _Lane(send, receive, last_active=trio.current_time())
                stats.lanes_started += 1
                work_nursery.start_soon(_serialize, cid, lane, ctx)
            return lane

        for cid in await retry_queue.channels():
            lane_for(cid).parked = True
        reaper = trio.CancelScope()
        work_nursery.start_soon(_reap_idle, queues, lanes, stats, reaper)
        task_status.started()
        async for event in inbox:
            stats.events += 1
            lane = lane_for(channel_of(event))
            lane.last_active = trio.current_time()  # an event in flight is never reaped
            await lane.send.send(event)
        reaper.cancel()
        for lane in lanes.values():
            await lane.send.aclose()


@attrs.frozen
class _Context:
    handle: Handle
    stats: DispatcherStats
    queue: RetryQueue
    wall: Callable[[], float]


async def _serialize(cid: str, lane: _Lane, ctx: _Context) -> None:
    async with lane.receive:
        while True:
            if lane.parked:
                due = await _retry_parked(cid, lane, ctx)
                if not lane.parked:
                    continue
                event = None
                with trio.move_on_after(min(due, RECHECK_S)):
                    try:
                        event = await lane.receive.receive()
                    except trio.EndOfChannel:
                        return  # shutdown: the parked events stay in the durable queue
                if event is not None:
                    await _park(cid, event, ctx, attempts=0, error="behind a parked event")
                continue
            try:
                event = await lane.receive.receive()
            except trio.EndOfChannel:
                return
            lane.busy = True
            try:
                if not await _handle_in_place(cid, event, ctx):
                    lane.parked = True
            finally:
                lane.busy = False
                lane.last_active = trio.current_time()


async def _handle_in_place(cid: str, event: InboundEvent, ctx: _Context) -> bool:
    """Handle ``event``, retrying transient failures a few times; park it when that fails.
    Returns whether it was handled (False: it is parked)."""
    stats = ctx.stats
    for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
        try:
            await ctx.handle(event)
            return True
        except MattermostAuthError:
            raise
        except TRANSIENT as exc:
            if delay is None:
                await _park(cid, event, ctx, attempts=attempt + 1, error=_describe(exc))
                return False
            stats.retries += 1
            logger.warning("dispatcher: channel %s: %s; retrying in %g s", cid,
                           type(exc).__name__, delay)
            await trio.sleep(delay)
        except Exception as exc:  # the serializer's error boundary: a bug is parked, not lost
            stats.errors += 1
            logger.exception("dispatcher: channel %s: failed to handle %s; parked", cid,
                             type(event).__name__)
            await _park(cid, event, ctx, attempts=attempt + 1, error=_describe(exc))
            return False
    raise AssertionError("unreachable")  # pragma: no cover


async def _park(cid: str, event: InboundEvent, ctx: _Context, *, attempts: int,
                error: str) -> None:
    """Make ``event`` durable in the retry queue; while the database refuses, keep trying (the
    event is not recorded as handled, so if the process dies meanwhile the backfill has it)."""
    next_at = ctx.wall() + (_parked_backoff(attempts) if attempts else 0.0)
    for delay in itertools.chain(RETRY_DELAYS_S, itertools.repeat(30.0)):
        try:
            if await ctx.queue.park(event, attempts=attempts, error=error,
                                    next_attempt_at=next_at):
                ctx.stats.parked += 1
                if attempts:
                    logger.warning("dispatcher: channel %s: parked %s after %d tries: %s", cid,
                                   type(event).__name__, attempts, error)
            return
        except StoreUnavailable as exc:
            logger.warning("dispatcher: channel %s: cannot park an event (%s); retrying in "
                           "%g s", cid, exc, delay)
            await trio.sleep(delay)


async def _retry_parked(cid: str, lane: _Lane, ctx: _Context) -> float:
    """Try the channel's due parked events in order. Unparks the lane when the queue is empty;
    else returns the seconds until its head is due."""
    stats = ctx.stats
    while True:
        try:
            parked = await ctx.queue.head(cid)
        except StoreUnavailable:
            return RECHECK_S
        if parked is None:
            lane.parked = False
            logger.info("dispatcher: channel %s: retry queue empty; back to live events", cid)
            return 0.0
        wait = parked.next_attempt_at - ctx.wall()
        if wait > 0:
            return wait
        error = await _try_parked(cid, parked, ctx)
        if error is None:
            stats.parked_done += 1
            await ctx.queue.done(parked.id)
            continue
        stats.parked_failures += 1
        delay = _parked_backoff(parked.attempts + 1)
        await ctx.queue.failed(parked.id, error=error, next_attempt_at=ctx.wall() + delay)
        logger.warning("dispatcher: channel %s: parked %s failed again (try %d): %s; next in "
                       "%g s", cid, type(parked.event).__name__, parked.attempts + 1, error,
                       delay)
        return delay


async def _try_parked(cid: str, parked: ParkedEvent, ctx: _Context) -> str | None:
    """One try of a parked event: None when handled, else the error's description."""
    try:
        await ctx.handle(parked.event)
    except MattermostAuthError:
        raise
    except TRANSIENT as exc:
        return _describe(exc)
    except Exception as exc:  # the serializer's error boundary (see _handle_in_place)
        ctx.stats.errors += 1
        logger.exception("dispatcher: channel %s: parked %s failed with a bug", cid,
                         type(parked.event).__name__)
        return _describe(exc)
    return None


def _parked_backoff(attempts: int) -> float:
    """Backoff after ``attempts`` tries in all, the quick ones in place not counted."""
    return backoff_s(attempts - len(RETRY_DELAYS_S))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


async def _reap_idle(queues: QueueConfig, lanes: dict[str, _Lane], stats: DispatcherStats,
                     scope: trio.CancelScope) -> None:
    with scope:
        while True:
            await trio.sleep(max(queues.channel_idle_s / 4, 0.05))
            now = trio.current_time()
            for cid in list(lanes):
                lane = lanes[cid]
                idle = now - lane.last_active >= queues.channel_idle_s
                empty = lane.receive.statistics().current_buffer_used == 0
                if idle and empty and not lane.busy and not lane.parked:
                    del lanes[cid]
                    lane.send.close()  # the serializer sees end-of-channel and exits
                    stats.lanes_reaped += 1
