"""One Mattermost WebSocket: authenticate, follow ``seq``, answer for liveness, forward events.

``run_connection`` opens the socket with header auth (the server resumes only header-authenticated
sockets), asking to resume when ``resume`` holds a connection id. It returns only by raising:
``MattermostUnavailable`` when the socket drops, stalls (no answer to our ``ping`` action for two
intervals), or skips a sequence number (the next connect resumes and the server replays);
``NotAuthenticated`` when the server never accepted the token (the supervisor checks users/me).

Once the socket is proven (a ``hello``, or the answer to our first ``ping`` on a resumed socket)
the connection awaits ``on_ready(is_new)`` (the backfill, which the reconnect supervisor runs
in its own nursery; ``is_new`` is true when a hello carried a connection id different from the
one we held: events were lost) *while it keeps reading the socket*: live events are held in a
buffer meanwhile (so the server never drops a socket we do not read, and a drop is seen at
once), then forwarded in order after the backfill's posts, so per-channel order holds
(duplicates are dropped downstream by post id). A buffer that overflows ``BUFFER_CAP`` is
dropped and the backfill runs again (REST has those posts).

A channel need not wait for the whole backfill: ``on_ready`` gets ``release(channel_id)``,
which the backfill calls once that channel's posts are in ``events`` (or it had none to
read). Its held events are forwarded then, in order, and its later ones as they come
(``send_nowait``: the reader never waits; a full ``events`` holds the channel again until the
end), so a live question in a channel already read is answered during a long backfill.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import attrs
import orjson
import trio
import trio_websocket

from .._groups import collapse_groups
from ..chat.masking import mask_for_log
from ..config import MattermostConfig
from ..errors import (
    MalformedEvent,
    MattermostCertificateError,
    MattermostError,
    MattermostUnavailable,
)
from ..mattermost.events import ActionReply, Event, Hello, Ignored, parse_frame
from ..mattermost.wsopen import open_websocket
from ..messages import InboundEvent
from ..tls import certificate_problem, client_ssl_context

logger = logging.getLogger(__name__)

BUFFER_CAP = 50_000  # live events held during one backfill
RECEIVE_BUFFER = 64 * 1024  # trio-websocket's 4 KiB default costs ~20% and is erratic
MAX_FRAME = 4 * 1024 * 1024


class NotAuthenticated(MattermostError):
    """The socket opened but the server never accepted our token."""


@attrs.define
class ResumeState:
    """What the next connect sends to resume: owned by the reconnect supervisor."""

    connection_id: str | None = None
    next_seq: int = 0


@attrs.define
class ConnectionStats:
    frames: int = 0
    malformed: int = 0
    duplicates_by_seq: int = 0
    hellos: int = 0
    resumes: int = 0  # connects that continued the old connection id
    new_connections: int = 0  # hellos with a new id (events may have been lost)
    events: Counter[str] = attrs.Factory(Counter)
    last_event_at: float | None = None  # trio time
    last_frame_wall_ms: int | None = None  # wall ms of the last frame (what was surely read)
    buffer_dropped: int = 0  # live events dropped at a full buffer (read again by REST)
    released: int = 0  # live events forwarded during a backfill (their channel was read)
    ready_at: float | None = None  # when the current socket was proven authenticated
    live_at: float | None = None  # when its backfill was done and held events forwarded


Release = Callable[[str], Awaitable[None]]  # a channel's backfill is done: its events pass
# (is_new: the server could not resume; release: for the backfill, per channel)
OnReady = Callable[[bool, Release], Awaitable[None]]


def websocket_url(cfg: MattermostConfig, resume: ResumeState) -> str:
    if not resume.connection_id:
        return cfg.websocket_url
    query = urlencode({"connection_id": resume.connection_id,
                       "sequence_number": resume.next_seq})
    return f"{cfg.websocket_url}?{query}"


def ssl_context_for(cfg: MattermostConfig) -> ssl.SSLContext | None:
    """A fresh client context (callers that have the one built at start pass it instead)."""
    return client_ssl_context(cfg)


async def run_connection(
    cfg: MattermostConfig,
    *,
    resume: ResumeState,
    events: trio.MemorySendChannel[InboundEvent],
    on_ready: OnReady,
    stats: ConnectionStats,
    bot_user_id: str = "",
    ssl_context: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one socket until it fails. See the module docstring.

    ``ssl_context``: the client context built once at start (``tls.client_ssl_context``);
    built per connect when not given. A certificate that fails verification raises
    ``MattermostCertificateError`` (a ``MattermostUnavailable``).

    Cancellation: closes the socket (best effort, 1 s) and returns; ``resume`` then points at
    the first event not yet forwarded.
    """
    conn = _Connection(cfg, resume, events, on_ready, stats, bot_user_id,
                       ssl_context if ssl_context is not None else ssl_context_for(cfg))
    await conn.run(task_status)


@attrs.define
class _Connection:
    cfg: MattermostConfig
    resume: ResumeState
    events: trio.MemorySendChannel[InboundEvent]
    on_ready: OnReady
    stats: ConnectionStats
    bot_user_id: str
    ssl_context: ssl.SSLContext | None
    is_new: bool = False
    action_seq: int = 0
    ping_sent_at: float | None = None  # outstanding ping action
    ping_seq: int = 0
    paused: bool = False  # liveness checks suspended (unused since backfill reads on)
    ready: trio.Event = attrs.Factory(trio.Event)
    refused_auth: bool = False
    read_seq: int = 0  # the next seq expected from the socket
    # live events held while the backfill runs (None: forwarding live)
    buffer: list[tuple[int | None, InboundEvent]] | None = None
    released: set[str] = attrs.Factory(set)  # channels read by the backfill: events pass
    overflowed: bool = False
    _forward: trio.Lock = attrs.Factory(trio.Lock)

    def __attrs_post_init__(self) -> None:
        self.read_seq = self.resume.next_seq

    async def run(self, task_status: trio.TaskStatus[None]) -> None:
        url = websocket_url(self.cfg, self.resume)
        headers = [(b"authorization", f"Bearer {self.cfg.token.reveal()}".encode())]
        try:
            with collapse_groups():
                await self._run(url, headers, task_status)
        except trio_websocket.ConnectionClosed as exc:
            if not self.ready.is_set():
                raise NotAuthenticated(f"websocket closed before hello ({exc.reason})") from None
            raise MattermostUnavailable(f"websocket closed ({exc.reason})") from None
        except trio.BrokenResourceError as exc:
            _raise_if_certificate(exc)
            raise MattermostUnavailable("websocket connection broken") from None
        except trio_websocket.HandshakeError as exc:  # raised by trio-websocket's reader task
            _raise_if_certificate(exc)
            raise MattermostUnavailable(_describe_handshake(exc)) from None

    async def _run(self, url: str, headers: list[tuple[bytes, bytes]],
                   task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as nursery:
            try:
                with trio.fail_after(self.cfg.rest_timeout_s):
                    ws = await open_websocket(
                        nursery, url, ssl_context=self.ssl_context, extra_headers=headers,
                        message_queue_size=64, max_message_size=MAX_FRAME,
                        receive_buffer_size=RECEIVE_BUFFER)
            except trio.TooSlowError:
                raise MattermostUnavailable("websocket connect timed out") from None
            except (trio_websocket.HandshakeError, OSError, trio.BrokenResourceError) as exc:
                _raise_if_certificate(exc)
                raise MattermostUnavailable(_describe_handshake(exc)) from None
            try:
                self.buffer = []  # until the backfill is done, live events are held
                nursery.start_soon(self._keepalive, ws)
                with trio.move_on_after(self.cfg.hello_timeout_s) as hello_scope:
                    await self._read_until_ready(ws)
                if hello_scope.cancelled_caught:
                    raise NotAuthenticated("no hello or ping answer within "
                                           f"{self.cfg.hello_timeout_s:g} s")
                self.stats.ready_at = trio.current_time()
                task_status.started()
                nursery.start_soon(self._read, ws)
                await self._backfill_then_flush()
                self.stats.live_at = trio.current_time()
                await trio.sleep_forever()  # the reader runs until the socket fails
            finally:
                nursery.cancel_scope.cancel()
                with trio.move_on_after(1.0) as cleanup:
                    cleanup.shield = True
                    await ws.aclose()

    async def _backfill_then_flush(self) -> None:
        """Run ``on_ready`` (the backfill) while the reader keeps reading the socket into the
        buffer; then forward the buffer in order and go live. A buffer that overflowed was
        dropped (those posts are not recorded): backfill again, it reads them from REST."""
        is_new = self.is_new
        while True:
            self.overflowed = False
            await self.on_ready(is_new, self._release)
            if not self.overflowed:
                break
            logger.warning("connection: live buffer overflowed during the backfill; "
                           "backfilling again")
            is_new = True
        async with self._forward:
            buffered, self.buffer = self.buffer or [], None
            self.released.clear()
            for seq, event in buffered:
                await self.events.send(event)
                if seq is not None:
                    self.resume.next_seq = seq + 1
            self.resume.next_seq = self.read_seq

    async def _send_action(self, ws: trio_websocket.WebSocketConnection, action: str) -> int:
        self.action_seq += 1
        await ws.send_message(orjson.dumps({"seq": self.action_seq, "action": action,
                                            "data": {}}).decode())
        return self.action_seq

    async def _ping(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ping_seq = await self._send_action(ws, "ping")
        self.ping_sent_at = trio.current_time()

    async def _keepalive(self, ws: trio_websocket.WebSocketConnection) -> None:
        """Ping at once (proves auth on a resumed socket), then every interval."""
        interval = self.cfg.ws_ping_interval_s
        await self._ping(ws)
        while True:
            await trio.sleep(interval)
            if self.paused:
                continue
            if self.ping_sent_at is not None:
                if trio.current_time() - self.ping_sent_at >= 2 * interval:
                    logger.warning("connection: no answer to ping for %g s", 2 * interval)
                    await ws.aclose(code=4000, reason="ping timeout")
                    return
                continue
            await self._ping(ws)

    async def _read_until_ready(self, ws: trio_websocket.WebSocketConnection) -> None:
        while not self.ready.is_set():
            await self._handle(await ws.get_message())
            if self.refused_auth:
                raise NotAuthenticated("the server refused the socket's token")

    async def _read(self, ws: trio_websocket.WebSocketConnection) -> None:
        while True:
            await self._handle(await ws.get_message())

    async def _handle(self, message: str | bytes) -> None:
        arrived = trio.current_time()
        self.stats.frames += 1
        self.stats.last_frame_wall_ms = int(time.time() * 1000)
        try:
            frame = parse_frame(message, my_user_id=self.bot_user_id, received_at=arrived)
        except MalformedEvent as exc:
            self.stats.malformed += 1
            logger.warning("connection: skipped a malformed frame: %s", exc)
            raw = message if isinstance(message, str) else message.decode("utf-8", "replace")
            logger.debug("connection: malformed frame payload %r", mask_for_log(raw[:2000]))
            return
        match frame:
            case ActionReply(seq_reply=seq, status=status, error_id=error_id):
                if status == "FAIL" and "not_authenticated" in error_id:
                    self.refused_auth = True
                if seq is not None and seq == self.ping_seq and status == "OK":
                    self.ping_sent_at = None
                    if self.resume.connection_id and not self.ready.is_set():
                        self.stats.resumes += 1
                        self.ready.set()
            case Hello():
                await self._on_hello(frame)
            case Ignored(seq=seq, event=name):
                if self._accept_seq(seq):
                    self.stats.events[name] += 1
                    self._advance(seq)
            case Event(seq=seq, event=name, value=value):
                if self._accept_seq(seq):
                    self.stats.events[name] += 1
                    self.stats.last_event_at = trio.current_time()
                    if self.buffer is not None:  # backfilling: hold it, keep reading
                        if not self._pass_released(value):
                            self._hold(seq, value)
                        elif seq is not None:
                            self.read_seq = seq + 1  # resume.next_seq stays at the held
                        return
                    if not self._forward.locked():  # the common case: no schedule point
                        try:  # per event (the socket's read is one); order is kept: nothing
                            self.events.send_nowait(value)  # else forwards meanwhile
                        except trio.WouldBlock:
                            pass
                        else:
                            self._advance(seq)
                            return
                    async with self._forward:
                        await self.events.send(value)
                        self._advance(seq)

    async def _on_hello(self, hello: Hello) -> None:
        self.stats.hellos += 1
        previous = self.resume.connection_id
        self.resume.connection_id = hello.connection_id
        self.resume.next_seq = self.read_seq = hello.seq + 1
        if previous != hello.connection_id:
            self.is_new = True
            self.stats.new_connections += 1
            logger.info("connection: new connection %s (previous %s)", hello.connection_id,
                        previous or "none")
        self.ready.set()

    async def _release(self, channel_id: str) -> None:
        """The backfill has emitted ``channel_id``'s posts: forward its held events, in order,
        then let its next ones pass (the set is joined only when none is held any more)."""
        while self.buffer is not None and not self.overflowed:  # overflowed: all wait
            mine = [held for held in self.buffer if _channel_of(held[1]) == channel_id]
            if not mine:
                self.released.add(channel_id)
                return
            # a drop before they are sent is covered: resume.next_seq is still at the first
            # held event (a resume replays it), and a new connection backfills again
            self.buffer = [held for held in self.buffer if _channel_of(held[1]) != channel_id]
            for _seq, event in mine:
                await self.events.send(event)

    def _pass_released(self, event: InboundEvent) -> bool:
        """Forward a live event of a released channel now; False: hold it (not released, or
        ``events`` is full: then the channel is held again, so its order is kept)."""
        channel = _channel_of(event)
        if channel is None or channel not in self.released:
            return False
        try:
            self.events.send_nowait(event)
        except trio.WouldBlock:
            self.released.discard(channel)
            return False
        self.stats.released += 1
        return True

    def _hold(self, seq: int | None, event: InboundEvent) -> None:
        """Buffer a live event during the backfill (``resume.next_seq`` stays at the first
        one held, so a resume replays them if the socket drops before they are forwarded)."""
        if seq is not None:
            self.read_seq = seq + 1
        if self.overflowed:
            self.stats.buffer_dropped += 1
            return
        assert self.buffer is not None
        self.buffer.append((seq, event))
        if len(self.buffer) > BUFFER_CAP:
            self.overflowed = True
            self.stats.buffer_dropped += len(self.buffer)
            self.buffer.clear()
            self.released.clear()  # dropped events are read again: nothing may pass them

    def _accept_seq(self, seq: int | None) -> bool:
        if seq is None:
            return True
        expected = self.read_seq
        if seq < expected:
            self.stats.duplicates_by_seq += 1
            return False
        if seq > expected:
            raise MattermostUnavailable(f"sequence gap: expected {expected}, got {seq}")
        return True

    def _advance(self, seq: int | None) -> None:
        if seq is not None:
            self.read_seq = seq + 1
            if self.buffer is None:
                self.resume.next_seq = self.read_seq


def _channel_of(event: InboundEvent) -> str | None:
    post = getattr(event, "post", None)
    channel = post.channel_id if post is not None else getattr(event, "channel_id", None)
    return None if channel is None else str(channel)


def _raise_if_certificate(exc: BaseException) -> None:
    problem = certificate_problem(exc)
    if problem is not None:
        raise MattermostCertificateError(f"websocket connect: {problem}") from None


def _describe_handshake(exc: BaseException) -> str:
    if isinstance(exc, trio_websocket.ConnectionRejected):
        return f"websocket upgrade rejected with HTTP {exc.status_code}"
    if isinstance(exc, trio_websocket.ConnectionTimeout):
        return "websocket connect timed out"
    cause = exc.__cause__ or exc.__context__
    return f"websocket connect failed ({type(cause).__name__ if cause else 'handshake'})"
