"""Counters of the HTTP surface, owned by one app instance (no module-level state).

``HttpStats`` is created by ``create_app`` and read at scrape time by the metrics collector and
the status API. The webhook endpoints (outgoing webhooks and slash commands) get a request
counter by status, an error counter by reason and a latency histogram.
"""

from __future__ import annotations

from collections import Counter

import attrs

from ..histogram import LATENCY_BUCKETS_S, LatencyHistogram

__all__ = ["LATENCY_BUCKETS_S", "HttpStats", "LatencyHistogram", "WEBHOOK_ENDPOINTS"]

# Routes whose traffic is counted as webhook traffic, by the endpoint label used in metrics.
WEBHOOK_ENDPOINTS = {"/mchat/webhook/outgoing": "outgoing", "/mchat/slash": "slash"}


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
