"""The control API of the fake server, under ``/_fake/`` (JSON, no auth, 127.0.0.1 only).

Control requests are neither rate limited nor written to the request log, and no fault
window applies to them.

=====================================  ==========================================================
``POST /_fake/post``                   ``{"user","channel","message","root_id"?,"props"?}`` ->
                                       201 Post (same path as ``POST /api/v4/posts``)
``POST /_fake/burst``                  ``{"user","channels":[...],"count","message"?}`` ->
                                       ``{"posted": n}``: ``count`` posts round-robin over
                                       ``channels``, made server-side as fast as the slowest
                                       live socket drains (load generation)
``POST /_fake/drop_websockets``        ``{"abrupt": bool}`` -> ``{"dropped": n}``
``POST /_fake/forget_resume_state``    -> ``{"forgotten": n}``
``POST /_fake/refuse_websockets``      ``{"seconds"}``: upgrades get 503 for the window
``POST /_fake/refuse_connections``     ``{"seconds"}``: TCP connections closed at once
``POST /_fake/fail``                   ``{"seconds","status"?=503,"path_prefix"?="/api/v4/"}``
``POST /_fake/stall``                  ``{"seconds"}``: /api/v4 and socket writes hang
``POST /_fake/latency``                ``{"seconds"}`` added before every REST answer
``POST /_fake/rate_limit``             ``{"per_s","burst"?=100}`` (``per_s`` 0: off)
``GET /_fake/requests``                the request log (token hints only, never tokens)
``GET /_fake/posts?channel=<name|id>`` posts in create order (deleted ones included)
``GET /_fake/seed``                    URL, team, users *with tokens*, channels with members
=====================================  ==========================================================

Knob answers are ``{"status": "OK"}``; a bad body is 400 ``api.fake.control.invalid``.
Integration routes (``incoming_webhooks``, ``outgoing_webhooks``, ``commands``, ``deliveries``)
are registered by ``hooks_control``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import trio

from .apperror import AppError
from .hub import SEND_QUEUE_SIZE
from .routing import Request, Response, Router, json_response, status_ok

if TYPE_CHECKING:
    from .fake import FakeMattermost


def _number(body: dict[str, object], key: str, default: float | None = None) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key!r} must be a number >= 0")
    return float(value)


def _string(body: dict[str, object], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string")
    return value


@attrs.define(eq=False)
class ControlHandlers:
    mm: FakeMattermost

    def register(self, router: Router) -> None:
        routes = {
            ("POST", "post"): self.post,
            ("POST", "burst"): self.burst,
            ("POST", "drop_websockets"): self.drop_websockets,
            ("POST", "forget_resume_state"): self.forget_resume_state,
            ("POST", "refuse_websockets"): self.refuse_websockets,
            ("POST", "refuse_connections"): self.refuse_connections,
            ("POST", "fail"): self.fail,
            ("POST", "stall"): self.stall,
            ("POST", "latency"): self.latency,
            ("POST", "rate_limit"): self.rate_limit,
            ("GET", "requests"): self.requests,
            ("GET", "posts"): self.posts,
            ("GET", "seed"): self.seed,
        }
        for (method, name), handler in routes.items():
            router.add(method, f"/_fake/{name}", handler, auth=False)

    async def post(self, request: Request) -> Response:
        body = request.json_object("post")
        root_id = body.get("root_id") or None
        props = body.get("props") or None
        if root_id is not None and not isinstance(root_id, str):
            raise ValueError("'root_id' must be a string")
        if props is not None and not isinstance(props, dict):
            raise ValueError("'props' must be an object")
        user, channel = _string(body, "user"), _string(body, "channel")
        try:
            self.mm.user(user)
            self.mm.channel(channel)
        except KeyError as exc:
            raise AppError(404, "api.fake.control.not_found", f"unknown {exc}") from None
        post = await self.mm.post_as(user, channel, _string(body, "message"), root_id=root_id,
                                     props=props)
        return json_response(post, 201)

    async def burst(self, request: Request) -> Response:
        body = request.json_object("burst")
        user, count = _string(body, "user"), int(_number(body, "count"))
        channels = body.get("channels")
        if (not isinstance(channels, list) or not channels
                or not all(isinstance(c, str) for c in channels)):
            raise ValueError("'channels' must be a non-empty list of strings")
        message = str(body.get("message") or "burst")
        try:
            self.mm.user(user)
            for channel in channels:
                self.mm.channel(channel)
        except KeyError as exc:
            raise AppError(404, "api.fake.control.not_found", f"unknown {exc}") from None
        for i in range(count):
            # paced by the fullest live send queue: a burst measures a reader, it does not
            # overflow it (a queue past SEND_QUEUE_SIZE is dropped, as on a real server)
            while self._backlogged():  # noqa: ASYNC110 - polled: the hub has no event for it
                await trio.sleep(0.001)
            await self.mm.post_as(user, channels[i % len(channels)], f"{message} {i}")
        return json_response({"posted": count})

    def _backlogged(self) -> bool:
        return any(len(c.pending) >= SEND_QUEUE_SIZE // 2 for c in self.mm.hub.conns.values()
                   if c.active and not c.forgotten)

    async def drop_websockets(self, request: Request) -> Response:
        body = request.json_object("body") if request.body else {}
        abrupt = body.get("abrupt", False)
        if not isinstance(abrupt, bool):
            raise ValueError("'abrupt' must be a boolean")
        return json_response({"dropped": await self.mm.drop_websockets(abrupt=abrupt)})

    async def forget_resume_state(self, request: Request) -> Response:
        return json_response({"forgotten": self.mm.forget_resume_state()})

    async def refuse_websockets(self, request: Request) -> Response:
        self.mm.refuse_websockets(_number(request.json_object("body"), "seconds"))
        return status_ok()

    async def refuse_connections(self, request: Request) -> Response:
        self.mm.refuse_connections(_number(request.json_object("body"), "seconds"))
        return status_ok()

    async def fail(self, request: Request) -> Response:
        body = request.json_object("body")
        self.mm.fail_requests(_number(body, "seconds"), int(_number(body, "status", 503)),
                              _string(body, "path_prefix", "/api/v4/"))
        return status_ok()

    async def stall(self, request: Request) -> Response:
        self.mm.stall(_number(request.json_object("body"), "seconds"))
        return status_ok()

    async def latency(self, request: Request) -> Response:
        self.mm.set_latency(_number(request.json_object("body"), "seconds"))
        return status_ok()

    async def rate_limit(self, request: Request) -> Response:
        body = request.json_object("body")
        self.mm.set_rate_limit(_number(body, "per_s"), int(_number(body, "burst", 100)))
        return status_ok()

    async def requests(self, request: Request) -> Response:
        return json_response([r.to_json() for r in self.mm.request_log])

    async def posts(self, request: Request) -> Response:
        channel = request.arg("channel") or None
        try:
            return json_response(self.mm.posts(channel))
        except KeyError:
            raise AppError(404, "api.fake.control.not_found",
                           f"unknown channel {channel!r}") from None

    async def seed(self, request: Request) -> Response:
        return json_response(self.mm.describe())
