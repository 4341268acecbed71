"""Every error of the HTTP surface is a small JSON object: ``{"error": ..., "detail": ...}``.

- ``HTTPException`` (ours and Starlette's 404/405): its status, a short ``error`` and the detail.
- Validation errors: 400 for a body that is not valid JSON, 422 for a well-formed body of the
  wrong shape; the detail lists location and message only (never the input, which may hold a
  token).
- ``BodyLimit`` (ASGI middleware): 413 when ``Content-Length`` or the bytes actually received
  exceed ``max_body_bytes``.
- ``ErrorBoundary`` (outermost ASGI middleware, the surface's one catch-all): an unexpected
  exception is logged, counted and answered 500 without internals; it also times and counts
  the webhook endpoints.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
import trio
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .stats import WEBHOOK_ENDPOINTS, HttpStats

logger = logging.getLogger(__name__)


def error_body(status: int, detail: Any = None, error: str | None = None) -> dict[str, Any]:
    if error is None:
        try:
            error = HTTPStatus(status).phrase.lower()
        except ValueError:
            error = "error"
    return {"error": error, "detail": detail}


class ApiError(HTTPException):
    """An HTTPException with a short ``error`` text besides the detail."""

    def __init__(self, status: int, error: str, detail: Any = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=detail, headers=dict(headers or {}))
        self.error = error


async def http_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    error = exc.error if isinstance(exc, ApiError) else None
    detail: Any = exc.detail
    if not isinstance(exc, ApiError) and detail == HTTPStatus(exc.status_code).phrase:
        detail = None  # Starlette repeats the phrase; the error field already says it
    return JSONResponse(error_body(exc.status_code, detail, error), status_code=exc.status_code,
                        headers=exc.headers)


async def validation_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    if any(e["type"] == "json_invalid" for e in errors):
        return JSONResponse(error_body(400, errors, "malformed JSON"), status_code=400)
    return JSONResponse(error_body(422, errors, "invalid request"), status_code=422)


def _json_bytes(status: int, detail: Any = None, error: str | None = None) -> bytes:
    return orjson.dumps(error_body(status, detail, error))


async def _send_json(send: Send, status: int, body: bytes,
                     extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: refuse request bodies larger than ``max_bytes`` with 413."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, _json_bytes(400, "invalid Content-Length"))
                    return
                if declared > limit:
                    await _send_json(send, 413, _json_bytes(
                        413, f"the body may be at most {limit} bytes", "content too large"),
                        ((b"connection", b"close"),))
                    return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise ApiError(413, "content too large",
                                   f"the body may be at most {limit} bytes")
            return message

        await self.app(scope, limited, send)


class ErrorBoundary:
    """ASGI middleware: the surface's single catch-all, plus response counting and timing."""

    def __init__(self, app: ASGIApp, *, stats: HttpStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        endpoint = WEBHOOK_ENDPOINTS.get(path)
        status = 500
        started = False
        start = trio.current_time()

        async def watch(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:  # the HTTP surface's one error boundary: log, count, answer 500
            self.stats.unexpected_errors += 1
            logger.exception("http: unexpected error in %s %s", scope.get("method"), path)
            if started:
                raise  # the response is under way: the server closes the connection
            status = 500
            await _send_json(send, 500, _json_bytes(500, None, "internal error"))
        finally:
            self.stats.responses[(_group(path), f"{status // 100}xx")] += 1
            if endpoint is not None:
                self.stats.observe_webhook(endpoint, status, trio.current_time() - start)


def _group(path: str) -> str:
    if path in WEBHOOK_ENDPOINTS:
        return "webhook"
    if path.startswith("/api/"):
        return "admin_api"
    if path.startswith("/admin"):
        return "admin_page"
    if path in ("/mchat/health", "/metrics"):
        return path.rsplit("/", 1)[-1]
    return "other"
