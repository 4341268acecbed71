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
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from .app import create_app

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


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Gate:
    """The ASGI app served: 503 with ``reason`` until ``open(rt)``, then the FastAPI app."""

    def __init__(self) -> None:
        self.reason = "starting"
        self._app: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None
        self._background: trio.Nursery | None = None
        self._client: httpx.AsyncClient | None = None

    def open(self, rt: Runtime) -> None:
        self._app = create_app(rt, background=self._background, http_client=self._client)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is not None and scope["type"] != "lifespan":
            await self._app(scope, receive, send)
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


async def serve_gate(listen: str, gate: Gate, *,
                     task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Listen on ``listen`` serving ``gate`` until cancelled; ``started(url)``."""
    async with httpx.AsyncClient(timeout=RESPONSE_URL_TIMEOUT,
                                 limits=httpx.Limits(max_connections=20),
                                 follow_redirects=False) as client:
        async with trio.open_nursery() as nursery:
            gate._background, gate._client = nursery, client
            binds = await nursery.start(serve, gate, hypercorn_config(listen))
            url = binds[0] if binds else ""
            logger.info("http: listening on %s", url)
            task_status.started(url)


async def serve_http(rt: Runtime, *,
                     task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the app of ``rt`` until cancelled.

    Cancellation: the listener, open requests and unfinished slash commands are cancelled.
    """
    gate = Gate()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_gate, rt.config.http.listen, gate)
        gate.open(rt)
        task_status.started(url)
