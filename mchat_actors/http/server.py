"""``serve_http(rt)``: the HTTP surface on hypercorn's trio worker, inside the root nursery.

It owns what outlives single requests: the background nursery (slash commands answered late
through ``response_url``) and the one pooled ``httpx.AsyncClient`` for those posts. It reports
``started(url)`` (e.g. ``"http://127.0.0.1:40123"``, useful with port 0) once the socket
listens, and stops when cancelled; background work is cancelled with it.
"""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING

import httpx
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from .app import create_app, create_metrics_app

if TYPE_CHECKING:
    from ..app import Runtime

logger = logging.getLogger(__name__)

RESPONSE_URL_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def hypercorn_config(listen: str) -> HypercornConfig:
    hc = HypercornConfig()
    hc.bind = [listen]
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.graceful_timeout = 1.0
    hc.include_server_header = False
    hc.keep_alive_timeout = 30.0
    return hc


async def serve_http(rt: Runtime, *,
                     task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled.

    Cancellation: the listener, open requests and unfinished slash commands are cancelled.
    """
    verify: ssl.SSLContext | bool = getattr(rt, "ssl_context", None) or True
    async with httpx.AsyncClient(timeout=RESPONSE_URL_TIMEOUT,
                                 limits=httpx.Limits(max_connections=20),
                                 follow_redirects=False, verify=verify) as client:
        async with trio.open_nursery() as nursery:
            app = create_app(rt, background=nursery, http_client=client)
            binds = await nursery.start(serve, app, hypercorn_config(rt.config.http.listen))
            url = binds[0] if binds else ""
            logger.info("http: listening on %s", url)
            metrics_listen = rt.config.http.metrics_listen
            if metrics_listen is not None:
                mbinds = await nursery.start(serve, create_metrics_app(app),
                                             hypercorn_config(metrics_listen))
                logger.info("http: /metrics listening on %s", mbinds[0] if mbinds else "")
            if rt.config.http.webhook_tokens:
                logger.warning("http: MCHAT_WEBHOOK_TOKENS is deprecated: set "
                               "MCHAT_OUTGOING_WEBHOOK_TOKENS and MCHAT_SLASH_TOKENS separately "
                               "(a shared token lets an outgoing webhook run slash commands)")
            task_status.started(url)
