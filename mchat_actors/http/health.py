"""``GET /mchat/health``: is the service able to do its job? 200 when ready, 503 when not.

Not ready (503, ``{"status": "unavailable", "reasons": [...]}``) when any rule below holds:

1. the database does not accept a write (``Store.is_writable``);
2. the connection is connecting, reconnecting or stopped (not a WebSocket, not polling, not
   ``webhook``: webhook-only mode has no connection, the HTTP surface is its intake) for more
   than ``connection_grace_s`` (60 s) — counted from start-up at the earliest, so a
   fresh start is not reported as down;
3. in polling mode, no sweep finished for ``max(5 x MCHAT_POLL_INTERVAL, 30 s)``;
4. the oldest pending outbox reply is older than ``outbox_stale_s`` (10 minutes): replies are
   stuck (Mattermost refuses them, or the sender is stalled);
5. an event has waited in the retry queue for more than ``outbox_stale_s``: posts cannot be
   stored (the ChatService or the database fails; ``/api/v1/mchat/retry-queue`` says why).

While the service starts and Mattermost is unreachable, every request (this one too) gets 503
from the HTTP gate with the reason (``http.server.Gate``).

Both answers carry the same facts: connection state and mode, seconds since the last event,
whether the database is writable, the outbox depth and its oldest pending age.
"""

from __future__ import annotations

from typing import Any

import trio
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from .. import retry_queue
from ..errors import StoreError
from ..tls import insecure_warning
from . import outbox_admin
from .context import HealthRules, Surface, surface

router = APIRouter(tags=["operations"])


def assess(facts: dict[str, Any], rules: HealthRules, poll_interval_s: float) -> list[str]:
    """The reasons the service is not ready (empty: ready). Pure, for tests."""
    reasons: list[str] = []
    if not facts["database"]["writable"]:
        reasons.append("database is not writable")
    conn = facts["connection"]
    if conn["state"] not in ("websocket", "polling", "webhook") and (
            conn["state_age_s"] > rules.connection_grace_s):
        reasons.append(f"Mattermost connection {conn['state']} for {conn['state_age_s']:.0f} s")
        if conn.get("certificate_problem"):
            reasons.append("the Mattermost server's TLS certificate is not trusted "
                           "(MCHAT_CA_BUNDLE?)")
    stall_s = max(rules.poll_stall_intervals * poll_interval_s, rules.min_poll_stall_s)
    if conn["state"] == "polling" and conn["since_sweep_s"] > stall_s:
        reasons.append(f"polling: no sweep for {conn['since_sweep_s']:.0f} s")
    oldest = facts["outbox"]["oldest_pending_age_s"]
    if oldest is not None and oldest > rules.outbox_stale_s:
        reasons.append(f"outbox: oldest pending reply is {oldest:.0f} s old")
    parked = facts.get("retry_queue", {}).get("oldest_pending_age_s")
    if parked is not None and parked > rules.outbox_stale_s:
        reasons.append(f"retry queue: an event has waited {parked:.0f} s to be stored")
    return reasons


async def gather(s: Surface) -> dict[str, Any]:
    rt = s.rt
    now = trio.current_time()
    state = rt.reconnect_stats.state
    since = max(state.since, rt.started_at)  # the default state predates the start
    last_sweep = rt.sweeper.stats.last_sweep_at
    last_event = rt.reconnect_stats.connection.last_event_at
    writable = await rt.store.is_writable()
    box: dict[str, Any] = {"counts": {}, "oldest_pending_age_s": None}
    parked: dict[str, Any] = {"pending": None, "channels": None, "oldest_pending_age_s": None}
    if writable:  # else unknown: health answers now instead of waiting on the database
        try:
            box = await rt.store.run(outbox_admin.overview)
            parked = await rt.store.run(retry_queue.health)
        except StoreError:  # gone since the probe (a PostgreSQL server restarting)
            writable = False
    return {
        "connection": {
            "state": state.mode,
            "mode": "webhook-only" if rt.directory is not None else rt.config.mattermost.mode,
            "state_age_s": round(now - since, 3),
            "last_event_age_s": None if last_event is None else round(now - last_event, 3),
            "since_sweep_s": round(now - max(since, last_sweep or since), 3),
            "certificate_problem": "TLS certificate" in rt.reconnect_stats.last_error,
        },
        "database": {"writable": writable,
                     "backend": rt.config.database_backend,
                     "where": rt.config.database_display},
        "tls": {"verify": rt.config.mattermost.verify_ssl,
                "warning": insecure_warning(rt.config.mattermost)},
        "outbox": {"pending": box["counts"].get("pending", 0 if writable else None),
                   "failed": box["counts"].get("failed", 0 if writable else None),
                   "oldest_pending_age_s": box["oldest_pending_age_s"]},
        "retry_queue": parked,
        "channels_behind": len(rt.dispatcher_lanes.behind_channels()),
        # MCHAT_REPLICAS=on: this replica's id, leases held, the database (redacted)
        "replica": None if rt.replica is None else rt.replica.describe(),
    }


@router.get("/mchat/health", summary="Readiness: 200 ready, 503 with reasons",
            responses={503: {"description": "Not ready; ``reasons`` says why"}})
async def health(s: Surface = Depends(surface)) -> JSONResponse:  # noqa: B008
    facts = await gather(s)
    reasons = assess(facts, s.health_rules, s.rt.config.mattermost.poll_interval_s)
    if reasons:
        return JSONResponse({"status": "unavailable", "reasons": reasons, **facts},
                            status_code=503)
    return JSONResponse({"status": "ok", **facts})
