"""WebSocket events as the fake server publishes them, and their wire encoding.

An event is encoded per recipient *without* its ``seq`` (``{"event","data","broadcast"``);
the socket's writer appends ``"seq": N}`` when it writes the frame, so numbering happens at
write time as on the real server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import orjson

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .models import FakeUser


@attrs.frozen(kw_only=True)
class Broadcast:
    """Who an event is addressed to (``model.WebsocketBroadcast``)."""

    user_id: str = ""
    channel_id: str = ""
    team_id: str = ""
    omit_users: frozenset[str] | None = None
    connection_id: str = ""
    omit_connection_id: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "omit_users": {u: True for u in sorted(self.omit_users)} if self.omit_users else None,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "team_id": self.team_id,
            "connection_id": self.connection_id,
            "omit_connection_id": self.omit_connection_id,
        }


@attrs.define(kw_only=True, eq=False)
class WsEvent:
    """One published event.

    ``mentions``: users whose copy gets ``data.mentions = "[\\"<their id>\\"]"`` (newer
    servers send each mentioned user only their own id). ``admin_data``: extra keys for the
    copy system admins receive (``post_deleted``'s ``delete_by``). ``droppable``: may be
    dropped for a socket whose send queue is half full (``typing``).
    """

    event: str
    data: Mapping[str, object]
    broadcast: Broadcast
    mentions: frozenset[str] = frozenset()
    admin_data: Mapping[str, object] | None = None
    droppable: bool = False
    _plain: bytes | None = None

    def encoded_for(self, user: FakeUser) -> bytes:
        """The frame for ``user`` without the closing ``"seq": N}``."""
        if user.id in self.mentions:
            data = {**self.data, "mentions": orjson.dumps([user.id]).decode()}
            return _encode_prefix(self.event, data, self.broadcast)
        if self.admin_data and user.is_admin:
            return _encode_prefix(self.event, {**self.data, **self.admin_data}, self.broadcast)
        if self._plain is None:
            self._plain = _encode_prefix(self.event, self.data, self.broadcast)
        return self._plain


def _encode_prefix(event: str, data: Mapping[str, object], broadcast: Broadcast) -> bytes:
    body = orjson.dumps(
        {"event": event, "data": dict(sorted(data.items())), "broadcast": broadcast.to_json()}
    )
    return body[:-1]


def with_seq(prefix: bytes, seq: int) -> bytes:
    return b'%s,"seq":%d}' % (prefix, seq)


def reply_frame(
    seq_reply: int, *, data: Mapping[str, object] | None = None,
    error: Mapping[str, object] | None = None,
) -> bytes:
    """A ``WebSocketResponse``: empty ``seq_reply``/``data``/``error`` are omitted."""
    out: dict[str, object] = {"status": "FAIL" if error else "OK"}
    if seq_reply:
        out["seq_reply"] = seq_reply
    if data:
        out["data"] = dict(data)
    if error:
        out["error"] = dict(error)
    return orjson.dumps(out)
