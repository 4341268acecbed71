"""The rate-limited sender: the only actor that posts to Mattermost.

Every ``SendReply`` is first made durable in the outbox (``outbox.enqueue_replies``, idempotent
on the reply key), then posted by one sending loop through the shared token bucket:

* Per channel, rows go strictly in id order; a failing head holds back only its own channel.
  Channels with work are served round-robin, one post each, so a busy channel cannot starve
  the others (the queues: ``send_order.py``, with the replicas' hand-over of outbox rows).
* 429, 5xx, network errors and unparseable answers are transient: the head is retried after
  1 s, 2 s, 4 s (``SenderSettings``; after a 429 the bucket's penalty is the wait), then
  deferred (30 s, doubling, capped) and tried again later: never dropped.
* A server-wide failure (a 5xx or network error, and ``GET /system/ping`` fails too) opens
  the circuit (``circuit.py``): rows are held and the server probed; when it answers the
  held rows go out at once, at the bucket's full rate, in order. 400/403/404 mark
  the row failed (an admin can requeue it). ``MattermostAuthError`` is fatal.
* Each post carries the row's stable ``pending_post_id`` (the server returns the original post
  for a repeat within 30 s) and ``props.mchat_reply_key``. A row first attempted more than
  ``in_doubt_after_s`` ago is looked up among the bot's recent posts before it is posted again.
* ``AddReaction`` is best effort: a small bounded queue, a timeout, errors logged and counted.

Statistics: ``Sender.stats`` is a live ``SenderCounters`` (owned by the sender, read by
health/metrics); ``Sender.statistics()`` returns a frozen ``SenderStats`` snapshot.

Restarts: ``run`` may be called again on the same ``Sender`` and inbox after a crash (the app
supervises it); per-run state is rebuilt from the outbox. The inbox is closed only when ``run``
returns normally.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import assert_never, final

import attrs
import trio

from ..config import MattermostConfig
from ..errors import (
    LeaseLost,
    MalformedEvent,
    MattermostApiError,
    MattermostAuthError,
    MattermostError,
    MattermostUnavailable,
    RateLimited,
)
from ..mattermost.hygiene import POST_PROPS
from ..mattermost.rest import MattermostClient
from ..messages import AddReaction, OutboundRequest, SendEphemeral, SendReply
from ..outbox import OutboxRow
from ..repository import Repositories, sqlite_repositories
from ..store import Store
from . import ephemeral
from .circuit import Circuit
from .in_doubt import find_earlier_post
from .send_order import SendOrder
from .send_queue import LeaseView as LeaseView
from .send_queue import PostTransport as PostTransport
from .send_queue import SenderCounters as SenderCounters
from .send_queue import SenderSettings as SenderSettings
from .send_queue import SenderStats as SenderStats
from .send_queue import _Entry, _State, guarded, send_reaction

logger = logging.getLogger(__name__)

_TRANSIENT = (RateLimited, MattermostUnavailable, MalformedEvent)


async def run(
    cfg: MattermostConfig,
    *,
    store: Store,
    client: MattermostClient,
    inbox: trio.MemoryReceiveChannel[OutboundRequest],
    bot_user_id: str,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a ``Sender`` with default settings (see ``Sender.run``)."""
    sender = Sender(cfg, store=store, client=client, bot_user_id=bot_user_id)
    await sender.run(inbox, task_status=task_status)


@final
class Sender:
    """The sender actor. ``wall_clock`` stamps outbox rows (tests pass one tied to trio time)."""

    def __init__(
        self,
        cfg: MattermostConfig,
        *,
        store: Store,
        client: MattermostClient,
        bot_user_id: str,
        settings: SenderSettings | None = None,
        wall_clock: Callable[[], float] = time.time,
        transport: PostTransport | None = None,
        repos: Repositories | None = None,
        leases: LeaseView | None = None,
    ) -> None:
        self._cfg = cfg
        self._repos = repos or sqlite_repositories()
        self._transport = transport  # None: post through ``client`` (REST)
        self._store = store
        self._client = client
        self._bot_user_id = bot_user_id
        self._settings = settings or SenderSettings()
        self._wall = wall_clock
        self.stats = SenderCounters()
        # the queues' order; replicas: only the channels whose lease is held (``send_order``)
        self._order = SendOrder(store=store, repos=self._repos, settings=self._settings,
                                stats=self.stats, wall_clock=wall_clock, leases=leases)
        s = self._settings
        # the probe goes where the posts go: a token-less webhook-only client must not ask REST
        ping = transport.ping if transport is not None else client.ping
        self._circuit = Circuit(ping, initial_s=s.probe_initial_s, max_s=s.probe_max_s,
                                timeout_s=s.reaction_timeout_s)

    def statistics(self) -> SenderStats:
        """The counters (the latency histogram stays on ``stats``, read by /metrics)."""
        names = {f.name for f in attrs.fields(SenderStats)}
        return SenderStats(**{k: v for k, v in attrs.asdict(self.stats, recurse=False).items()
                              if k in names})

    async def run(
        self,
        inbox: trio.MemoryReceiveChannel[OutboundRequest],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Send until ``inbox`` ends, then send what is due and return.

        Calls ``task_status.started()`` once the outbox's pending rows are loaded. After the
        inbox ends it keeps going until every remaining channel head is deferred (a failing
        server) or nothing is left; rows not sent stay in the outbox for the next run.

        Raises:
            MattermostAuthError: the token was rejected (fatal).
            StoreError: the outbox could not be read.

        Cancellation: safe at any point; an interrupted post is recognised on the next run.
        """
        state = _State()
        self._order.merge(state, await self._store.run(self._repos.outbox.load_pending))
        react_send, react_recv = trio.open_memory_channel[AddReaction](
            self._settings.reaction_queue
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._serve_rows, state)
            nursery.start_soon(self._serve_reactions, react_recv)
            task_status.started()
            async with react_send:
                async for request in inbox:
                    await guarded(self.stats, f"{type(request).__name__}", self._accept, state,
                                        request, react_send)
            state.closing = True
            state.wake()
        await inbox.aclose()

    # ------------------------------------------------------------------ intake
    async def _accept(self, state: _State, request: OutboundRequest,
                      reactions: trio.MemorySendChannel[AddReaction]) -> None:
        match request:
            case SendReply(committed=rows) if rows:
                self.stats.replies += 1
                state.committed.extend(rows)  # committed by the handler: no re-read
                state.wake()
            case SendReply():
                self.stats.replies += 1
                ids = await self._store.run(
                    self._repos.outbox.enqueue_replies, [request],
                    max_chars=self._cfg.max_post_chars,
                    now=self._wall(),
                )
                # The sending loop loads them: only it touches the queues, so a row it has
                # just marked sent can never be queued again by a stale read.
                state.incoming.extend(ids)
                state.wake()
            case SendEphemeral() if self._transport is not None:
                # an incoming webhook can reach no single person: never post the private
                # answer in the channel, only the note (the slash command answers privately)
                self.stats.ephemeral_by_dm += 1
                await self._accept(state, ephemeral.note_only(request), reactions)
            case SendEphemeral():
                fallback = await ephemeral.deliver(
                    self._client, self._bot_user_id, request,
                    timeout_s=self._settings.reaction_timeout_s)
                if fallback:
                    self.stats.ephemeral_by_dm += 1
                else:
                    self.stats.ephemeral_sent += 1
                for reply in fallback:
                    await self._accept(state, reply, reactions)
            case AddReaction() if self._transport is not None:
                self.stats.reactions_dropped += 1  # an incoming webhook cannot react
            case AddReaction():
                try:
                    reactions.send_nowait(request)
                except trio.WouldBlock:
                    self.stats.reactions_dropped += 1
                    logger.warning("sender: reaction queue full, dropped %s on post %s",
                                   request.emoji_name, request.post_id)
            case _:
                assert_never(request)

    # ------------------------------------------------------------------ the sending loop
    async def _serve_rows(self, state: _State) -> None:
        next_rescan = trio.current_time() + self._settings.rescan_interval_s
        while True:
            if state.committed:
                rows, state.committed = state.committed, []
                self._order.merge(state, rows)
            if state.incoming:
                ids, state.incoming = state.incoming, []
                self._order.merge(state,
                                  await self._store.run(self._repos.outbox.load_pending, ids=ids))
            now = trio.current_time()
            if not state.closing and now >= next_rescan:
                self._order.merge(state, await self._store.run(self._repos.outbox.load_pending))
                next_rescan = now + self._settings.rescan_interval_s
            probe_at = self._circuit.probe_at
            if probe_at is not None:  # the circuit is open: rows wait for the server
                if state.closing:
                    return  # the held rows stay in the outbox for the next run
                if now >= probe_at:
                    await self._probe()
                    continue
                with trio.move_on_at(probe_at):
                    await state.wakeup.wait()
                if state.wakeup.is_set():
                    state.wakeup = trio.Event()
                continue
            channel = self._order.next_due(state, now)
            if channel is not None and await self._order.inherit(state, channel):
                continue  # its queue may have an older head now
            if channel is not None:
                entry = state.queues[channel][0]
                ok = await guarded(self.stats, f"row {entry.row.id} ({entry.row.reply_key})",
                                         self._send_head, state, channel, entry)
                if not ok and state.queues.get(channel, deque()) and (
                    state.queues[channel][0] is entry
                ):
                    entry.not_before = trio.current_time() + self._settings.backoff_initial_s
                continue
            if state.closing and not state.incoming and all(
                q[0].is_deferred for q in state.queues.values()
            ):
                return
            wake_at = min((q[0].not_before for q in state.queues.values()), default=math.inf)
            if not state.closing:
                wake_at = min(wake_at, next_rescan)
            with trio.move_on_at(wake_at):
                await state.wakeup.wait()
            if state.wakeup.is_set():
                state.wakeup = trio.Event()

    # ------------------------------------------------------------------ one row
    async def _send_head(self, state: _State, channel: str, entry: _Entry) -> None:
        row = entry.row
        if not self._order.holds(channel):  # lost
            self._order.drop(state, channel)
            return
        try:
            if row.marked_unsent:  # its attempt was recorded by the commit that wrote it
                entry.row = row = attrs.evolve(row, marked_unsent=False)
            else:
                if self._transport is None and self._is_in_doubt(row):
                    post_id = await self._find_earlier_post(row)
                    if post_id is not None:
                        await self._finish(state, channel, entry, post_id)
                        return
                wall = self._wall()
                await self._store.run(self._repos.outbox.mark_attempt, row.id, now=wall)
                entry.row = row = attrs.evolve(
                    row, attempts=row.attempts + 1, last_attempt_at=wall,
                    first_attempt_at=wall if row.first_attempt_at is None
                    else row.first_attempt_at)
            sent_at: list[float] = []  # when its last byte was written (the runtime's part ends)
            post = await (self._transport or self._client).create_post(
                channel_id=row.channel_id, message=row.message, root_id=row.root_id,
                pending_post_id=row.pending_post_id,
                props={"mchat_reply_key": row.reply_key, "from_bot": "true", **POST_PROPS},
                on_sent=lambda: sent_at.append(trio.current_time()),
            )
            if not isinstance(post, Mapping) or not post.get("id"):
                raise MalformedEvent("create_post answered without a post id")
        except MattermostAuthError:
            raise
        except LeaseLost as exc:  # replicas: its claim refused, nothing posted
            self.stats.lease_lost += 1
            logger.warning("sender: channel %s: %s; its rows are left to its owner", channel, exc)
            self._order.drop(state, channel)
            return
        except _TRANSIENT as exc:
            failed_at = trio.current_time()
            if isinstance(exc, MattermostUnavailable) and (
                    not await self._circuit.server_answers()):
                self._open_circuit(state, entry, exc)
                return
            await self._retry(entry, exc, failed_at)
            return
        except MattermostApiError as exc:
            await self._store.run(self._repos.outbox.mark_failed, row.id, error=str(exc))
            self.stats.failed += 1
            logger.warning("sender: channel %s: row %s (%s) failed permanently: %s",
                           channel, row.id, row.reply_key, exc)
            self._order.pop_head(state, channel)
            return
        clock = row.clock
        if clock is not None and sent_at:  # a live question's reply: the runtime's part done
            self.stats.answer_added(clock.added_s(sent_at[0]))
        await self._finish(state, channel, entry, str(post["id"]))

    def _is_in_doubt(self, row: OutboxRow) -> bool:
        return (row.attempts > 0 and row.first_attempt_at is not None
                and self._wall() - row.first_attempt_at > self._settings.in_doubt_after_s)

    async def _find_earlier_post(self, row: OutboxRow) -> str | None:
        """The id of a post an earlier attempt already made for ``row``, if any."""
        assert row.first_attempt_at is not None
        self.stats.in_doubt_lookups += 1
        found = await find_earlier_post(
            self._client, channel_id=row.channel_id, reply_key=row.reply_key,
            bot_user_id=self._bot_user_id,
            since_ms=int((row.first_attempt_at - self._settings.lookup_margin_s) * 1000))
        if found is not None:
            self.stats.in_doubt_found += 1
            logger.info("sender: row %s (%s) was already posted as %s", row.id, row.reply_key,
                        found)
        return found

    async def _finish(self, state: _State, channel: str, entry: _Entry, post_id: str) -> None:
        # lazy: it commits with the echo of this post (the lane records the bot's own post)
        await self._store.run_lazy(self._repos.outbox.mark_sent, entry.row.id,
                                   mm_post_id=post_id, now=self._wall())
        self.stats.sent += 1
        self._order.pop_head(state, channel)

    # ------------------------------------------------------------------ the circuit
    def _open_circuit(self, state: _State, entry: _Entry, exc: MattermostError) -> None:
        """A server-wide failure: hold every row; the failed head stays due."""
        if self._circuit.open():
            logger.warning("sender: Mattermost is unavailable (%s); holding %d replies and "
                           "probing", exc, len(state.known))
        entry.not_before = trio.current_time()
        self._count_circuit()

    async def _probe(self) -> None:
        if await self._circuit.probe():
            logger.info("sender: Mattermost answers again; sending the held replies")
        self._count_circuit()

    def _count_circuit(self) -> None:
        c = self._circuit
        self.stats.circuit_opens, self.stats.probes = c.opens, c.probes
        self.stats.circuit_open = c.is_open

    async def _retry(self, entry: _Entry, exc: MattermostError, failed_at: float) -> None:
        self.stats.retries += 1
        delay = entry.failed(self._settings, rate_limited=isinstance(exc, RateLimited))
        if entry.is_deferred:
            self.stats.deferred += 1
        entry.not_before = failed_at + delay
        logger.warning("sender: channel %s: row %s (%s): %s; next try in %g s",
                       entry.row.channel_id, entry.row.id, entry.row.reply_key, exc, delay)
        await self._store.run(self._repos.outbox.mark_retry, entry.row.id,
                              next_attempt_at=self._wall() + delay,
                              error=f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ reactions
    async def _serve_reactions(self, requests: trio.MemoryReceiveChannel[AddReaction]) -> None:
        async with requests:
            async for request in requests:
                await guarded(self.stats, f"reaction on {request.post_id}", self._react, request)

    async def _react(self, request: AddReaction) -> None:
        await send_reaction(self._client, self._bot_user_id, request,
                            timeout_s=self._settings.reaction_timeout_s, stats=self.stats)
