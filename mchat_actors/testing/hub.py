"""The WebSocket hub: logical connections, broadcast filtering and the resume decision tree.

A :class:`WsConnection` is the server-side connection a client resumes (§2 of the protocol
doc). It outlives its TCP socket: when the socket goes away it becomes *inactive*, keeps
collecting the events addressed to its user in its send queue (up to 256; overflow forgets
it), and keeps its dead queue (the last ``resume_buffer`` events written). A reconnect with
``connection_id`` + ``sequence_number`` adopts it.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Protocol

import attrs
import trio

from .events import Broadcast, WsEvent
from .models import SERVER_HOSTNAME, VERSION_ID, FakeUser, new_id

if TYPE_CHECKING:
    from .state import FakeState

logger = logging.getLogger(__name__)

SEND_QUEUE_SIZE = 256
DROPPABLE_THRESHOLD = 128
REAP_AFTER_S = 300.0


class SocketHandle(Protocol):
    closed: trio.Event

    def close(self, *, abrupt: bool, code: int = 1001) -> None: ...


@attrs.define(eq=False, kw_only=True)
class WsConnection:
    """A logical connection. ``pending`` holds ``(is_event, payload)``: events are numbered
    when written (``payload`` lacks ``"seq"``); other payloads are complete frames."""

    resume_buffer: int
    connection_id: str = ""
    user: FakeUser | None = None
    pending: deque[tuple[bool, bytes]] = attrs.field(factory=deque)
    dead: deque[tuple[int, bytes]] = attrs.field(init=False)
    next_seq: int = 0
    active: bool = True
    inactive_since: float = 0.0
    forgotten: bool = False
    socket: SocketHandle | None = None
    _wakeup: trio.Event = attrs.field(factory=trio.Event)

    def __attrs_post_init__(self) -> None:
        self.dead = deque(maxlen=self.resume_buffer)

    def push(self, is_event: bool, payload: bytes, *, front: bool = False) -> None:
        if front:
            self.pending.appendleft((is_event, payload))
        else:
            self.pending.append((is_event, payload))
        self._wakeup.set()

    def wake(self) -> None:
        self._wakeup.set()

    async def wait_wakeup(self) -> None:
        """Wait until something is pushed (or :meth:`wake` is called)."""
        if self._wakeup.is_set():
            self._wakeup = trio.Event()
        await self._wakeup.wait()


@attrs.define(eq=False)
class Hub:
    state: FakeState
    resume_buffer: int = 128
    conns: dict[str, WsConnection] = attrs.field(factory=dict)  # registered, by connection id

    def new_connection(self) -> WsConnection:
        """An unregistered connection for a socket that has not authenticated yet."""
        return WsConnection(resume_buffer=self.resume_buffer)

    def register_fresh(self, conn: WsConnection, user: FakeUser) -> WsConnection:
        """Authenticate ``conn`` as ``user``: new connection id, seq from 0, ``hello``."""
        self._reap()
        conn.user = user
        conn.connection_id = new_id()
        conn.next_seq = 0
        conn.active = True
        self.conns[conn.connection_id] = conn
        conn.push(True, self._hello(conn).encoded_for(user))
        return conn

    def resume(self, user: FakeUser, connection_id: str, sequence_number: int) -> WsConnection:
        """Steps 3–4 of the decision tree (the caller validated the query)."""
        self._reap()
        old = self.conns.get(connection_id)
        if old is None or old.active or old.user is None or old.user.id != user.id:
            return self.register_fresh(self.new_connection(), user)
        old.active = True
        if sequence_number == 0:
            old.next_seq = 0
            return old
        seqs = [seq for seq, _ in old.dead]
        if sequence_number in seqs:
            replay = [frame for seq, frame in old.dead if seq >= sequence_number]
            for frame in reversed(replay):
                old.push(False, frame, front=True)
            logger.debug("resume %s: replaying %d events", connection_id, len(replay))
        elif seqs and seqs[-1] == sequence_number - 1:
            logger.debug("resume %s: lossless", connection_id)
        else:
            old.dead.clear()
            del self.conns[old.connection_id]
            old.connection_id = new_id()
            old.next_seq = 0
            self.conns[old.connection_id] = old
            old.push(True, self._hello(old).encoded_for(user), front=True)
            logger.debug("resume %s: lost events, new id %s", connection_id, old.connection_id)
        return old

    def deactivate(self, conn: WsConnection) -> None:
        """The socket of ``conn`` went away; keep it resumable."""
        conn.active = False
        conn.inactive_since = trio.current_time()

    def publish(self, event: WsEvent) -> None:
        for conn in list(self.conns.values()):
            user = conn.user
            if user is None or conn.forgotten or not self._should_send(conn, user, event):
                continue
            if event.droppable and len(conn.pending) >= DROPPABLE_THRESHOLD:
                continue
            if len(conn.pending) >= SEND_QUEUE_SIZE:
                logger.info("send queue of %s full: closing and forgetting it", conn.connection_id)
                self.forget(conn)
                if conn.socket is not None:
                    conn.socket.close(abrupt=True)
                continue
            conn.push(True, event.encoded_for(user))

    def forget(self, conn: WsConnection) -> None:
        conn.forgotten = True
        self.conns.pop(conn.connection_id, None)

    def drop_all(self, *, abrupt: bool) -> list[SocketHandle]:
        """Close every open socket (1001 close frame, or no frame at all)."""
        sockets = [c.socket for c in self.conns.values() if c.socket is not None]
        for socket in sockets:
            socket.close(abrupt=abrupt, code=1001)
        return sockets

    def forget_resume_state(self) -> int:
        """Drop every inactive connection, as a server restart would."""
        gone = [c for c in self.conns.values() if not c.active]
        for conn in gone:
            self.forget(conn)
        return len(gone)

    def online_user_ids(self) -> set[str]:
        return {c.user.id for c in self.conns.values() if c.active and c.user is not None}

    def statuses(self, user_ids: list[str] | None = None) -> dict[str, str]:
        online = self.online_user_ids()
        ids = self.state.users if user_ids is None else user_ids
        return {u: ("online" if u in online else "offline") for u in ids}

    def _hello(self, conn: WsConnection) -> WsEvent:
        assert conn.user is not None
        return WsEvent(
            event="hello",
            data={"server_version": VERSION_ID, "connection_id": conn.connection_id,
                  "server_hostname": SERVER_HOSTNAME},
            broadcast=Broadcast(user_id=conn.user.id),
        )

    def _should_send(self, conn: WsConnection, user: FakeUser, event: WsEvent) -> bool:
        b = event.broadcast
        if b.connection_id and b.connection_id != conn.connection_id:
            return False
        if b.omit_connection_id and b.omit_connection_id == conn.connection_id:
            return False
        if b.user_id:
            return b.user_id == user.id
        if b.omit_users and user.id in b.omit_users:
            return False
        if b.channel_id:
            return self.state.is_member(b.channel_id, user.id)
        if b.team_id:
            return self.state.is_team_member(b.team_id, user.id)
        return True

    def _reap(self) -> None:
        deadline = trio.current_time() - REAP_AFTER_S
        for conn in [c for c in self.conns.values() if not c.active]:
            if conn.inactive_since < deadline:
                self.forget(conn)
