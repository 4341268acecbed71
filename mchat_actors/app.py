"""Builds every channel, opens the root nursery and starts the actors downstream-first.

Start order: HTTP listener (answering 503 "starting" while the ChatService loads Kiwi and
rebuilds its search index) -> store -> ChatService -> REST client -> users/me (the bot's
identity; a rejected token is fatal here, an unreachable server is retried with backoff while
/mchat/health says why) -> sender -> dispatcher (serializers, mapper,
invoker) -> HTTP app opened -> reconnect supervisor (connection, backfill, polling) -> auto-join.
No producer runs before its consumer is ready.

Shutdown (``Runtime.request_shutdown()``, called on SIGINT/SIGTERM): intake stops first (the
connection and the poller are cancelled), the events channel closes, the serializers finish the
events already in their mailboxes, the replies channel closes, and the sender sends what it can.
A hard deadline (``shutdown_grace_s``) cancels whatever is left; nothing is lost, because
unfinished posts were not recorded as handled (the next start backfills them) and unsent
replies stay in the outbox.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ._groups import collapse_groups
from .actors import dispatcher, reconnect, sender, summaries
from .actors.autojoin import AutoJoiner
from .actors.handler import Handler
from .actors.invoker import Invoker
from .actors.mapper import Mapper, MembershipCheck
from .actors.sweeper import Sweeper
from .chat.protocol import ChatService, SharedStorage
from .chat_service import open_chat_service as open_chat_service
from .config import Config, MattermostConfig
from .errors import MattermostCertificateError, MattermostUnavailable, RateLimited
from .mattermost.incoming_webhook import IncomingWebhookPoster, open_incoming_webhook
from .mattermost.payload_directory import PayloadDirectory
from .mattermost.rest import MattermostClient, open_mattermost_client
from .messages import ConnectionState, InboundEvent, OutboundRequest
from .ports import Reactions
from .ratelimit import TokenBucket
from .replica import Replica, budget_for, build_replica
from .storage_backend import open_runtime_store, repositories_for, retry_queue_for
from .store import Store
from .supervision import FATAL, RestartPolicy, SupervisorStats, backoff_delay, supervise
from .tls import client_ssl_context, log_tls_settings
from .trigger import BotIdentity
from .webhook_replies import WebhookReplies

if TYPE_CHECKING:
    from .http.server import Gate

logger = logging.getLogger(__name__)


@attrs.define
class Runtime:
    """The running service, as the HTTP surface and the tests see it."""

    config: Config
    store: Store
    chat: ChatService
    client: MattermostClient
    bucket: TokenBucket
    bot: BotIdentity
    mapper: Mapper
    invoker: Invoker
    handler: Handler
    sweeper: Sweeper
    events: trio.MemorySendChannel[InboundEvent]  # HTTP sends here; closed on shutdown
    replies: trio.MemorySendChannel[OutboundRequest]
    webhook_replies: WebhookReplies  # outgoing-webhook requests waiting for their reply
    reconnect_stats: reconnect.ReconnectStats = attrs.Factory(reconnect.ReconnectStats)
    dispatcher_stats: dispatcher.DispatcherStats = attrs.Factory(dispatcher.DispatcherStats)
    dispatcher_lanes: dispatcher.Lanes = attrs.Factory(dispatcher.Lanes)
    supervisor_stats: SupervisorStats = attrs.Factory(SupervisorStats)
    summary_stats: summaries.SummaryStats = attrs.Factory(summaries.SummaryStats)
    sender: sender.Sender | None = None  # built with the rest (``_build``)
    sender_stats: object = None
    directory: PayloadDirectory | None = None  # webhook-only mode: users/channels of payloads
    replica: Replica | None = None  # MCHAT_REPLICAS=on: channels owned by leases
    started_at: float = 0.0
    http_url: str = ""  # where the HTTP surface listens (its real port when configured as 0)
    ssl_context: ssl.SSLContext | None = None  # towards Mattermost, built once at start
    _intake: trio.CancelScope = attrs.Factory(trio.CancelScope)
    _stopping: trio.Event = attrs.Factory(trio.Event)

    def request_shutdown(self) -> None:
        """Stop intake and drain (see the module docstring). Idempotent."""
        if not self._stopping.is_set():
            logger.info("app: shutdown requested")
            self._stopping.set()
            self._intake.cancel()


async def run(
    config: Config,
    *,
    chat: ChatService | None = None,
    startup_quiet_s: float = 0.0,
    task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the service until ``request_shutdown()`` (or cancellation).

    ``startup_quiet_s``: no REST request before this many seconds (``serve`` passes one rate
    window, so a restarted process never shares a window with the one it replaces).

    Raises:
        MattermostAuthError: the token is rejected (at start, or later by users/me).
        SupervisionError: an actor crashed more often than its restart policy allows.
    """
    from .http.server import Gate, serve_gate  # imported here: FastAPI loads only when serving

    with collapse_groups(fatal=FATAL):
        log_tls_settings(config.mattermost)
        tls_context = client_ssl_context(config.mattermost)  # REST, WebSockets, response_url
        async with trio.open_nursery() as http:
            # The listener first: while the chat service loads Kiwi and may rebuild the search
            # index (seconds to minutes), /mchat/health answers 503 "starting", not a refused
            # connection. It stops when _run is done (``early.stop``).
            gate = Gate()
            gate.reason = "starting: loading the language model and the search index"
            url = await http.start(partial(serve_gate, config.http, gate,
                                           ssl_context=tls_context))
            early = _Serving(gate, url or "", tls_context, http.cancel_scope)
            async with open_runtime_store(config) as store:
                if chat is None:
                    async with open_chat_service(config, store) as chat_service:
                        gate.reason = "starting"
                        await _run(config, store, chat_service, startup_quiet_s, task_status,
                                   early)
                else:
                    gate.reason = "starting"
                    await _run(config, store, chat, startup_quiet_s, task_status, early)
            early.stop()


@attrs.frozen
class _Serving:
    """The HTTP listener ``run`` starts before everything else, and how to stop it."""

    gate: Gate
    url: str
    tls_context: ssl.SSLContext | None
    scope: trio.CancelScope

    def stop(self) -> None:
        self.scope.cancel()


WEBHOOK_ONLY_LIMITS = (
    "app: webhook-only mode (MCHAT_INCOMING_WEBHOOK_URL without MCHAT_TOKEN): questions come "
    "only from outgoing webhooks (public channels) and slash commands; answers go through the "
    "incoming webhook as top-level posts. It cannot backfill history, see or answer DMs, "
    "edit or delete its answers, react, or read a channel back (an answer in flight during a "
    "crash may be posted twice). A bot account (MCHAT_TOKEN) lifts these limits.")


@asynccontextmanager
async def _open_webhook_poster(config: Config, store: Store, bucket: TokenBucket,
                               directory: PayloadDirectory, ssl_context: ssl.SSLContext | None,
                               ) -> AsyncIterator[IncomingWebhookPoster | None]:
    """The incoming-webhook transport in webhook-only mode, else None."""
    if not config.mattermost.webhook_only:
        yield None
        return
    from . import mapping

    async def lookup(channel_id: str) -> dict[str, object] | None:
        row = await store.run(mapping.get_channel, channel_id)
        latest = directory.channel_name(channel_id)  # the latest payload's name wins
        if row is not None and latest:
            row = {**row, "mchat_channel_name": latest}
        return row

    async with open_incoming_webhook(config.mattermost, bucket=bucket, channel_lookup=lookup,
                                     ssl_context=ssl_context) as poster:
        yield poster


async def _run(config: Config, store: Store, chat: ChatService, startup_quiet_s: float,
               task_status: trio.TaskStatus[Runtime], early: _Serving) -> None:
    mm = config.mattermost
    # 50 ms of margin: a request's token is taken before its connection is made, so arrivals
    # at the server jitter; the server counts arrivals (measured by bench/chaos_soak.py)
    replica_id, budget, bucket = budget_for(config, store, margin_s=0.05)
    bucket.hold_off(startup_quiet_s)
    payloads = PayloadDirectory()
    tls_context = early.tls_context  # built once: REST and every WebSocket connect
    async with open_mattermost_client(mm, bucket=bucket, ssl_context=tls_context) as client, \
            _open_webhook_poster(config, store, bucket, payloads, tls_context) as poster:
        gate, http_url = early.gate, early.url
        with trio.CancelScope() as hard_stop:
            async with trio.open_nursery() as root:
                if budget is not None:  # replicas: this one's shares of the token's budget
                    policy = RestartPolicy(max_restarts=config.max_restarts,
                                           within_s=config.restart_window_s)
                    await root.start(partial(supervise, "budget", partial(budget.run, bucket),
                                             policy))
                if poster is not None:
                    bot = BotIdentity(user_id="", username=mm.bot_name or "ai",
                                      respond_to_all_dm=mm.respond_to_all_dm)
                    logger.warning(WEBHOOK_ONLY_LIMITS)
                else:
                    me = await _identify(client, mm, gate)
                    bot = BotIdentity(user_id=str(me["id"]),
                                      username=str(me.get("username") or ""),
                                      extra_names=(mm.bot_name,) if mm.bot_name else (),
                                      respond_to_all_dm=mm.respond_to_all_dm)
                    logger.info("app: running as @%s (%s), mode %s", bot.username, bot.user_id,
                                mm.mode)
                directory = payloads if poster is not None else None
                rt, events_recv, replies_recv = _build(config, store, chat, client, bucket, bot,
                                                       directory=directory,
                                                       replica=build_replica(
                                                           config, store, replica_id, budget),
                                                       ssl_context=tls_context,
                                                       transport=poster,
                                                       http_url=http_url or "")
                await _run_pipeline(rt, events_recv, replies_recv, root, gate, hard_stop,
                                    task_status)
                early.stop()  # pipeline drained: stop the HTTP surface
                root.cancel_scope.cancel()
        if hard_stop.cancelled_caught:
            logger.warning("app: shutdown grace of %g s ran out; unsent replies stay in the "
                           "outbox", config.shutdown_grace_s)


async def _identify(client: MattermostClient, mm: MattermostConfig,
                    gate: Gate) -> Mapping[str, Any]:
    """``users/me``, tried until the server answers: an unreachable server at start-up (a
    data-centre restart) is waited for with backoff, ``/mchat/health`` saying why meanwhile.

    Raises:
        MattermostAuthError: the token is rejected (fatal).
        MattermostCertificateError: the server's certificate is not trusted (fatal at start).
    """
    attempt = 0
    while True:
        try:
            me: Mapping[str, Any] = await client.get_me()
            return me
        except MattermostCertificateError:
            raise  # not an outage: nobody trusts the server until MCHAT_CA_BUNDLE is fixed
        except (MattermostUnavailable, RateLimited) as exc:
            attempt += 1
            delay = backoff_delay(attempt, initial_s=mm.backoff_initial_s,
                                  max_s=mm.backoff_max_s)
            gate.reason = f"Mattermost unreachable at start-up ({attempt} tries): {exc}"
            logger.warning("app: %s; next try in %.1f s", gate.reason, delay)
            await trio.sleep(max(delay, 0.05))


def _build(config: Config, store: Store, chat: ChatService, client: MattermostClient,
           bucket: TokenBucket, bot: BotIdentity, *, directory: PayloadDirectory | None,
           replica: Replica | None = None,
           ssl_context: ssl.SSLContext | None, transport: IncomingWebhookPoster | None = None,
           http_url: str = "") -> tuple[
               Runtime, trio.MemoryReceiveChannel[InboundEvent],
               trio.MemoryReceiveChannel[OutboundRequest]]:
    mm = config.mattermost
    events_send, events_recv = trio.open_memory_channel[InboundEvent](config.queues.events)
    replies_send, replies_recv = trio.open_memory_channel[OutboundRequest](config.queues.replies)
    # replicas: the writes acting on a channel fenced by its lease (``Replica.repositories``)
    repos = repositories_for(store) if replica is None else replica.repositories()
    mapper = Mapper(store=store, rest=directory or client, chat=chat, bot_user_id=bot.user_id,
                    rest_in=None if directory else client.with_priority,
                    timeout_s=config.chat.timeout_s, repos=repos)
    invoker = Invoker(chat=chat, timeout_s=config.chat.timeout_s,
                      limiter=trio.CapacityLimiter(config.queues.max_concurrent_chats),
                      store_limiter=trio.CapacityLimiter(config.queues.max_concurrent_stores),
                      reactions=Reactions(replies_send))
    webhook_replies = WebhookReplies()
    handler = Handler(cfg=mm, store=store, mapper=mapper, invoker=invoker,
                      webhook_replies=webhook_replies,
                      replies=replies_send, bot=bot,
                      shared_chat=chat if isinstance(chat, SharedStorage) else None,
                      repos=repos)
    sweeper = Sweeper(rest=client, store=store, events=events_send.clone(),
                      after_sweep=MembershipCheck(mapper), repos=repos,
                      owns=None if replica is None else replica.ownership.owns)
    snd = sender.Sender(mm, store=store, client=client, bot_user_id=bot.user_id,
                        transport=transport, repos=repos,
                        **({} if replica is None else replica.sender_options()))
    rt = Runtime(config=config, store=store, chat=chat, client=client, bucket=bucket,
                 bot=bot, mapper=mapper, invoker=invoker, handler=handler, sweeper=sweeper,
                 events=events_send, replies=replies_send, webhook_replies=webhook_replies,
                 started_at=trio.current_time(), sender=snd, sender_stats=snd.stats,
                 ssl_context=ssl_context, directory=directory, http_url=http_url,
                 replica=replica)
    return rt, events_recv, replies_recv


async def _run_pipeline(rt: Runtime, events_recv: trio.MemoryReceiveChannel[InboundEvent],
                        replies_recv: trio.MemoryReceiveChannel[OutboundRequest],
                        root: trio.Nursery, gate: Gate, hard_stop: trio.CancelScope,
                        task_status: trio.TaskStatus[Runtime]) -> None:
    config = rt.config
    policy = RestartPolicy(max_restarts=config.max_restarts, within_s=config.restart_window_s)
    assert rt.sender is not None
    async with trio.open_nursery() as pipeline:
        await pipeline.start(partial(supervise, "sender", partial(rt.sender.run, replies_recv),
                                     policy, stats=rt.supervisor_stats))
        if rt.replica is not None:  # only the channels this replica owns go on
            owned_send, owned_recv = trio.open_memory_channel[InboundEvent](0)
            pipeline.start_soon(rt.replica.filter_events, events_recv, owned_send)
            events_recv = owned_recv
        await pipeline.start(_dispatcher_task, config, events_recv, rt.handler, rt)
        gate.open(rt)
        root.start_soon(_intake_task, rt, policy)
        task_status.started(rt)
        await rt._stopping.wait()
        # intake is cancelled: drain the pipeline under the grace deadline
        hard_stop.deadline = trio.current_time() + config.shutdown_grace_s
        await rt.events.aclose()
        await rt.sweeper.events.aclose()


async def _dispatcher_task(config: Config, inbox: trio.MemoryReceiveChannel[InboundEvent],
                           handler: Handler, rt: Runtime,
                           task_status: trio.TaskStatus[None]) -> None:
    await dispatcher.run(config.queues, inbox=inbox, handle=handler, stats=rt.dispatcher_stats,
                         retry_queue=retry_queue_for(rt.store), catch_up=rt.sweeper.catch_up,
                         handle_batch=handler.store_posts, lanes=rt.dispatcher_lanes,
                         is_question=handler.is_question, task_status=task_status)
    await rt.replies.aclose()  # every serializer finished: the sender drains and returns


WEBHOOK_REPLAY_EVERY_S = 30.0


async def _replay_webhooks(rt: Runtime) -> None:
    """Webhook-only mode: queue the kept webhook posts not handled yet: all of them at start
    (a crash between the 200 and the handling), then those older than a period."""
    from .http.webhooks import replay_kept

    received_before = time.time()
    while True:
        await replay_kept(rt, received_before=received_before)
        await trio.sleep(WEBHOOK_REPLAY_EVERY_S)
        received_before = time.time() - WEBHOOK_REPLAY_EVERY_S


async def _intake_task(rt: Runtime, policy: RestartPolicy) -> None:
    with rt._intake:
        async with trio.open_nursery() as n:
            if rt.replica is not None:  # leases first: the first backfill reads owned channels
                await n.start(partial(supervise, "replica",
                                      partial(rt.replica.run, rt.store, rt.sweeper,
                                              repositories_for(rt.store)),
                                      policy, stats=rt.supervisor_stats))
            every = rt.config.chat.summary_every_hours
            if rt.directory is not None:  # webhook-only: the HTTP surface is the only intake
                rt.reconnect_stats.state = ConnectionState(mode="webhook",
                                                           since=trio.current_time())
                if every:
                    n.start_soon(partial(summaries.run, rt.chat, rt.store, rt.replies,
                                         every_hours=every, stats=rt.summary_stats,
                                         max_chars=rt.config.mattermost.max_post_chars,
                                     repos=repositories_for(rt.store)))
                n.start_soon(_replay_webhooks, rt)
                return
            joiner = AutoJoiner(rt.config.mattermost, rest=rt.client, bot_user_id=rt.bot.user_id)
            await joiner.join_configured()
            n.start_soon(joiner.watch)
            if every:
                n.start_soon(partial(summaries.run, rt.chat, rt.store, rt.replies,
                                     every_hours=every, stats=rt.summary_stats,
                                     max_chars=rt.config.mattermost.max_post_chars,
                                     repos=repositories_for(rt.store)))

            control = reconnect.ReconnectControl()  # the resume handle outlives restarts

            async def connection() -> None:
                await reconnect.run(rt.config.mattermost, rest=rt.client, sweeper=rt.sweeper,
                                    events=rt.sweeper.events, bot_user_id=rt.bot.user_id,
                                    stats=rt.reconnect_stats, control=control,
                                    bucket=rt.bucket,
                                    ssl_context=rt.ssl_context,
                                    verify_every_s=reconnect.VERIFY_EVERY_S)

            n.start_soon(partial(supervise, "reconnect", connection, policy,
                                 stats=rt.supervisor_stats))
