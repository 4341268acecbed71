"""Routes events to one serializer per channel: strict order inside a channel, parallel across.

Each active channel has a lane: a bounded mailbox and one serializer task that handles its
events one at a time. A slow channel only fills its own mailbox, and the dispatcher never waits
for it: at a full mailbox the lane is marked *behind* and the post is dropped here (it is not
recorded, so the channel's cursor stays before it); when the lane's mailbox is empty again it
catches up by reading its channel from the server (``catch_up``: from the cursor, page by
page), while every other channel flows. Other events (edits, member changes) wait in a small
per-lane overflow instead.
Lanes idle for ``channel_idle_s`` with an empty mailbox are reaped; the next event for that
channel starts a fresh lane.

An event is done only when it is handled (for a post: durably stored). A transient failure
(Mattermost, the ChatService or SQLite unavailable) is retried a few times in place; then, or at
once for any other error (a bug is logged with its traceback, never retried as "transient"), the
event is parked in the durable retry queue (``retry_queue.py``) and the lane is *parked*: every
later event of that channel is parked behind it, in order, so the channel's cursor never passes
an unstored post. A parked lane retries its head with backoff until it succeeds or an admin
resolves it, then returns to its mailbox. Lanes of channels with parked events are started at
once when the dispatcher starts (the queue survives restarts). The retries, parking and a lost
lease's drop are in ``parking.py``.

Questions first: given ``is_question`` (the trigger rules), every lane has a
``ratelimit.RequestClass`` passed to ``handle(event, request_class=...)``, and counts the
questions queued in it. While it holds one, its class is raised to ``Priority.QUESTION``: the
REST reads of everything it handles (the question, and the earlier posts of its channel that
must go first, including a read already waiting) go ahead of the background reads of idle
channels in the shared budget. When its last question is handled, the class drops back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import attrs
import trio

from ..config import QueueConfig
from ..errors import MattermostAuthError
from ..messages import InboundEvent, PostCreated, channel_of
from ..ratelimit import Priority
from ..retry_queue import RetryQueue
from .lanes import OVERFLOW_CAP as OVERFLOW_CAP
from .lanes import DispatcherStats as DispatcherStats
from .lanes import Lanes as Lanes
from .lanes import _fell_behind, _Lane, _reap_idle
from .parking import RECHECK_S as RECHECK_S
from .parking import RETRY_DELAYS_S as RETRY_DELAYS_S
from .parking import TRANSIENT as TRANSIENT
from .parking import _describe, _handle_in_place, _park, _retry_parked

logger = logging.getLogger(__name__)

# ``handle(event)``, or ``handle(event, request_class=...)`` when ``is_question`` is given.
Handle = Callable[..., Awaitable[None]]
# A lane's run of posts -> how many leading ones it handled in one storage request
# (``Handler.store_posts``); the rest are handled one at a time. Same keyword.
HandleBatch = Callable[..., Awaitable[int]]
IsQuestion = Callable[[InboundEvent], bool]
LANE_BATCH = 128  # posts a lane takes from its mailbox for one storage request
# (channel id, create_at of the oldest dropped post) -> the channel's posts from its cursor (or
# from that time when it has none), a page at a time: ``Sweeper.catch_up``
CatchUp = Callable[[str, int], AsyncIterator[Sequence[InboundEvent]]]
CATCH_UP_RETRY_S = 2.0


async def run(
    queues: QueueConfig,
    *,
    inbox: trio.MemoryReceiveChannel[InboundEvent],
    handle: Handle,
    stats: DispatcherStats,
    retry_queue: RetryQueue,
    catch_up: CatchUp,
    handle_batch: HandleBatch | None = None,
    lanes: Lanes | None = None,
    is_question: IsQuestion | None = None,
    wall_clock: Callable[[], float] = time.time,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Dispatch until ``inbox`` ends, then let every lane drain and return. Never waits for a
    lane: a full mailbox marks the lane behind (see the module docstring).

    Cancellation: lanes are cancelled mid-event; an unfinished event was not recorded as
    handled, so the next start's backfill (or the retry queue) brings it back.
    """
    live = (lanes if lanes is not None else Lanes()).by_channel
    ctx = _Context(handle=handle, stats=stats, queue=retry_queue, wall=wall_clock,
                   catch_up=catch_up, handle_batch=handle_batch, is_question=is_question)
    async with trio.open_nursery() as work_nursery:

        def lane_for(cid: str) -> _Lane:
            lane = live.get(cid)
            if lane is None:
                send, receive = trio.open_memory_channel[InboundEvent](queues.channel_mailbox)
                lane = live[cid] = _Lane(send, receive, last_active=trio.current_time())
                stats.lanes_started += 1
                work_nursery.start_soon(_serialize, cid, lane, ctx)
            return lane

        for cid in await retry_queue.channels():
            lane_for(cid).parked = True
        reaper = trio.CancelScope()
        work_nursery.start_soon(_reap_idle, queues, live, stats, reaper)
        task_status.started()

        def dispatch(event: InboundEvent) -> None:
            stats.events += 1
            lane = lane_for(channel_of(event))
            lane.last_active = trio.current_time()  # an event in flight is never reaped
            if lane.behind or lane.overflow:  # nothing may overtake what was left out
                _fell_behind(channel_of(event), lane, event, stats)
                return
            question = is_question is not None and is_question(event)
            try:
                lane.send.send_nowait(event)
            except trio.WouldBlock:
                _fell_behind(channel_of(event), lane, event, stats)
                return
            if question:
                lane.questions += 1
                lane.request_class.raise_to(Priority.QUESTION)

        async for event in inbox:  # a schedule point per event: lanes get their turn (a
            dispatch(event)  # burst routed without one would fill small mailboxes at once)
            del event  # an idle lane's posts are not held here (bench/bench_lanes.py)
        reaper.cancel()
        for lane in live.values():
            lane.closing = True
            await lane.send.aclose()


@attrs.frozen
class _Context:
    handle: Handle
    stats: DispatcherStats
    queue: RetryQueue
    wall: Callable[[], float]
    catch_up: CatchUp
    handle_batch: HandleBatch | None = None
    is_question: IsQuestion | None = None

    def questions_in(self, events: Sequence[InboundEvent]) -> int:
        return 0 if self.is_question is None else sum(map(self.is_question, events))

    async def call(self, event: InboundEvent, lane: _Lane) -> None:
        if self.is_question is None:
            await self.handle(event)
        else:
            await self.handle(event, request_class=lane.request_class)

    async def call_batch(self, run: Sequence[PostCreated], lane: _Lane) -> int:
        assert self.handle_batch is not None
        if self.is_question is None:
            return int(await self.handle_batch(run))
        return int(await self.handle_batch(run, request_class=lane.request_class))


async def _serialize(cid: str, lane: _Lane, ctx: _Context) -> None:
    async with lane.receive:
        while True:
            if (lane.overflow or lane.behind) and not lane.closing and (
                    lane.receive.statistics().current_buffer_used == 0):
                await _catch_up(cid, lane, ctx)
                continue
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
                    try:
                        await _park(cid, event, ctx, attempts=0, error="behind a parked event")
                    finally:
                        lane.questions_done(ctx.questions_in([event]))
                    del event
                continue
            try:
                event = await lane.receive.receive()
            except trio.EndOfChannel:
                return
            await _take_next(cid, lane, event, ctx)
            del event  # an idle lane holds none of its handled posts (bench/bench_lanes.py)


async def _take_next(cid: str, lane: _Lane, event: InboundEvent, ctx: _Context) -> None:
    """``event`` and the posts queued behind it, handled; the lane busy meanwhile."""
    lane.busy = True
    events = [event, *_drain(lane, event, ctx)]
    questions = ctx.questions_in(events)  # counted when queued
    try:
        await _take_many(cid, lane, events, ctx, questions=questions)
    finally:
        lane.questions_done(questions)
        lane.busy = False
        lane.last_active = trio.current_time()


def _drain(lane: _Lane, first: InboundEvent, ctx: _Context) -> list[InboundEvent]:
    """The posts queued behind ``first`` (up to ``LANE_BATCH``), taken for one storage
    request; stops after the first event that is not a post (kept, in order, at the end)."""
    taken: list[InboundEvent] = []
    if not isinstance(first, PostCreated) or ctx.handle_batch is None or lane.parked:
        return taken
    while len(taken) < LANE_BATCH - 1:
        try:
            event = lane.receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            break
        taken.append(event)
        if not isinstance(event, PostCreated):
            break
    return taken


async def _take_many(cid: str, lane: _Lane, events: Sequence[InboundEvent],
                     ctx: _Context, *, questions: int | None = None) -> None:
    """Handle ``events`` in order: runs of posts in one storage request each
    (``HandleBatch``), anything that request leaves (questions, other events) one at a time.
    A question among ``events`` (a catch-up page) raises the lane's class too
    (``questions``: how many there are, when the caller counted them)."""
    if ctx.questions_in(events) if questions is None else questions:
        lane.request_class.raise_to(Priority.QUESTION)
    i = 0
    while i < len(events):
        run: list[PostCreated] = []
        while i + len(run) < len(events) and len(run) < LANE_BATCH and isinstance(
                events[i + len(run)], PostCreated):
            run.append(events[i + len(run)])  # type: ignore[arg-type]
        done = await _batch(cid, lane, run, ctx) if run else 0
        i += done
        if done < len(run) or not run:
            await _take(cid, lane, events[i], ctx)
            i += 1


async def _batch(cid: str, lane: _Lane, run: Sequence[PostCreated], ctx: _Context) -> int:
    """How many leading posts of ``run`` one storage request handled (0: none, or it failed:
    nothing of it was committed, and the posts take the one-at-a-time path with its retries
    and parking)."""
    if ctx.handle_batch is None or lane.parked:
        return 0
    try:
        done = await ctx.call_batch(run, lane)
    except MattermostAuthError:
        raise
    except Exception as exc:  # noqa: BLE001 - nothing committed: each post is retried alone
        ctx.stats.batch_fallbacks += 1
        logger.warning("dispatcher: channel %s: a batch of %d posts failed (%s); handling "
                       "them one at a time", cid, len(run), _describe(exc))
        return 0
    if done:
        ctx.stats.batches += 1
        ctx.stats.batched_posts += done
    return done


async def _take(cid: str, lane: _Lane, event: InboundEvent, ctx: _Context) -> None:
    """Handle ``event`` in order: behind the parked ones when the lane is parked."""
    if lane.parked:
        await _park(cid, event, ctx, attempts=0, error="behind a parked event")
    elif not await _handle_in_place(cid, event, lane, ctx):
        lane.parked = True


async def _catch_up(cid: str, lane: _Lane, ctx: _Context) -> None:
    """The mailbox is empty again: handle the overflow, then read the posts dropped while the
    lane was behind (and everything after them) from the server, page by page."""
    lane.busy = True
    try:
        while lane.overflow:
            await _take(cid, lane, lane.overflow.popleft(), ctx)
        if not lane.behind:
            return
        since, lane.behind, lane.behind_since_ms = lane.behind_since_ms, False, None
        ctx.stats.catch_ups += 1
        try:
            async for events in ctx.catch_up(cid, since or 0):
                await _take_many(cid, lane, events, ctx)
        except TRANSIENT as exc:
            ctx.stats.catch_up_failures += 1
            lane.behind = True
            lane.behind_since_ms = since if lane.behind_since_ms is None or since is None else (
                min(since, lane.behind_since_ms))
            logger.warning("dispatcher: channel %s: catch-up failed (%s); again in %g s", cid,
                           exc, CATCH_UP_RETRY_S)
            await trio.sleep(CATCH_UP_RETRY_S)
    finally:
        lane.questions_done(0)  # a question of a catch-up page raised the class
        lane.busy = False
        lane.last_active = trio.current_time()
