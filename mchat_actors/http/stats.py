"""Counters of the HTTP surface, owned by one app instance (no module-level state).

``HttpStats`` is created by ``create_app`` and read at scrape time by the metrics collector and
the status API. The webhook endpoints (outgoing webhooks and slash commands) get a request
counter by status, an error counter by reason and a latency histogram.
"""

from __future__ import annotations

import bisect
from collections import Counter

import attrs

# Mattermost waits 30 s for an integration; we answer within 4.5 s (webhooks) or 2.5 s (slash).
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 4.5, 5.0, 10.0,
                     30.0)

# Routes whose traffic is counted as webhook traffic, by the endpoint label used in metrics.
WEBHOOK_ENDPOINTS = {"/mchat/webhook/outgoing": "outgoing", "/mchat/slash": "slash"}


@attrs.define
class LatencyHistogram:
    """A Prometheus-style histogram: per-bucket counts, a sum and a count."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS_S
    counts: list[int] = attrs.field()
    sum_s: float = 0.0
    count: int = 0

    @counts.default
    def _zeros(self) -> list[int]:
        return [0] * (len(self.bounds) + 1)  # the last slot is +Inf

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.sum_s += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``(upper bound, cumulative count)`` pairs ending with ``+Inf``."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, n in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


@attrs.define
class HttpStats:
    # (endpoint, HTTP status) for the webhook endpoints
    webhook_requests: Counter[tuple[str, str]] = attrs.Factory(Counter)
    # (endpoint, reason): unauthorized, forbidden, bad_request, too_large, unavailable ...
    webhook_errors: Counter[tuple[str, str]] = attrs.Factory(Counter)
    # (endpoint, outcome): answered, deferred, duplicate ...
    webhook_outcomes: Counter[tuple[str, str]] = attrs.Factory(Counter)
    webhook_latency: dict[str, LatencyHistogram] = attrs.Factory(dict)
    # every response of the surface by (route group, status class)
    responses: Counter[tuple[str, str]] = attrs.Factory(Counter)
    unexpected_errors: int = 0
    response_url_posts: Counter[str] = attrs.Factory(Counter)  # ok | failed

    def observe_webhook(self, endpoint: str, status: int, seconds: float) -> None:
        self.webhook_requests[(endpoint, str(status))] += 1
        self.webhook_latency.setdefault(endpoint, LatencyHistogram()).observe(seconds)
        if status >= 400:
            self.webhook_errors[(endpoint, _reason(status))] += 1


_REASONS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
            422: "invalid", 500: "internal", 503: "unavailable"}


def _reason(status: int) -> str:
    return _REASONS.get(status, f"http_{status}")
