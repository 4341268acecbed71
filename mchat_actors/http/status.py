"""A JSON snapshot of the running service, read from the actors' stats objects at call time.

Used by ``GET /api/v1/mchat/status`` (and so the admin page). Every value is a number, a string
or a small mapping; nothing here can hold a secret (the config goes through ``describe``).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, cast

import attrs
import trio

from ..config import describe
from ..tls import insecure_warning
from . import outbox_admin, safety
from .context import Surface


async def collect(s: Surface) -> dict[str, Any]:
    rt = s.rt
    now = trio.current_time()
    return {
        "time": time.time(),
        "uptime_s": round(now - rt.started_at, 3),
        "connection": connection(s),
        "counters": counters(s),
        "chat": chat(s),
        "dispatcher": {
            "events": rt.dispatcher_stats.events,
            "lanes": len(rt.dispatcher_lanes),
            "lanes_started": rt.dispatcher_stats.lanes_started,
            "lanes_reaped": rt.dispatcher_stats.lanes_reaped,
            "errors": rt.dispatcher_stats.errors,
            "retries": rt.dispatcher_stats.retries,
            "mailbox_depths": rt.dispatcher_lanes.mailbox_depths(),
        },
        "rate_limit": rate_limit(s),
        "outbox": await rt.store.run(outbox_admin.overview),
        "restarts": dict(rt.supervisor_stats.restarts),
        "sender": _sender(rt.sender_stats),
        "http": {
            "webhook_requests": _keyed(s.stats.webhook_requests),
            "webhook_outcomes": _keyed(s.stats.webhook_outcomes),
            "unexpected_errors": s.stats.unexpected_errors,
        },
        "config": describe(rt.config),
        "replica": None if rt.replica is None else rt.replica.describe(),
        "warnings": warnings(s),
        "safety": safety.status(s),
    }


def warnings(s: Surface) -> list[str]:
    """Settings an operator must know are unsafe (shown at the top of the admin page)."""
    found = [insecure_warning(s.rt.config.mattermost)]
    return [w for w in found if w]


def connection(s: Surface) -> dict[str, Any]:
    rs = s.rt.reconnect_stats
    conn = rs.connection
    now = trio.current_time()
    sweeps = s.rt.sweeper.stats
    return {
        "state": rs.state.mode,
        "configured_mode": ("webhook-only" if s.rt.directory is not None
                            else s.rt.config.mattermost.mode),
        "connection_id": rs.state.connection_id,
        "state_age_s": round(now - max(rs.state.since, s.rt.started_at), 3),
        "attempts": rs.attempts,
        "reconnects": rs.reconnects,
        "failures_in_row": rs.failures_in_row,
        "last_error": rs.last_error,
        "resumes": conn.resumes,
        "new_connections": conn.new_connections,
        "frames": conn.frames,
        "malformed": conn.malformed,
        "events": dict(conn.events),
        "last_event_age_s": None if conn.last_event_at is None
        else round(now - conn.last_event_at, 3),
        "backfills": sweeps.backfills,
        "polls": sweeps.polls,
        "last_sweep_age_s": None if sweeps.last_sweep_at is None
        else round(now - sweeps.last_sweep_at, 3),
    }


def counters(s: Surface) -> dict[str, Any]:
    hs = s.rt.handler.stats
    return {
        "messages_processed": sum(hs.posts.values()),
        "messages_by_status": dict(hs.posts),
        "duplicates": hs.duplicates,
        "replies": hs.replies_queued + hs.replies_in_webhook_response,
        "replies_queued": hs.replies_queued,
        "replies_in_webhook_response": hs.replies_in_webhook_response,
        "ai_responses": hs.ai_responses,
        "memories_saved": hs.memories_saved,
        "edits": hs.edits,
        "deletes": hs.deletes,
    }


def chat(s: Surface) -> dict[str, Any]:
    st = s.rt.invoker.stats
    recent = list(st.latencies_s)
    return {
        "calls": st.calls,
        "failures": st.failures,
        "timeouts": st.timeouts,
        "latency_sum_s": round(st.latency_sum_s, 6),
        "latency_p50_s": round(statistics.median(recent), 6) if recent else None,
        "latency_max_s": round(max(recent), 6) if recent else None,
    }


def rate_limit(s: Surface) -> dict[str, Any]:
    b = s.rt.bucket.statistics()
    c = s.rt.client.statistics()
    return {
        "rate_per_s": b.rate_per_s,
        "acquired": b.acquired,
        "waits": b.waits,
        "total_wait_s": round(b.total_wait_s, 6),
        "waiting": b.waiting,
        "penalties": b.penalties,
        "blocked": b.blocked_until is not None,
        "server_limit": b.server_limit,
        "server_remaining": b.server_remaining,
        "rest_requests": c.requests,
        "rest_errors": dict(c.errors),
        "rest_429s": c.rate_limited,
    }


def _sender(stats: object) -> dict[str, Any]:
    """The sender's live counters (``SenderCounters``), when a sender runs."""
    if stats is None or not attrs.has(type(stats)):
        return {}
    fields = attrs.asdict(cast("attrs.AttrsInstance", stats))
    return {k: v for k, v in fields.items() if isinstance(v, int | float)}


def _keyed(counter: Any) -> dict[str, int]:
    return {"/".join(key): n for key, n in sorted(counter.items())}
