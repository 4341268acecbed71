"""The remote ChatService's local store on PostgreSQL (``CHAT_BACKEND=remote`` with
MCHAT_DATABASE_URL): users, rooms, members and messages in the runtime's database.

``chat.remote.RemoteChatService`` keeps memories in the AI Memory Agent and everything the
audience rules need here, in its ``local`` ChatService (on SQLite the embedded one). On
PostgreSQL that is ``PgLocalChat``: the same calls the remote service makes of its local store,
on ``pg.chat_repo``, so the rooms' teams come from the runtime's channel mapping in the same
database (public channels' memories are team-wide, as on SQLite) and no per-process file holds
part of the truth. It keeps no memories and answers nothing itself: ``send_message`` with
``respond`` is refused, and ``summarize_room`` returns the built-in (or LLM) summary of the
room's messages without storing it (the agent keeps the memories).

``db(fn, ...)`` runs ``fn(conn, ...)`` on PostgreSQL: the remote service reads a post's local
text with ``chat.repo.message_by_post``, which runs as its twin in ``pg.chat_repo``; any other
SQLite function is refused (``ChatServiceError``), never run on a psycopg connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..chat import repo, summary, units
from ..chat.analysis import Analyzer
from ..chat.audience import Audience, RoomInfo
from ..chat.protocol import (
    LLM,
    ChatRoom,
    ChatUser,
    MemoryRecord,
    ReactFn,
    SendResult,
    StoredMessage,
)
from ..chat.summary import DEFAULT_TIMEZONE
from ..errors import ChatServiceError, ChatServiceRejected, StoreError
from ..messages import AgentUserId, RoomId
from . import chat_repo
from .database import PgDatabase
from .outbox_repo import Conn

T = TypeVar("T")

_TWINS: dict[Callable[..., Any], Callable[..., Any]] = {
    repo.message_by_post: chat_repo.message_by_post,
    repo.room_members: chat_repo.room_members,
}


def store_user_message(conn: Conn, room: str, user: str, content: str, post_id: str | None,
                       root_id: str | None, created_ms: int,
                       permalink: str | None = None) -> StoredMessage:
    """``chat.units.store_user_message`` on PostgreSQL (unknown room or user: rejected)."""
    if not chat_repo.room_exists(conn, room):
        raise ChatServiceRejected(f"unknown room {room}")
    if not chat_repo.user_exists(conn, user):
        raise ChatServiceRejected(f"unknown user {user}")
    return chat_repo.insert_message(conn, room=room, user=user, content=content, role="user",
                                    post_id=post_id, root_id=root_id, created_at_ms=created_ms,
                                    permalink=permalink)


def audience_scope(conn: Conn, room: str, user: str, only_asker: bool,
                   memory_rooms: list[str]) -> tuple[Audience, dict[str, RoomInfo]]:
    """``chat.units.audience_scope`` (the same rules, one implementation) on PostgreSQL."""
    return units.audience_scope(conn, room, user, only_asker, memory_rooms, q=chat_repo)


class PgLocalChat:
    """The local ChatService of the remote backend, on PostgreSQL (module docstring)."""

    def __init__(self, database: PgDatabase, *, analyzer: Analyzer, llm: LLM | None = None,
                 clock: Callable[[], float] = time.time, timezone: str = DEFAULT_TIMEZONE,
                 mask_llm: bool = True) -> None:
        self._database = database
        self.analyzer = analyzer
        self.llm = llm
        self.clock = clock
        self.timezone = timezone
        self.mask_llm = mask_llm

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(conn, ...)`` in one transaction (a ``chat.repo`` function: its twin).

        Raises:
            ChatServiceError: the database failed, or ``fn`` is a SQLite function with no twin.
        """
        twin = _TWINS.get(fn)
        if twin is None and getattr(fn, "__module__", "").startswith("mchat_actors.chat."):
            raise ChatServiceError(f"{fn.__module__}.{getattr(fn, '__name__', fn)} has no "
                                   "PostgreSQL twin (pg/chat_local.py)")
        try:
            result: T = await self._database.run(twin or fn, *args, **kwargs)
        except StoreError as exc:
            raise ChatServiceError(f"chat database: {exc}") from exc
        return result

    # -- users and rooms -------------------------------------------------------------------------

    async def find_user_by_email(self, email: str) -> ChatUser | None:
        return await self.db(chat_repo.find_user_by_email, email)

    async def create_user(self, *, name: str, email: str | None) -> ChatUser:
        return await self.db(chat_repo.create_user, name, email, self.now_ms())

    async def create_room(self, *, name: str, kind: str) -> ChatRoom:
        return await self.db(chat_repo.create_room, name, kind, self.now_ms())

    async def add_room_member(self, room: RoomId, user: AgentUserId) -> None:
        await self.db(chat_repo.add_member, room, user, self.now_ms())

    async def remove_room_member(self, room: RoomId, user: AgentUserId) -> None:
        await self.db(chat_repo.remove_member, room, user)

    async def set_room_members(self, room: RoomId, users: Sequence[AgentUserId]
                               ) -> tuple[int, int]:
        return await self.db(chat_repo.set_room_members, room, users, self.now_ms())

    # -- messages --------------------------------------------------------------------------------

    async def send_message(
        self, room: RoomId, user: AgentUserId, content: str, *, post_id: str | None = None,
        root_id: str | None = None, created_at_ms: int | None = None, respond: bool = False,
        prompt: str | None = None, permalink: str | None = None, react: ReactFn | None = None,
    ) -> SendResult:
        """Store ``content`` (idempotent on ``post_id``). Never answers.

        Raises:
            ChatServiceRejected: unknown room or user.
            ChatServiceError: ``respond`` (the remote service answers), or the database failed.
        """
        if respond:
            raise ChatServiceError("the local store keeps messages; the remote service answers")
        created = created_at_ms if created_at_ms is not None else self.now_ms()
        stored = await self.db(store_user_message, room, user, content, post_id, root_id,
                               created, permalink)
        return SendResult(user_message=stored)

    async def edit_message(self, *, post_id: str, content: str) -> None:
        await self.db(chat_repo.edit_message, post_id, content, self.now_ms())

    async def delete_message(self, *, post_id: str) -> None:
        await self.db(chat_repo.delete_message, post_id, self.now_ms())

    # -- what the remote service asks of its local store -----------------------------------------

    async def audience_scope(self, room: RoomId, user: AgentUserId, *, only_asker: bool,
                             memory_rooms: Sequence[str]) -> tuple[Audience, dict[str, RoomInfo]]:
        return await self.db(audience_scope, room, user, only_asker, list(memory_rooms))

    async def summarize_room(self, room: RoomId, *, hours: int = 24) -> MemoryRecord | None:
        """The room's last ``hours`` hours summarised (not stored); None without messages."""
        now = self.now_ms()
        rows = await self.db(chat_repo.room_messages, room, since_ms=now - hours * 3_600_000,
                             until_ms=now)
        rows = [r for r in rows if not summary.is_chatter(r["content"])]
        if not rows:
            return None
        if self.llm is not None:
            text = await summary.llm_summary(self.llm, rows, hours=hours,  # type: ignore[arg-type]
                                             now_ms=now, mask=self.mask_llm, tz=self.timezone)
        else:
            text = summary.builtin_summary(rows, hours=hours,  # type: ignore[arg-type]
                                           now_ms=now, tz=self.timezone)
        return MemoryRecord(id=f"summary:{room}:{summary.window_key(hours, now)}", content=text,
                            scope="room", room_id=room, owner_id=None, kind="summary",
                            created_at_ms=now, updated_at_ms=now, valid_from_ms=now)
