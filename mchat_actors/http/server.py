"""``serve_http(rt)``: the HTTP surface on hypercorn's trio worker, inside the root nursery.

It owns what outlives single requests: the background nursery (slash commands answered late
through ``response_url``) and the one pooled ``httpx.AsyncClient`` for those posts. It reports
``started(url)`` (e.g. ``"http://127.0.0.1:40123"``, useful with port 0) once the socket
listens, and stops when cancelled; background work is cancelled with it.

The app hypercorn serves is a ``Gate``: while the service starts (Mattermost unreachable, so the
bot's identity is not known yet) every request gets 503 and ``/mchat/health`` says why; once
``Gate.open(rt)`` is called the FastAPI app answers. ``serve_gate`` starts the listener early
(``app.run`` does); ``serve_http`` opens the gate at once.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from .app import create_app, create_metrics_app

if TYPE_CHECKING:
    from ..app import Runtime
    from ..config import HttpConfig

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


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Gate:
    """The ASGI app served: 503 with ``reason`` until ``open(rt)``, then the FastAPI app.
    ``metrics`` is the same for the separate ``/metrics`` listener (MCHAT_METRICS_LISTEN)."""

    def __init__(self) -> None:
        self.reason = "starting"
        self._app: ASGIApp | None = None
        self._metrics_app: ASGIApp | None = None
        self._background: trio.Nursery | None = None
        self._client: httpx.AsyncClient | None = None

    def open(self, rt: Runtime) -> None:
        app = create_app(rt, background=self._background, http_client=self._client)
        self._metrics_app = create_metrics_app(app)
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._serve(self._app, scope, receive, send)

    async def metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._serve(self._metrics_app, scope, receive, send)

    async def _serve(self, app: ASGIApp | None, scope: Scope, receive: Receive,
                     send: Send) -> None:
        if app is not None and scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        if scope["type"] == "lifespan":  # the app has no start-up or shutdown work
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope.get("path") == "/mchat/health":
            body = {"status": "unavailable", "reasons": [self.reason]}
        else:
            body = {"error": "unavailable", "detail": f"the service is starting: {self.reason}"}
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"application/json"),
                                (b"retry-after", b"5")]})
        await send({"type": "http.response.body", "body": orjson.dumps(body)})


async def serve_gate(cfg: HttpConfig, gate: Gate, *, ssl_context: ssl.SSLContext | None = None,
                     task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Listen on ``cfg.listen`` (and ``cfg.metrics_listen``) serving ``gate`` until cancelled;
    ``started(url)``. ``ssl_context``: the one built at start, for ``response_url`` posts."""
    verify: ssl.SSLContext | bool = ssl_context or True
    async with httpx.AsyncClient(timeout=RESPONSE_URL_TIMEOUT,
                                 limits=httpx.Limits(max_connections=20),
                                 follow_redirects=False, verify=verify) as client:
        async with trio.open_nursery() as nursery:
            gate._background, gate._client = nursery, client
            binds = await nursery.start(serve, gate, hypercorn_config(cfg.listen))
            url = binds[0] if binds else ""
            logger.info("http: listening on %s", url)
            if cfg.metrics_listen is not None:
                mbinds = await nursery.start(serve, gate.metrics,
                                             hypercorn_config(cfg.metrics_listen))
                logger.info("http: /metrics listening on %s", mbinds[0] if mbinds else "")
            if cfg.webhook_tokens:
                logger.warning("http: MCHAT_WEBHOOK_TOKENS is deprecated: set "
                               "MCHAT_OUTGOING_WEBHOOK_TOKENS and MCHAT_SLASH_TOKENS separately "
                               "(a shared token lets an outgoing webhook run slash commands)")
            task_status.started(url)


async def serve_http(rt: Runtime, *,
                     task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the app of ``rt`` until cancelled.

    Cancellation: the listener, open requests and unfinished slash commands are cancelled.
    """
    gate = Gate()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(partial(serve_gate, rt.config.http, gate,
                                          ssl_context=rt.ssl_context))
        gate.open(rt)
        task_status.started(url)
