"""One WebSocket on ``/api/v4/websocket``: frames in (wsproto), actions, frames out.

The HTTP layer has already parsed the upgrade request with h11; it answers the handshake
through wsproto's ``initiate_upgrade_connection`` and hands the raw TCP stream to
:meth:`WsSocket.serve`, which can then close it with a close frame, or abruptly with none,
exactly as the real server does in the situations of §1.7 and §2.2.

Per socket: a reader (64 KiB reads, 8 KiB inbound message limit), a writer (numbers events
at write time, keeps the dead queue, batches frames into one write), a keep-alive (control
ping every 60 s, dropped when no pong for 100 s) and, until authenticated, a 5 s grace timer.
During a stall window nothing is written, pings and pongs included.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

import orjson
import trio
import wsproto
import wsproto.events as wse
from wsproto.connection import ConnectionState
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from .apperror import AppError
from .events import Broadcast, WsEvent, reply_frame, with_seq
from .models import SERVER_VERSION, FakeUser, wall_ms

if TYPE_CHECKING:
    from collections.abc import Callable

    from .faults import Faults
    from .hub import Hub, WsConnection
    from .state import FakeState

logger = logging.getLogger(__name__)

MAX_INBOUND_BYTES = 8192
UNAUTHENTICATED_GRACE_S = 5.0
READ_BYTES = 65536
_CLOSE_WAIT_S = 1.0
PING_INTERVAL_S = 60.0
READ_DEADLINE_S = 100.0
WRITE_BATCH_BYTES = 256 * 1024
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")


class WsSocket:
    """The server side of one WebSocket TCP connection."""

    def __init__(self, stream: trio.abc.Stream, ws: wsproto.WSConnection, conn: WsConnection,
                 *, hub: Hub, state: FakeState, faults: Faults) -> None:
        self._stream = stream
        self._ws = ws
        self.conn = conn
        self._hub = hub
        self._state = state
        self._faults = faults
        self._control: deque[bytes] = deque()
        self._scope = trio.CancelScope()
        self._close_frame: bytes | None = None  # sent on the way out; None: abrupt close
        self._message: list[str] = []
        self._message_bytes = 0
        self.closed = trio.Event()
        self._last_pong = trio.current_time()
        conn.socket = self

    # -- SocketHandle --------------------------------------------------------------------------

    def close(self, *, abrupt: bool, code: int = 1001) -> None:
        if not abrupt and self._close_frame is None:
            self._close_frame = self._close_bytes(code)
        self._scope.cancel()

    # -- life cycle ----------------------------------------------------------------------------

    async def serve(self, initial: bytes) -> None:
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer)
                    nursery.start_soon(self._keepalive)
                    if self.conn.user is None:
                        nursery.start_soon(self._grace_timer)
                    if not initial or self._feed(initial):
                        await self._reader()
                    nursery.cancel_scope.cancel()
        finally:
            # Inactive (resumable) before the peer can see the close: a client that
            # reconnects as soon as its socket is closed always finds the connection.
            if self.conn.socket is self:
                self.conn.socket = None
                if self.conn.user is not None and not self.conn.forgotten:
                    self._hub.deactivate(self.conn)
            with trio.CancelScope(shield=True):
                await self._shutdown()
            self.closed.set()

    async def _shutdown(self) -> None:
        with trio.move_on_after(_CLOSE_WAIT_S):
            if self._close_frame is not None:
                try:
                    await self._stream.send_all(self._close_frame)
                    await self._drain_until_close()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    logger.debug("peer gone before the close handshake ended")
        await trio.aclose_forcefully(self._stream)

    async def _drain_until_close(self) -> None:
        """After our close frame, read until the peer answers it (or goes away)."""
        while self._ws.state is not ConnectionState.CLOSED:
            data = await self._stream.receive_some(READ_BYTES)
            if not data:
                return
            try:
                self._ws.receive_data(bytes(data))
                list(self._ws.events())  # only the state change to CLOSED matters
            except RemoteProtocolError:
                return

    async def _grace_timer(self) -> None:
        await trio.sleep(UNAUTHENTICATED_GRACE_S)
        if self.conn.user is None:
            logger.debug("unauthenticated socket dropped after %s s", UNAUTHENTICATED_GRACE_S)
            self.close(abrupt=True)

    # -- reading -------------------------------------------------------------------------------

    async def _reader(self) -> None:
        try:
            while True:
                data = await self._stream.receive_some(READ_BYTES)
                if not data or not self._feed(bytes(data)):
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._close_frame = None

    def _feed(self, data: bytes) -> bool:
        """Process received bytes; ``False`` when the socket must end."""
        try:
            self._ws.receive_data(data)
            for event in self._ws.events():
                if not self._on_event(event):
                    return False
        except (RemoteProtocolError, LocalProtocolError):
            return False
        return True

    def _on_event(self, event: wse.Event) -> bool:
        match event:
            case wse.TextMessage() | wse.BytesMessage():
                size = len(event.data.encode()) if isinstance(event.data, str) else len(event.data)
                self._message_bytes += size
                if self._message_bytes > MAX_INBOUND_BYTES:
                    logger.debug("inbound frame over %d bytes: closing", MAX_INBOUND_BYTES)
                    self._close_frame = self._close_bytes(1009)
                    return False
                if isinstance(event.data, str):
                    self._message.append(event.data)
                if not event.message_finished:
                    return True
                text, binary = "".join(self._message), isinstance(event, wse.BytesMessage)
                self._message.clear()
                self._message_bytes = 0
                return binary or self._on_frame(text)  # msgpack frames are not supported
            case wse.Ping():
                self._control.append(self._ws.send(event.response()))
                self.conn.wake()
            case wse.Pong():
                self._last_pong = trio.current_time()
            case wse.CloseConnection():
                self._close_frame = self._ws.send(event.response())
                return False
        return True

    def _on_frame(self, text: str) -> bool:
        """One client action; ``False`` closes the socket abruptly (undecodable frame)."""
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(request, dict):
            return False
        seq, action, data = request.get("seq", 0), request.get("action", ""), request.get("data")
        if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(action, str):
            return False
        if data is not None and not isinstance(data, dict):
            return False
        data = data or {}
        if not action:
            return self._fail(seq, 400, "api.web_socket_router.no_action.app_error",
                              "No websocket action.")
        if seq <= 0:
            return self._fail(seq, 400, "api.web_socket_router.bad_seq.app_error",
                              "Invalid sequence for WebSocket message.")
        if action == "authentication_challenge":
            return self._authenticate(seq, data)
        if self.conn.user is None:
            return self._fail(seq, 401, "api.web_socket_router.not_authenticated.app_error",
                              "Connection is not authenticated. Please log in and try again.")
        handler = self._actions().get(action)
        if handler is None:
            if action.startswith("custom_"):
                return True
            return self._fail(seq, 500, "api.web_socket_router.bad_action.app_error",
                              "Unknown action.")
        try:
            reply = handler(self.conn.user, data)
        except AppError as err:
            self._reply(reply_frame(seq, error=err.ws_error()))
            return True
        if not isinstance(reply, _NoReply):
            self._reply(reply_frame(seq, data=reply))
        return True

    def _authenticate(self, seq: int, data: dict[str, object]) -> bool:
        if self.conn.user is not None:
            return True  # already authenticated: silently ignored, no reply
        token = data.get("token")
        user = self._state.user_by_token(token) if isinstance(token, str) else None
        if user is None:
            return False
        self._hub.register_fresh(self.conn, user)
        self._reply(reply_frame(seq))
        return True

    def _actions(self) -> dict[str, Callable[[FakeUser, dict[str, object]], _Reply]]:
        return {
            "ping": self._ping,
            "user_typing": self._typing,
            "get_statuses": lambda _user, _data: self._hub.statuses(),
            "get_statuses_by_ids": self._statuses_by_ids,
            "user_update_active_status": lambda _user, _data: None,
            "presence": lambda _user, _data: None,
            "posted_notify_ack": lambda _user, _data: None,
        }

    def _ping(self, user: FakeUser, data: dict[str, object]) -> _Reply:
        if self._faults.stalled:
            return _NO_REPLY  # a stalled server does not answer the ping action
        return {"text": "pong", "version": SERVER_VERSION, "server_time": wall_ms(),
                "node_id": ""}

    def _typing(self, user: FakeUser, data: dict[str, object]) -> _Reply:
        channel_id = data.get("channel_id")
        parent_id = data.get("parent_id", "") or ""
        if not isinstance(channel_id, str) or not self._state.is_member(channel_id, user.id):
            raise _invalid_ws_param("channel_id")
        self._hub.publish(WsEvent(
            event="typing", data={"parent_id": parent_id, "user_id": user.id},
            broadcast=Broadcast(channel_id=channel_id, omit_users=frozenset({user.id})),
            droppable=True,
        ))
        return None

    def _statuses_by_ids(self, user: FakeUser, data: dict[str, object]) -> _Reply:
        ids = data.get("user_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise _invalid_ws_param("user_ids")
        return self._hub.statuses([str(i) for i in ids])

    def _fail(self, seq: int, status: int, error_id: str, message: str) -> bool:
        self._reply(reply_frame(seq, error=AppError(status, error_id, message).ws_error()))
        return True

    def _reply(self, frame: bytes) -> None:
        self.conn.push(False, frame)

    # -- writing -------------------------------------------------------------------------------

    async def _writer(self) -> None:
        try:
            await self._write_loop()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._close_frame = None
            self._scope.cancel()

    async def _write_loop(self) -> None:
        conn = self.conn
        while True:
            while not conn.pending and not self._control:
                await conn.wait_wakeup()
            await self._faults.wait_unstalled()
            if self._scope.cancel_called:
                return  # closing: the close frame may already be generated
            out = bytearray()
            while self._control:
                out += self._control.popleft()
            while conn.pending and len(out) < WRITE_BATCH_BYTES:
                is_event, payload = conn.pending.popleft()
                if is_event:
                    payload = with_seq(payload, conn.next_seq)
                    conn.dead.append((conn.next_seq, payload))
                    conn.next_seq += 1
                out += text_frame(payload)
            await self._stream.send_all(out)

    async def _keepalive(self) -> None:
        """Control pings every 60 s; no pong for 100 s drops the socket (no close frame)."""
        next_ping = trio.current_time() + PING_INTERVAL_S
        while True:
            await trio.sleep_until(min(next_ping, self._last_pong + READ_DEADLINE_S))
            now = trio.current_time()
            if now >= self._last_pong + READ_DEADLINE_S:
                logger.debug("no pong for %s s: dropping the socket", READ_DEADLINE_S)
                self.close(abrupt=True)
                return
            if now >= next_ping:
                next_ping += PING_INTERVAL_S
                self._control.append(self._ws.send(wse.Ping()))
                self.conn.wake()

    def _close_bytes(self, code: int) -> bytes | None:
        try:
            return self._ws.send(wse.CloseConnection(code=code))
        except LocalProtocolError:
            return None


class _NoReply:
    """Returned by an action handler that must not answer."""


_NO_REPLY = _NoReply()
_Reply = Mapping[str, object] | None | _NoReply


def _invalid_ws_param(name: str) -> AppError:
    return AppError(400, "api.websocket_handler.invalid_param.app_error",
                    f"Invalid {name} parameter.")


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented server text frame (RFC 6455 §5.2) around UTF-8 ``payload``."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


def parse_sequence_number(raw: list[str] | None) -> int | None:
    """``sequence_number`` as an int, ``None`` when missing or not an integer."""
    if not raw or not _INTEGER.fullmatch(raw[0]):
        return None
    return int(raw[0])
