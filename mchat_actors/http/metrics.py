"""``GET /metrics``: Prometheus text exposition, read from the actors' stats at scrape time.

Each app owns one ``CollectorRegistry`` holding one ``RuntimeCollector``; there are no
module-level metric objects. The collector reads the in-memory stats objects synchronously;
the outbox numbers come from the database, so the route reads them first and hands them to
``collect`` through ``scrape`` (one trio thread: nothing runs in between).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Mapping
from typing import Any

import trio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from ..actors.sender import SenderCounters
from . import outbox_admin, safety
from .auth import bearer_credentials, check_admin
from .context import Surface, surface

router = APIRouter(tags=["operations"])

CONNECTION_STATES = ("websocket", "polling", "connecting", "stopped")


def _counter(name: str, doc: str, value: float | None = None,
             labels: tuple[str, ...] = (), samples: Mapping[Any, float] | None = None,
             ) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, value=value, labels=labels if value is None else None)
    for key, n in (samples or {}).items():
        family.add_metric(list(key), n)
    return family


def _gauge(name: str, doc: str, value: float | None = None, labels: tuple[str, ...] = (),
           samples: Mapping[Any, float] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, value=value, labels=labels if value is None else None)
    for key, n in (samples or {}).items():
        family.add_metric(list(key), n)
    return family


class RuntimeCollector(Collector):
    """Turns the runtime's and the surface's stats objects into metric families."""

    def __init__(self, s: Surface) -> None:
        self._s = s
        self._outbox: dict[str, Any] = {"counts": {}, "oldest_pending_age_s": None}

    def scrape(self, registry: CollectorRegistry, outbox: dict[str, Any]) -> bytes:
        self._outbox = outbox
        return generate_latest(registry)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # unchecked collector: families are built at scrape time

    def collect(self) -> Iterator[Metric]:
        yield from self._webhooks()
        yield from self._pipeline()
        yield from self._connection()
        yield from self._chat()
        yield from self._sending()
        yield from safety.metrics(self._s)

    def _webhooks(self) -> Iterator[Metric]:
        hs = self._s.stats
        yield _counter("mchat_webhook_requests", "Webhook and slash requests by status",
                       labels=("endpoint", "status"), samples=hs.webhook_requests)
        yield _counter("mchat_webhook_errors", "Webhook and slash requests refused or failed",
                       labels=("endpoint", "reason"), samples=hs.webhook_errors)
        yield _counter("mchat_webhook_outcomes", "Webhook and slash answers by outcome",
                       labels=("endpoint", "outcome"), samples=hs.webhook_outcomes)
        latency = HistogramMetricFamily("mchat_webhook_latency_seconds",
                                        "Time to answer a webhook or slash request",
                                        labels=["endpoint"])
        for endpoint, hist in sorted(hs.webhook_latency.items()):
            latency.add_metric([endpoint], hist.cumulative(), hist.sum_s)
        yield latency
        yield _counter("mchat_http_responses", "HTTP responses by route group and status class",
                       labels=("group", "status"), samples=hs.responses)
        yield _counter("mchat_http_unexpected_errors", "Unexpected errors answered with 500",
                       hs.unexpected_errors)
        yield _counter("mchat_slash_response_url_posts", "Delayed slash answers posted",
                       labels=("result",), samples={(k,): v for k, v in
                                                    hs.response_url_posts.items()})

    def _pipeline(self) -> Iterator[Metric]:
        rt = self._s.rt
        h = rt.handler.stats
        yield _counter("mchat_messages_processed", "Posts handled, by status",
                       labels=("status",), samples={(k,): v for k, v in h.posts.items()})
        yield _counter("mchat_messages_duplicate", "Posts dropped as already handled",
                       h.duplicates)
        yield _counter("mchat_ai_responses", "Answers produced by the ChatService",
                       h.ai_responses)
        yield _counter("mchat_memory_saved", "Memories extracted and saved", h.memories_saved)
        yield _counter("mchat_replies", "Replies, by how they reach Mattermost",
                       labels=("path",), samples={("outbox",): h.replies_queued,
                                                  ("webhook_response",):
                                                      h.replies_in_webhook_response})
        d, lanes = rt.dispatcher_stats, rt.dispatcher_lanes
        depths = lanes.mailbox_depths()
        yield _gauge("mchat_mailbox_depth", "Events waiting in each channel's mailbox",
                     labels=("channel_id",), samples={(k,): v for k, v in depths.items()})
        yield _gauge("mchat_mailbox_depth_total", "Events waiting in all mailboxes",
                     sum(depths.values()))
        yield _gauge("mchat_channel_lanes", "Channel serializers running", len(depths))
        yield _counter("mchat_dispatcher_events", "Events dispatched", d.events)
        yield _counter("mchat_dispatcher_errors", "Events that failed after retries", d.errors)
        yield _counter("mchat_dispatcher_retries", "Event handling retries", d.retries)
        yield _counter("mchat_events_parked", "Events put in the durable retry queue", d.parked)
        yield _counter("mchat_events_parked_done", "Parked events handled on a later try",
                       d.parked_done)
        yield _gauge("mchat_channels_parked", "Channels waiting behind a parked event",
                     len(lanes.parked_channels()))
        yield _gauge("mchat_channels_behind", "Channels catching up after a full mailbox",
                     len(lanes.behind_channels()))
        yield _counter("mchat_catch_ups", "Catch-up reads of channels that fell behind",
                       d.catch_ups)
        yield _counter("mchat_actor_restarts", "Actor restarts by the supervisor",
                       labels=("actor",),
                       samples={(k,): v for k, v in rt.supervisor_stats.restarts.items()})
        yield _gauge("mchat_uptime_seconds", "Seconds since start",
                     trio.current_time() - rt.started_at)

    def _connection(self) -> Iterator[Metric]:
        rt = self._s.rt
        rs = rt.reconnect_stats
        conn = rs.connection
        states = {(st,): 1.0 if rs.state.mode == st else 0.0 for st in CONNECTION_STATES}
        if rs.state.mode not in CONNECTION_STATES:
            states[(rs.state.mode,)] = 1.0
        yield _gauge("mchat_connection_state", "1 for the current connection state",
                     labels=("state",), samples=states)
        yield _counter("mchat_connect_attempts", "WebSocket connection attempts", rs.attempts)
        yield _counter("mchat_reconnects", "Reconnects after an established connection dropped",
                       rs.reconnects)
        yield _gauge("mchat_connect_failures_in_row", "Failed connects since the last good one",
                     rs.failures_in_row)
        yield _counter("mchat_ws_resumes", "Connections that resumed the old session",
                       conn.resumes)
        yield _counter("mchat_ws_new_connections", "Connections with a new session id",
                       conn.new_connections)
        yield _counter("mchat_backfills", "Backfill sweeps after a lost session",
                       rt.sweeper.stats.backfills)
        yield _counter("mchat_polls", "Polling sweeps", rt.sweeper.stats.polls)
        yield _counter("mchat_ws_events", "WebSocket events by type", labels=("type",),
                       samples={(k,): v for k, v in conn.events.items()})
        yield _counter("mchat_ws_frames", "WebSocket frames read", conn.frames)
        yield _counter("mchat_ws_malformed", "Malformed WebSocket frames skipped",
                       conn.malformed)
        if conn.last_event_at is not None:
            yield _gauge("mchat_last_event_age_seconds", "Seconds since the last event",
                         trio.current_time() - conn.last_event_at)

    def _chat(self) -> Iterator[Metric]:
        st = self._s.rt.invoker.stats
        yield SummaryMetricFamily("mchat_chat_latency_seconds", "ChatService call latency",
                                  count_value=st.calls, sum_value=st.latency_sum_s)
        recent = list(st.latencies_s)
        if len(recent) >= 2:
            q = statistics.quantiles(recent, n=100, method="inclusive")
            yield _gauge("mchat_chat_latency_recent_seconds",
                         "ChatService latency over the last 1000 calls", labels=("quantile",),
                         samples={("0.5",): q[49], ("0.9",): q[89], ("0.99",): q[98]})
        yield _counter("mchat_chat_failures", "ChatService calls that failed", st.failures)
        yield _counter("mchat_chat_timeouts", "ChatService calls that timed out", st.timeouts)

    def _sending(self) -> Iterator[Metric]:
        rt = self._s.rt
        counts = self._outbox["counts"]
        yield _gauge("mchat_outbox_depth", "Outbox rows by status", labels=("status",),
                     samples={(k,): v for k, v in counts.items()})
        oldest = self._outbox["oldest_pending_age_s"]
        yield _gauge("mchat_outbox_oldest_pending_age_seconds",
                     "Age of the oldest pending reply (0 when none)", oldest or 0.0)
        b = rt.bucket.statistics()
        c = rt.client.statistics()
        yield _counter("mchat_rest_requests", "Mattermost REST requests", c.requests)
        yield _counter("mchat_rest_errors", "Mattermost REST errors by kind", labels=("kind",),
                       samples={(k,): v for k, v in c.errors.items()})
        yield _counter("mchat_rest_rate_limited", "REST answers with 429", c.rate_limited)
        yield _counter("mchat_ratelimit_acquired", "Requests let through the token bucket",
                       b.acquired)
        yield _counter("mchat_ratelimit_waits", "Requests that waited for the token bucket",
                       b.waits)
        yield _counter("mchat_ratelimit_wait_seconds", "Time spent waiting for the bucket",
                       b.total_wait_s)
        yield _gauge("mchat_ratelimit_waiting", "Tasks waiting for the bucket now", b.waiting)
        yield _counter("mchat_ratelimit_acquired_by_class",
                       "Requests let through the token bucket by class (reply, question, "
                       "background)", labels=("class",),
                       samples={(k,): v for k, v in b.acquired_by_priority.items()})
        yield _counter("mchat_ratelimit_penalties", "429 penalties applied to the bucket",
                       b.penalties)
        yield _gauge("mchat_ratelimit_rate_per_second", "Configured REST rate", b.rate_per_s)
        sender = rt.sender_stats
        if isinstance(sender, SenderCounters):
            yield _counter("mchat_sender_posts", "Outbox rows posted, or given up on",
                           labels=("result",), samples={("sent",): sender.sent,
                                                        ("failed",): sender.failed})
            yield _counter("mchat_sender_retries", "Transient send failures retried",
                           sender.retries)
            yield from _answer_added(sender)
            yield _counter("mchat_sender_deferrals", "Channel heads put off after retries",
                           sender.deferred)
            yield _gauge("mchat_sender_queued", "Outbox rows queued in the sender",
                         sender.pending)
            yield _counter("mchat_sender_reactions", "Reactions by result", labels=("result",),
                           samples={("sent",): sender.reactions_sent,
                                    ("failed",): sender.reactions_failed,
                                    ("dropped",): sender.reactions_dropped})


def new_registry(s: Surface) -> tuple[CollectorRegistry, RuntimeCollector]:
    registry = CollectorRegistry(auto_describe=False)
    collector = RuntimeCollector(s)
    registry.register(collector)
    return registry, collector


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request, s: Surface = Depends(surface)) -> Response:  # noqa: B008
    if s.rt.config.http.metrics_auth == "admin":  # MCHAT_METRICS_AUTH
        check_admin(request, s, await bearer_credentials(request), kind="metrics")
    outbox = await s.rt.store.run(outbox_admin.overview)
    registry, collector = s.metrics
    return Response(collector.scrape(registry, outbox), media_type=CONTENT_TYPE_LATEST)


def _answer_added(sender: SenderCounters) -> Iterator[Metric]:
    """What the runtime adds to a live answer: from the question's WebSocket frame reaching
    this process to its reply's POST written to the server, less the ChatService's own time."""
    hist = sender.answer_added_s
    family = HistogramMetricFamily("mchat_answer_added_seconds",
                                   "Latency the runtime added to live answers (frame in to "
                                   "reply POST written, less the ChatService)")
    family.add_metric([], hist.cumulative(), hist.sum_s)
    yield family
    recent = list(sender.answer_added_recent_s)
    if len(recent) >= 2:
        q = statistics.quantiles(recent, n=100, method="inclusive")
        yield _gauge("mchat_answer_added_recent_seconds",
                     "Latency the runtime added over the last 1000 live answers",
                     labels=("quantile",),
                     samples={("0.5",): q[49], ("0.9",): q[89], ("0.99",): q[98]})
