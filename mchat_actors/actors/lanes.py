"""The dispatcher's lanes: one bounded mailbox and serializer per active channel, the live set
of them (``Lanes``, the dispatcher's control state, read by health and metrics), what happens
at a full mailbox, and the reaping of idle lanes. The serializer itself is ``dispatcher``'s."""

from __future__ import annotations

import logging
from collections import deque

import attrs
import trio

from ..config import QueueConfig
from ..messages import InboundEvent, PostCreated
from ..ratelimit import RequestClass

logger = logging.getLogger("mchat_actors.actors.dispatcher")

OVERFLOW_CAP = 4096


@attrs.define
class _Lane:
    send: trio.MemorySendChannel[InboundEvent]
    receive: trio.MemoryReceiveChannel[InboundEvent]
    busy: bool = False
    last_active: float = 0.0
    parked: bool = False  # the channel has events in the retry queue: new ones go behind
    behind: bool = False  # posts were dropped at a full mailbox: catch up from REST
    behind_since_ms: int | None = None  # create_at of the oldest dropped post
    overflow: deque[InboundEvent] = attrs.Factory(deque)  # non-post events at a full mailbox
    closing: bool = False
    questions: int = 0  # questions queued in the mailbox or being handled (questions first)
    # the class of its REST reads: raised to QUESTION while it holds a question
    request_class: RequestClass = attrs.Factory(RequestClass)

    def questions_done(self, n: int) -> None:
        """``n`` counted questions left the mailbox (handled or parked); after the last one
        the lane's class drops back to background."""
        self.questions -= n
        if not self.questions:
            self.request_class.reset()


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
    dropped_behind: int = 0  # posts not queued at a full mailbox (read again by a catch-up)
    catch_ups: int = 0
    batches: int = 0  # storage requests for a lane's run of plain posts
    batched_posts: int = 0  # posts handled in those
    batch_fallbacks: int = 0  # batches that failed and were handled one post at a time
    catch_up_failures: int = 0
    overflow_lost: int = 0  # non-post events beyond OVERFLOW_CAP (logged as errors)
    lease_lost: int = 0  # replicas: events dropped, their channel's lease lost (pg.fence)


@attrs.define
class Lanes:
    """The dispatcher's live lanes by channel (its control state; read-only views for
    health and metrics)."""

    by_channel: dict[str, _Lane] = attrs.Factory(dict)

    def __len__(self) -> int:
        return len(self.by_channel)

    def mailbox_depths(self) -> dict[str, int]:
        return {cid: lane.receive.statistics().current_buffer_used
                for cid, lane in self.by_channel.items()}

    def parked_channels(self) -> list[str]:
        return sorted(cid for cid, lane in self.by_channel.items() if lane.parked)

    def behind_channels(self) -> list[str]:
        return sorted(cid for cid, lane in self.by_channel.items() if lane.behind)


def _fell_behind(cid: str, lane: _Lane, event: InboundEvent, stats: DispatcherStats) -> None:
    """The lane's mailbox is full. A post is dropped here and read again from the server when
    the lane has room (it is not recorded, so the cursor stays before it); other events wait
    in the lane's overflow, bounded by ``OVERFLOW_CAP``."""
    if isinstance(event, PostCreated):
        if not lane.behind:
            logger.warning("dispatcher: channel %s fell behind (mailbox full); it catches up "
                           "from the server", cid)
        lane.behind = True
        at = event.post.create_at
        lane.behind_since_ms = at if lane.behind_since_ms is None else min(
            lane.behind_since_ms, at)
        stats.dropped_behind += 1
    elif len(lane.overflow) < OVERFLOW_CAP:
        lane.overflow.append(event)
    else:
        stats.overflow_lost += 1
        logger.error("dispatcher: channel %s: overflow full, %s lost", cid,
                     type(event).__name__)


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
                if idle and empty and not (lane.busy or lane.parked or lane.behind
                                               or lane.overflow):
                    del lanes[cid]
                    lane.send.close()  # the serializer sees end-of-channel and exits
                    stats.lanes_reaped += 1
