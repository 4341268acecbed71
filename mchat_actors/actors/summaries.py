"""Scheduled summaries (optional, ``MCHAT_SUMMARY_EVERY_HOURS``): one per channel per period.

Every ``every_hours`` (at absolute deadlines, no drift) each mapped channel whose sync is on
gets a summary of its last period, posted to the channel through the outbox like any reply.
Channels with nothing to summarise are skipped. The reply key names the channel and the period,
so a restart within a period never posts the same summary twice; the ChatService stores the
summary as a room memory (idempotent per window on its side).

Needs a ChatService with ``summarize_room(room, *, hours)`` (the embedded service, or the remote
adapter over its local store); otherwise the actor logs once and returns.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

import attrs
import trio

from ..errors import ChatServiceError, StoreError
from ..messages import ChannelId, OutboundRequest, RoomId, SendReply
from ..repository import Repositories, sqlite_repositories
from ..store import Store
from ..trigger import MARKER

logger = logging.getLogger(__name__)


@runtime_checkable
class _Summarizer(Protocol):
    async def summarize_room(self, room: RoomId, *, hours: int = 24) -> Any: ...


@attrs.define
class SummaryStats:
    runs: int = 0
    posted: int = 0
    failures: int = 0


def period_key(every_hours: float, wall_s: float) -> int:
    """The number of the period ``wall_s`` falls in (periods start at the Unix epoch)."""
    return math.floor(wall_s / (every_hours * 3600))


async def summarize_all(chat: Any, store: Store, replies: trio.MemorySendChannel[OutboundRequest],
                        *, every_hours: float, wall_clock: Callable[[], float] = time.time,
                        stats: SummaryStats | None = None, max_chars: int = 16383,
                        repos: Repositories | None = None) -> int:
    """One round over every synced channel; returns how many summaries were queued. Each is
    durable in the outbox before it is handed to the sender (a crash in between loses
    nothing: the sender loads pending rows at start)."""
    stats = stats or SummaryStats()
    repos = repos or sqlite_repositories()
    stats.runs += 1
    period = period_key(every_hours, wall_clock())
    hours = max(1, math.ceil(every_hours))
    queued = 0
    for row in await store.run(repos.mapping.list_channels):
        if not row["sync_enabled"]:
            continue
        try:
            memory = await chat.summarize_room(RoomId(row["agent_room_id"]), hours=hours)
        except ChatServiceError as exc:
            stats.failures += 1
            logger.warning("summaries: channel %s: %s", row["mchat_channel_id"], exc)
            continue
        if memory is None:
            continue
        cid = ChannelId(row["mchat_channel_id"])
        reply = SendReply(channel_id=cid, message=f"{MARKER} {memory.content}",
                          reply_key=f"summary:{cid}:{period}")
        await store.run(repos.outbox.enqueue_replies, [reply], max_chars=max_chars)
        await replies.send(reply)
        stats.posted += 1
        queued += 1
    return queued


async def run(chat: Any, store: Store, replies: trio.MemorySendChannel[OutboundRequest], *,
              every_hours: float, stats: SummaryStats, max_chars: int = 16383,
              sleep_until: Callable[[float], Awaitable[None]] = trio.sleep_until,
              repos: Repositories | None = None) -> None:
    """Summarise every ``every_hours`` until cancelled (``repos``: the store's, see
    ``summarize_all``)."""
    if not isinstance(chat, _Summarizer):
        logger.warning("summaries: this ChatService cannot summarise; scheduled summaries off")
        return
    interval = every_hours * 3600
    deadline = trio.current_time() + interval
    while True:
        await sleep_until(deadline)
        try:
            await summarize_all(chat, store, replies, every_hours=every_hours, stats=stats,
                                max_chars=max_chars, repos=repos)
        except StoreError as exc:
            stats.failures += 1
            logger.warning("summaries: %s", exc)
        deadline = max(deadline + interval, trio.current_time())
