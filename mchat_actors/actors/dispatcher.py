"""Routes events to one serializer per channel: strict order inside a channel, parallel across.

Each active channel has a lane: a bounded mailbox and one serializer task that handles its
events one at a time. A slow channel only fills its own mailbox; when a mailbox is full the
dispatcher waits (explicit back-pressure up to the connection, never an unbounded queue).
Lanes idle for ``channel_idle_s`` with an empty mailbox are reaped; the next event for that
channel starts a fresh lane. A transient failure (Mattermost or SQLite unavailable) retries the
same event with backoff so the channel's order holds; any other error is logged and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import attrs
import trio

from ..config import QueueConfig
from ..errors import MattermostAuthError, MattermostUnavailable, RateLimited, StoreError
from ..messages import InboundEvent, channel_of

logger = logging.getLogger(__name__)

Handle = Callable[[InboundEvent], Awaitable[None]]
TRANSIENT = (MattermostUnavailable, RateLimited, StoreError)
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)


@attrs.define
class _Lane:
    send: trio.MemorySendChannel[InboundEvent]
    receive: trio.MemoryReceiveChannel[InboundEvent]
    busy: bool = False
    last_active: float = 0.0


@attrs.define
class DispatcherStats:
    events: int = 0
    lanes_started: int = 0
    lanes_reaped: int = 0
    errors: int = 0
    retries: int = 0
    lanes: dict[str, _Lane] = attrs.Factory(dict)

    def mailbox_depths(self) -> dict[str, int]:
        return {cid: lane.receive.statistics().current_buffer_used
                for cid, lane in self.lanes.items()}


async def run(
    queues: QueueConfig,
    *,
    inbox: trio.MemoryReceiveChannel[InboundEvent],
    handle: Handle,
    stats: DispatcherStats,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Dispatch until ``inbox`` ends, then let every lane drain and return.

    Cancellation: lanes are cancelled mid-event; an unfinished event was not recorded as
    handled, so the next start's backfill brings it back.
    """
    lanes = stats.lanes
    async with trio.open_nursery() as work_nursery:
        reaper = trio.CancelScope()
        work_nursery.start_soon(_reap_idle, queues, lanes, stats, reaper)
        task_status.started()
        async for event in inbox:
            stats.events += 1
            cid = channel_of(event)
            lane = lanes.get(cid)
            if lane is None:
                send, receive = trio.open_memory_channel[InboundEvent](queues.channel_mailbox)
                lane = lanes[cid] = _Lane(send, receive, last_active=trio.current_time())
                stats.lanes_started += 1
                work_nursery.start_soon(_serialize, cid, lane, handle, stats)
            lane.last_active = trio.current_time()  # an event in flight is never reaped
            await lane.send.send(event)
        reaper.cancel()
        for lane in lanes.values():
            await lane.send.aclose()


async def _serialize(cid: str, lane: _Lane, handle: Handle, stats: DispatcherStats) -> None:
    async with lane.receive:
        async for event in lane.receive:
            lane.busy = True
            try:
                await _handle_with_retry(cid, event, handle, stats)
            finally:
                lane.busy = False
                lane.last_active = trio.current_time()


async def _handle_with_retry(cid: str, event: InboundEvent, handle: Handle,
                             stats: DispatcherStats) -> None:
    for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
        try:
            await handle(event)
            return
        except MattermostAuthError:
            raise
        except TRANSIENT as exc:
            if delay is None:
                stats.errors += 1
                logger.error("dispatcher: channel %s: giving up on %s after %d tries: %s",
                             cid, type(event).__name__, attempt + 1, exc)
                return
            stats.retries += 1
            logger.warning("dispatcher: channel %s: %s; retrying in %g s", cid,
                           type(exc).__name__, delay)
            await trio.sleep(delay)
        except Exception:  # the serializer's error boundary: one event, log, count, go on
            stats.errors += 1
            logger.exception("dispatcher: channel %s: failed to handle %s", cid,
                             type(event).__name__)
            return


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
                if idle and empty and not lane.busy:
                    del lanes[cid]
                    lane.send.close()  # the serializer sees end-of-channel and exits
                    stats.lanes_reaped += 1
