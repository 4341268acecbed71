"""Sockets and HTTP/1.1 (h11, keep-alive) of the fake server, and the request pipeline.

Per request, in order: ``/_fake/`` control routes (no rate limit, not logged); refused
connections (closed without an answer); a stall window (``/api/v4`` requests wait it out);
the rate limiter (429, plain text); a 413 for bodies over 300 000 + 512 bytes; an injected
failure window; then routing, authentication and the handler. Latency is added before every
non-control answer. A handler bug becomes a 500 AppError (logged), never a traceback.

``GET /api/v4/websocket`` is parsed by h11 like any request; when it passes the pipeline the
raw TCP stream is handed to :mod:`.ws` (wsproto) with the bytes h11 had not consumed yet.
"""

from __future__ import annotations

import logging
import posixpath
import ssl
import time
from collections import deque
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import unquote

import attrs
import h11
import trio
import wsproto
import wsproto.events as wse
from wsproto.utilities import RemoteProtocolError

from .apperror import AppError, body_too_large, internal_error, session_expired
from .faults import WEBSOCKET_PATH, Faults
from .models import VERSION_ID, RequestRecord, is_valid_id, new_id, token_hint
from .routing import Request, Response, Router, json_response, resolve_params
from .ws import WsSocket, parse_sequence_number

if TYPE_CHECKING:
    from .hub import Hub
    from .ratelimit import RateLimiter
    from .state import FakeState

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 300_000 + 512
READ_BYTES = 65536
CONTROL_PREFIX = "/_fake/"
REQUEST_LOG_SIZE = 100_000


@attrs.define(eq=False)
class HttpServer:
    state: FakeState
    hub: Hub
    faults: Faults
    limiter: RateLimiter
    router: Router
    control: Router
    request_log: deque[RequestRecord] = attrs.field(factory=lambda: deque(maxlen=REQUEST_LOG_SIZE))
    ssl_context: ssl.SSLContext | None = None  # set: https and wss on the same port

    async def serve(
        self, host: str, port: int, *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``host:port`` and serve until cancelled; ``started`` gets the TCP listeners.

        With ``ssl_context`` every connection is TLS (``https``/``wss``); a client that refuses
        the certificate only ends its own connection.
        """
        listeners = await trio.open_tcp_listeners(port, host=host)
        task_status.started(listeners)
        await trio.serve_listeners(self._handle_connection, listeners)

    async def _handle_connection(self, raw: trio.SocketStream) -> None:
        stream: trio.abc.Stream = raw
        if self.ssl_context is not None:
            stream = trio.SSLStream(raw, self.ssl_context, server_side=True,
                                    https_compatible=True)
        try:
            if not self.faults.refusing_connections:
                if isinstance(stream, trio.SSLStream):
                    await stream.do_handshake()
                await self._serve_http(stream, _peer_ip(raw))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            logger.debug("fake server: the client went away")
        except Exception:  # error boundary: one TCP connection
            logger.exception("fake server: connection handler failed")
        finally:
            await trio.aclose_forcefully(stream)

    async def _serve_http(self, stream: trio.abc.Stream, client_ip: str) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=READ_BYTES)
        while True:
            event = await _next_event(conn, stream)
            if not isinstance(event, h11.Request):
                return
            if self.faults.refusing_connections:
                return  # a keep-alive connection is closed on its next request
            request, too_large = await self._read_request(conn, stream, event, client_ip)
            if request is None:
                return
            if request.path.rstrip("/") == WEBSOCKET_PATH and request.method == "GET":
                response = await self._pre_upgrade(request)
                if response is None:
                    await self._upgrade(conn, stream, event, request)
                    return
            else:
                response = await self._process(request, too_large)
            await _send_response(conn, stream, request, response, close=too_large)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _read_request(
        self, conn: h11.Connection, stream: trio.abc.Stream, event: h11.Request, client_ip: str
    ) -> tuple[Request | None, bool]:
        target = event.target.decode("latin-1")
        raw_path, _, query = target.partition("?")
        headers = list(event.headers)
        body = bytearray()
        length = _content_length(headers)
        too_large = length is not None and length > MAX_BODY_BYTES
        while not too_large:
            part = await _next_event(conn, stream)
            if isinstance(part, h11.Data):
                body += part.data
                too_large = len(body) > MAX_BODY_BYTES
            elif isinstance(part, h11.EndOfMessage):
                break
            else:
                return None, False
        request = Request(
            method=event.method.decode("ascii"), path=unquote(raw_path), query_string=query,
            headers=headers, body=bytes(body), client_ip=client_ip, request_id=new_id(),
        )
        request.token = _auth_token(request)
        request.user = self.state.user_by_token(request.token)
        return request, too_large

    async def _process(self, request: Request, too_large: bool) -> Response:
        if request.path.startswith(CONTROL_PREFIX):
            return await self._control(request)
        if request.path.startswith("/api/v4"):
            await self.faults.wait_unstalled()
        limited, rate_headers = self._rate_limit(request)
        response = limited or await self._route(request, too_large)
        if self.faults.latency_s > 0:
            await trio.sleep(self.faults.latency_s)
        response = attrs.evolve(response, headers=response.headers + rate_headers)
        self._log(request, response.status)
        return response

    async def _pre_upgrade(self, request: Request) -> Response | None:
        """The pipeline for a WebSocket upgrade: ``None`` means go ahead and upgrade."""
        await self.faults.wait_unstalled()
        limited, rate_headers = self._rate_limit(request)
        response = limited
        if response is None:
            status = self.faults.failing(request.path)
            if status is not None:
                response = _error(_injected(status), request)
            elif self.faults.refusing_websockets:
                response = _error(AppError(503, "api.web_socket.connect.unavailable.app_error",
                                           "The server is unavailable."), request)
            elif request.token is None and request.arg("access_token"):
                response = _error(session_expired(), request)
        if response is not None:
            response = attrs.evolve(response, headers=response.headers + rate_headers)
            self._log(request, response.status)
        return response

    async def _upgrade(self, conn: h11.Connection, stream: trio.abc.Stream,
                       event: h11.Request, request: Request) -> None:
        ws = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        try:
            ws.initiate_upgrade_connection(list(event.headers), event.target)
            handshake = next(ws.events(), None)
        except RemoteProtocolError:
            handshake = None
        if not isinstance(handshake, wse.Request):
            response = _error(AppError(400, "api.web_socket.connect.upgrade.app_error",
                                       "Failed to upgrade websocket connection."), request)
            self._log(request, response.status)
            await _send_response(conn, stream, request, response, close=True)
            return
        self._log(request, 101)
        await stream.send_all(ws.send(wse.AcceptConnection()))
        trailing, _closed = conn.trailing_data
        user = request.user
        if user is None:
            ws_conn = self.hub.new_connection()
        elif connection_id := request.arg("connection_id"):
            sequence = parse_sequence_number(request.query.get("sequence_number"))
            if not is_valid_id(connection_id) or sequence is None:
                return  # closed right after the upgrade, nothing sent
            ws_conn = self.hub.resume(user, connection_id, sequence)
        else:
            ws_conn = self.hub.register_fresh(self.hub.new_connection(), user)
        socket = WsSocket(stream, ws, ws_conn, hub=self.hub, state=self.state, faults=self.faults)
        await socket.serve(bytes(trailing))

    def _rate_limit(self, request: Request) -> tuple[Response | None, tuple[tuple[str, str], ...]]:
        if not self.limiter.enabled:
            return None, ()
        decision = self.limiter.check(request.token or request.client_ip, trio.current_time())
        if not decision.limited:
            return None, decision.headers
        return Response(429, b"limit exceeded\n", "text/plain; charset=utf-8",
                        (("X-Content-Type-Options", "nosniff"),)), decision.headers

    async def _route(self, request: Request, too_large: bool) -> Response:
        try:
            if too_large:
                raise body_too_large()
            status = self.faults.failing(request.path)
            if status is not None:
                raise _injected(status)
            clean = clean_path(request.path)
            if clean != request.path:  # gorilla/mux: 301 to the cleaned path, any method
                query = f"?{request.query_string}" if request.query_string else ""
                return Response(301, b"", "text/plain; charset=utf-8",
                                (("Location", clean + query),))
            route, params = self.router.match(request.method, request.path)
            if route.auth and request.user is None:
                raise session_expired()
            request.params = resolve_params(params, request.user)
            return await route.handler(request)
        except AppError as err:
            return _error(err, request)
        except Exception:  # error boundary: one request
            logger.exception("fake server: %s %s failed", request.method, request.path)
            return _error(internal_error(), request)

    async def _control(self, request: Request) -> Response:
        if request.client_ip not in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
            return _error(AppError(403, "api.fake.control.local_only",
                                   "The control API answers 127.0.0.1 only."), request)
        try:
            route, request.params = self.control.match(request.method, request.path)
            return await route.handler(request)
        except AppError as err:
            return _error(err, request)
        except ValueError as err:
            return _error(AppError(400, "api.fake.control.invalid", str(err)), request)
        except Exception:  # error boundary: one control request
            logger.exception("fake server: control %s failed", request.path)
            return _error(internal_error(), request)

    def _log(self, request: Request, status: int) -> None:
        self.request_log.append(RequestRecord(
            time=trio.current_time(), wall_time=time.time(),
            user_id=request.user.id if request.user else "", token_hint=token_hint(request.token),
            method=request.method, path=request.path, query=request.query_string, status=status,
            received=request.received_at,
        ))


def clean_path(path: str) -> str:
    """The path as Go's ``path.Clean`` leaves it, trailing slash kept (gorilla/mux cleanPath)."""
    if not path.startswith("/"):
        path = "/" + path
    cleaned = "/" + posixpath.normpath(path).lstrip("/")
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def _injected(status: int) -> AppError:
    if status == 503:
        return AppError(503, "api.context.server_busy.app_error",
                        "The server is busy, please try again later.")
    return AppError(status, "api.fake.injected_fault.app_error", "Injected failure (fake server).")


def _error(err: AppError, request: Request) -> Response:
    return json_response(err.body(request.request_id), err.status)


async def _next_event(conn: h11.Connection, stream: trio.abc.Stream) -> object:
    """The next h11 event, reading as needed; ``None`` on a malformed request (answered 400)."""
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            await _bad_request(conn, stream)
            return None
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(bytes(await stream.receive_some(READ_BYTES)))


async def _bad_request(conn: h11.Connection, stream: trio.abc.Stream) -> None:
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    try:
        data = conn.send(h11.Response(status_code=400, reason=b"Bad Request",
                                      headers=[("content-length", "0"), ("connection", "close")]))
        data += conn.send(h11.EndOfMessage()) or b""
    except h11.LocalProtocolError:
        return
    await stream.send_all(data or b"")


async def _send_response(conn: h11.Connection, stream: trio.abc.Stream, request: Request,
                         response: Response, *, close: bool) -> None:
    headers = [
        ("Content-Type", response.content_type),
        ("Content-Length", str(len(response.body))),
        ("Date", formatdate(usegmt=True)),
        ("X-Request-Id", request.request_id),
        ("X-Version-Id", VERSION_ID),
        *response.headers,
    ]
    if close:
        headers.append(("Connection", "close"))
    data = conn.send(h11.Response(status_code=response.status, headers=headers,
                                  reason=_reason(response.status))) or b""
    if response.body and request.method != "HEAD":
        data += conn.send(h11.Data(data=response.body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    await stream.send_all(data)


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value)
    return None


def _auth_token(request: Request) -> str | None:
    """``Authorization: Bearer|Token <t>`` (any case), else the ``MMAUTHTOKEN`` cookie."""
    auth = request.header("authorization")
    if auth and len(auth) > 6 and auth[:6].upper() == "BEARER":
        return auth[7:]
    if auth and len(auth) > 5 and auth[:5].lower() == "token":
        return auth[6:]
    for cookie in (request.header("cookie") or "").split(";"):
        name, _, value = cookie.strip().partition("=")
        if name == "MMAUTHTOKEN" and value:
            return value
    return None


def _peer_ip(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except OSError:
        return ""
