"""The safety numbers of the running service, for the status API, the admin page and /metrics.

Loop guard (answers refused to other bots and webhooks, answers capped per channel), TLS
verification, failed and throttled authentications. Read from the live stats objects at call
time; nothing here holds a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..loopguard import LoopGuard
from .context import Surface


def _guard(s: Surface) -> LoopGuard | None:
    guard = getattr(s.rt.handler, "guard", None)
    return guard if isinstance(guard, LoopGuard) else None


def status(s: Surface) -> dict[str, Any]:
    guard = _guard(s)
    throttle = s.auth_throttle
    out: dict[str, Any] = {
        "tls_verify": s.rt.config.mattermost.verify_ssl,
        "bad_inputs": bad_inputs(s),
        "auth": {"failures": dict(throttle.failures), "throttled": dict(throttle.throttled),
                 "blocked_addresses": throttle.blocked_addresses()},
    }
    if guard is not None:
        out["loop_guard"] = {
            "bot_posts_unanswered": guard.stats.bot_posts_unanswered,
            "answers_capped": guard.stats.total_capped(),
            "answers_capped_by_channel": dict(guard.stats.capped),
            "max_answers_per_min": guard.max_per_min,
            "answer_bots": sorted(guard.answer_bots),
        }
    return out


def bad_inputs(s: Surface) -> dict[str, int]:
    """Bad input seen at each boundary, skipped and counted (nothing else was lost)."""
    rt = s.rt
    webhook = s.stats.webhook_errors
    bad_http = ("bad_request", "invalid", "unsupported_media_type", "too_large")
    sweeper_stats = getattr(rt.sweeper, "stats", None)
    return {
        "websocket_frame": rt.reconnect_stats.connection.malformed,
        "rest_answer": int(rt.client.statistics().errors.get("malformed", 0)),
        "rest_entry": int(getattr(sweeper_stats, "malformed", 0)),
        "outgoing_webhook": sum(n for (ep, why), n in webhook.items()
                                if ep == "outgoing" and why in bad_http),
        "slash": sum(n for (ep, why), n in webhook.items() if ep == "slash" and why in bad_http),
    }


def metrics(s: Surface) -> Iterator[Metric]:
    bad = CounterMetricFamily("mchat_bad_inputs", "Bad input skipped and counted, by boundary",
                              labels=["boundary"])
    for boundary, n in bad_inputs(s).items():
        bad.add_metric([boundary], n)
    yield bad
    yield GaugeMetricFamily("mchat_tls_verify", "1 when TLS certificates are verified",
                            value=1.0 if s.rt.config.mattermost.verify_ssl else 0.0)
    failures = CounterMetricFamily("mchat_auth_failures", "Failed authentications by kind",
                                   labels=["kind"])
    for kind, n in sorted(s.auth_throttle.failures.items()):
        failures.add_metric([kind], n)
    yield failures
    throttled = CounterMetricFamily("mchat_auth_throttled",
                                    "Requests refused 429 after repeated failed auths",
                                    labels=["kind"])
    for kind, n in sorted(s.auth_throttle.throttled.items()):
        throttled.add_metric([kind], n)
    yield throttled
    guard = _guard(s)
    if guard is None:
        return
    yield CounterMetricFamily("mchat_loop_guard_bot_posts_unanswered",
                              "Posts by other bots or webhooks not answered",
                              value=guard.stats.bot_posts_unanswered)
    capped = CounterMetricFamily("mchat_loop_guard_answers_capped",
                                 "Answers refused by the per-channel cap",
                                 labels=["channel_id"])
    for channel_id, n in sorted(guard.stats.capped.items()):
        capped.add_metric([channel_id], n)
    yield capped
