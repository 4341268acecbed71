"""What every route of one app instance shares: the runtime, the counters, the I/O it owns.

``Surface`` is created by ``create_app`` and stored on ``app.state.surface``; routes reach it
through the ``surface`` dependency. Nothing here is module-level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import httpx
import trio
from fastapi import Request

from .stats import HttpStats
from .throttle import AuthThrottle

if TYPE_CHECKING:
    from ..app import Runtime


@attrs.frozen(kw_only=True)
class HealthRules:
    """Thresholds of ``GET /mchat/health`` (see ``health``)."""

    connection_grace_s: float = 60.0
    min_poll_stall_s: float = 30.0
    poll_stall_intervals: float = 5.0
    outbox_stale_s: float = 600.0


@attrs.define(eq=False)
class Surface:
    """The state of one HTTP surface.

    ``background``: a nursery that outlives single requests (owned by ``serve_http``), where
    slash commands that take longer than the answer window finish and post to ``response_url``.
    Without it (some unit tests) a slow slash command is answered inline.
    ``http_client``: the one pooled client used for ``response_url`` posts.
    """

    rt: Runtime
    stats: HttpStats = attrs.Factory(HttpStats)
    background: trio.Nursery | None = None
    http_client: httpx.AsyncClient | None = None
    slash_answer_within_s: float = 2.5
    slash_max_wait_s: float = 25.0  # inline wait when there is no response_url to defer to
    health_rules: HealthRules = HealthRules()
    metrics: Any = None  # (CollectorRegistry, RuntimeCollector), set by create_app
    static: dict[str, bytes] = attrs.Factory(dict)  # admin page files, read once
    auth_throttle: AuthThrottle = attrs.Factory(AuthThrottle)  # failed auths per address


def surface(request: Request) -> Surface:
    """FastAPI dependency: the app's ``Surface``."""
    found: Surface = request.app.state.surface
    return found
