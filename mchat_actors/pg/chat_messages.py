"""Plain posts into the ChatService's ``chat_messages`` on PostgreSQL, inside the runtime's
request (``chat.protocol.SharedStorage`` for ``PgPosts.store_plain_posts``).

This is the one piece of the ChatService that the runtime's repositories need on PostgreSQL:
``store_user_messages`` does what ``chat.units.store_user_messages`` does on SQLite (unknown
room or user: ``ChatServiceRejected`` and the request stores nothing; a post id stored before:
the stored message, ``is_new=False``). The rest of the ChatService on PostgreSQL (users,
rooms, memories, search through ``pg.search``, extraction after the commit) is not built yet:
``PgSharedMessages.messages_stored`` calls the ``on_stored`` hook it is given, where the
embedded service starts background extraction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from psycopg.rows import dict_row

from ..chat.protocol import NewMessage, StoredMessage
from ..errors import ChatServiceRejected
from ..messages import AgentUserId
from .outbox_repo import Conn

_INSERT = (
    "INSERT INTO chat_messages (room_id, user_id, role, content, mchat_post_id, root_id,"
    " created_at, permalink) VALUES (%s, %s, 'user', %s, %s, %s, %s, %s)"
    " ON CONFLICT (mchat_post_id) DO NOTHING RETURNING *"
)


def _message(row: dict[str, Any], *, is_new: bool) -> StoredMessage:
    return StoredMessage(id=str(row["id"]), room_id=row["room_id"],
                         user_id=AgentUserId(row["user_id"] or ""), content=row["content"],
                         mchat_post_id=row["mchat_post_id"], created_at_ms=row["created_at"],
                         is_new=is_new)


def store_user_messages(conn: Conn, messages: Sequence[NewMessage]) -> list[StoredMessage]:
    """Store each of ``messages`` in order, idempotent on the post id (also against a
    concurrent transaction storing the same post).

    Raises:
        ChatServiceRejected: a message's room or user is unknown.
    """
    stored: list[StoredMessage] = []
    with conn.cursor(row_factory=dict_row) as cur:
        for m in messages:
            if cur.execute("SELECT 1 FROM chat_rooms WHERE id = %s", (m.room,)).fetchone() is None:
                raise ChatServiceRejected(f"unknown room {m.room}")
            if cur.execute("SELECT 1 FROM users WHERE id = %s", (m.user,)).fetchone() is None:
                raise ChatServiceRejected(f"unknown user {m.user}")
            row = cur.execute(_INSERT, (m.room, m.user, m.content, m.post_id, m.root_id,
                                        m.created_at_ms or 0, m.permalink)).fetchone()
            if row is not None:
                stored.append(_message(row, is_new=True))
                continue
            old = cur.execute("SELECT * FROM chat_messages WHERE mchat_post_id = %s",
                              (m.post_id,)).fetchone()
            assert old is not None  # the conflict was on this key, committed
            stored.append(_message(old, is_new=False))
    return stored


@attrs.frozen
class PgSharedMessages:
    """``SharedStorage`` on PostgreSQL: plain posts stored in the runtime's transaction."""

    on_stored: Callable[[Sequence[StoredMessage]], None] | None = None
    now_ms: Callable[[], int] = attrs.field(default=lambda: int(time.time() * 1000))

    def shares_store(self) -> bool:
        return True

    def store_messages_work(self, messages: Sequence[NewMessage]
                            ) -> Callable[[Any], list[StoredMessage]]:
        now = self.now_ms()
        items = tuple(m if m.created_at_ms is not None else attrs.evolve(m, created_at_ms=now)
                      for m in messages)
        return lambda conn: store_user_messages(conn, items)

    def messages_stored(self, messages: Sequence[StoredMessage]) -> None:
        if self.on_stored is not None:
            self.on_stored(messages)
