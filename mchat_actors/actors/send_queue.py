"""The sender's records: its settings and counters, the transport it posts through, and one
run's in-memory queues (per channel FIFO of outbox rows, round-robin order of channels)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVarTuple

import attrs
import trio

from ..errors import MattermostAuthError, MattermostError
from ..histogram import LatencyHistogram
from ..messages import AddReaction
from ..outbox import OutboxRow

logger = logging.getLogger(__name__)
_Ts = TypeVarTuple("_Ts")


class Reacting(Protocol):
    async def add_reaction(self, *, user_id: str, post_id: str, emoji_name: str) -> Any: ...

    async def remove_reaction(self, *, user_id: str, post_id: str, emoji_name: str) -> Any: ...


class LeaseView(Protocol):
    """Replicas: the channel leases as the sender needs them (``ChannelOwnership``)."""

    def lease_of(self, channel_id: str) -> tuple[str, int] | None:
        """(bucket, which gain of it) while held, else None."""
        ...

    def leases(self) -> Mapping[str, int]:
        """Every bucket held now and which gain of it."""
        ...


class PostTransport(Protocol):
    """Where rows are posted when it is not the REST client (webhook-only mode:
    ``mattermost.incoming_webhook.IncomingWebhookPoster``). Such a transport cannot read
    posts back (no in-doubt lookup: a row is posted again) nor react (reactions are dropped)."""

    async def create_post(self, *, channel_id: str, message: str, root_id: str | None = None,
                          pending_post_id: str | None = None,
                          props: Mapping[str, Any] | None = None,
                          on_sent: Callable[[], None] | None = None) -> Any: ...

    async def ping(self) -> object:
        """Whether the server answers at all, without credentials (the circuit's probe)."""
        ...


@attrs.frozen(kw_only=True)
class SenderSettings:
    quick_retries: int = 3
    backoff_initial_s: float = 1.0
    backoff_factor: float = 2.0
    retry_later_initial_s: float = 30.0
    retry_later_max_s: float = 300.0
    in_doubt_after_s: float = 25.0  # the server remembers pending_post_id for 30 s
    lookup_margin_s: float = 60.0  # look back this far before the first attempt
    rescan_interval_s: float = 10.0  # pick up rows requeued by an admin
    reaction_timeout_s: float = 5.0
    reaction_queue: int = 32
    probe_initial_s: float = 0.25  # circuit open: probe the server after this, doubling ...
    probe_max_s: float = 1.0  # ... up to this (held replies go within ~1 s of recovery)


# the runtime's own latency per live answer: fine buckets around the few ms it should take
ANSWER_ADDED_BUCKETS_S = (0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05,
                          0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


@attrs.define
class SenderCounters:
    """Live counters, updated by the sender only."""

    replies: int = 0  # SendReply messages received
    sent: int = 0  # rows posted (or found already posted)
    failed: int = 0  # rows given up on with a permanent error
    retries: int = 0  # transient failures
    deferred: int = 0  # times a head was put off after its quick retries
    in_doubt_lookups: int = 0
    in_doubt_found: int = 0
    reactions_sent: int = 0
    reactions_failed: int = 0
    reactions_dropped: int = 0
    errors: int = 0  # unexpected exceptions at the error boundary
    pending: int = 0  # rows queued in memory
    channels: int = 0  # channels with queued rows
    ephemeral_sent: int = 0  # answers shown to their asker only
    ephemeral_by_dm: int = 0  # ... sent by DM instead (no permission, or it failed)
    circuit_opens: int = 0  # server-wide failures seen (rows held, server probed)
    probes: int = 0
    circuit_open: bool = False
    lease_lost: int = 0  # replicas: claims refused, the channel's lease lost (pg.fence)
    # the latency the runtime added to live answers (``outbox.AnswerClock``): count, sum, and
    # the last 1 000 (seconds), from the question's frame in to its reply's POST written
    answer_added_s: LatencyHistogram = attrs.Factory(
        lambda: LatencyHistogram(bounds=ANSWER_ADDED_BUCKETS_S))
    answer_added_recent_s: list[float] = attrs.Factory(list)

    def answer_added(self, seconds: float) -> None:
        self.answer_added_s.observe(seconds)
        self.answer_added_recent_s.append(seconds)
        del self.answer_added_recent_s[:-1000]


@attrs.frozen(kw_only=True)
class SenderStats:
    """A snapshot of ``SenderCounters`` (trio's ``statistics()`` convention)."""

    replies: int
    sent: int
    failed: int
    retries: int
    deferred: int
    in_doubt_lookups: int
    in_doubt_found: int
    reactions_sent: int
    reactions_failed: int
    reactions_dropped: int
    errors: int
    pending: int
    channels: int
    ephemeral_sent: int = 0
    ephemeral_by_dm: int = 0
    circuit_opens: int
    probes: int
    circuit_open: bool
    lease_lost: int = 0


@attrs.define
class _Entry:
    row: OutboxRow
    not_before: float  # trio time
    failures: int = 0  # transient failures since the last deferral
    deferrals: int = 0
    is_deferred: bool = False

    def failed(self, s: SenderSettings, *, rate_limited: bool) -> float:
        """A transient failure: the delay before the next try (a few quick retries with
        backoff, then deferred for longer and longer, up to ``retry_later_max_s``)."""
        self.failures += 1
        if self.failures <= s.quick_retries:
            self.is_deferred = False
            return 0.0 if rate_limited else (
                s.backoff_initial_s * s.backoff_factor ** (self.failures - 1))
        delay = min(s.retry_later_initial_s * s.backoff_factor ** self.deferrals,
                    s.retry_later_max_s)
        self.failures, self.is_deferred = 0, True
        self.deferrals += 1
        return delay


@attrs.define
class _State:
    """One run's queues: per channel FIFO of rows, and the round-robin order of channels."""

    queues: dict[str, deque[_Entry]] = attrs.Factory(dict)
    turns: deque[str] = attrs.Factory(deque)
    known: set[int] = attrs.Factory(set)
    incoming: list[int] = attrs.Factory(list)
    committed: list[OutboxRow] = attrs.Factory(list)  # rows as committed, not yet queued
    inherited: Mapping[str, int] = attrs.Factory(dict)  # replicas: leases as at the last read
    wakeup: trio.Event = attrs.Factory(trio.Event)
    closing: bool = False

    def wake(self) -> None:
        self.wakeup.set()


async def send_reaction(client: Reacting, bot_user_id: str, request: AddReaction, *,
                        timeout_s: float, stats: SenderCounters) -> None:
    """Add or remove one reaction under ``timeout_s``; a failure is logged and counted."""
    call = client.remove_reaction if request.remove else client.add_reaction
    with trio.move_on_after(timeout_s) as scope:
        try:
            await call(user_id=bot_user_id, post_id=request.post_id,
                       emoji_name=request.emoji_name)
        except MattermostAuthError:
            raise
        except MattermostError as exc:
            stats.reactions_failed += 1
            logger.warning("sender: reaction %s on post %s failed: %s", request.emoji_name,
                           request.post_id, exc)
            return
    if scope.cancelled_caught:
        stats.reactions_failed += 1
        logger.warning("sender: reaction %s on post %s timed out", request.emoji_name,
                       request.post_id)
        return
    stats.reactions_sent += 1


async def guarded(stats: SenderCounters, what: str, fn: Callable[[*_Ts], Awaitable[Any]],
                  *args: *_Ts) -> bool:
    """The sender's one error boundary: one message or one row. False if it failed."""
    try:
        await fn(*args)
    except MattermostAuthError:
        raise
    except Exception:  # the sender's error boundary: log, count, keep the row for later
        stats.errors += 1
        logger.exception("sender: unexpected error handling %s", what)
        return False
    return True
