"""The embedded ChatService: users, rooms, messages and memories in the runtime's SQLite file.

    async with open_embedded_chat_service(cfg.db_path, llm=llm) as svc:
        result = await svc.send_message(room, user, text, post_id=..., respond=True, prompt=...)

The service owns one sqlite connection used only from worker threads under a
``CapacityLimiter(1)``, and a nursery for debounced background memory extraction (LLM only).
Leaving the block cancels pending extractions.

Retrieval priority for questions: memories of the room asked in, then the asker's personal
memories, then rooms the asker is a member of; never a room the asker is not in. The commands
(``chat.commands``) are handled in ``chat.handlers``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar, final

import trio

from ..errors import ChatServiceError, ChatServiceRejected
from ..messages import AgentUserId, RoomId
from . import repo, summary
from .answer import compose_answer
from .commands import Remember, parse_command, strip_mentions
from .extraction import Debouncer, ExtractionStatistics, build_extraction_messages, parse_extraction
from .handlers import Request, handle_command
from .protocol import LLM, ChatRoom, ChatUser, MemoryRecord, ReactFn, SendResult, StoredMessage
from .schema import connect, transaction
from .search import search_memories

logger = logging.getLogger(__name__)

T = TypeVar("T")

QUESTION_MEMORIES = 8
EMPTY_PROMPT_REPLY = ("무엇을 도와드릴까요? `/help`로 명령 목록을 볼 수 있습니다. / "
                      "How can I help? `/help` lists the commands.")
EXTRACTION_CONTEXT_MESSAGES = 30


@final
class EmbeddedChatService:
    """The ``ChatService`` on SQLite. Create it with ``open_embedded_chat_service``."""

    def __init__(self, conn: sqlite3.Connection, *, llm: LLM | None, nursery: trio.Nursery,
                 extraction_debounce_s: float, clock: Callable[[], float]) -> None:
        self._conn = conn
        self.llm = llm
        self._clock = clock
        self._limiter = trio.CapacityLimiter(1)
        self._extractor = Debouncer(nursery, extraction_debounce_s, self._extract_pending)

    # -- plumbing --------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args, **kwargs)`` in one transaction in the database thread.

        Raises:
            ChatServiceError: sqlite failed.
        """

        def work() -> T:
            with transaction(self._conn):
                return fn(self._conn, *args, **kwargs)

        try:
            return await trio.to_thread.run_sync(work, limiter=self._limiter)
        except sqlite3.Error as exc:
            raise ChatServiceError(f"chat database: {getattr(fn, '__name__', 'query')}: "
                                   f"{exc}") from exc

    def statistics(self) -> ExtractionStatistics:
        """Counters of background extraction (runs, failures, memories stored)."""
        return self._extractor.statistics()

    async def wait_extractions_idle(self) -> None:
        """Return once no background extraction is pending or running (for tests and demos)."""
        await self._extractor.wait_idle()

    # -- users and rooms -------------------------------------------------------------------------

    async def find_user_by_email(self, email: str) -> ChatUser | None:
        return await self.db(repo.find_user_by_email, email)

    async def create_user(self, *, name: str, email: str | None) -> ChatUser:
        return await self.db(repo.create_user, name, email, self.now_ms())

    async def create_room(self, *, name: str, kind: str) -> ChatRoom:
        return await self.db(repo.create_room, name, kind, self.now_ms())

    async def add_room_member(self, room: RoomId, user: AgentUserId) -> None:
        await self.db(repo.add_member, room, user, self.now_ms())

    async def remove_room_member(self, room: RoomId, user: AgentUserId) -> None:
        await self.db(repo.remove_member, room, user)

    # -- messages --------------------------------------------------------------------------------

    async def send_message(
        self,
        room: RoomId,
        user: AgentUserId,
        content: str,
        *,
        post_id: str | None = None,
        root_id: str | None = None,
        created_at_ms: int | None = None,
        respond: bool = False,
        prompt: str | None = None,
        permalink: str | None = None,
        react: ReactFn | None = None,
    ) -> SendResult:
        """Store ``content`` (idempotent on ``post_id``) and, when ``respond``, answer it.

        A duplicate ``post_id`` returns the stored message with ``is_new=False``, no new
        memories, and, when ``respond``, the answer stored for it earlier (kept under
        ``<post id>:answer``); when a crash came between storing the message and answering it,
        the answer is produced now. So a runtime that re-delivers an unanswered post after a
        restart still gets exactly one answer, and a command is never applied twice.

        Raises:
            ChatServiceRejected: unknown room or user.
            ChatServiceError: the database or the LLM failed.

        Cancellation: a started database write completes; the answer may be lost.
        """
        created = created_at_ms if created_at_ms is not None else self.now_ms()
        stored = await self.db(_store_user_message, room, user, content, post_id, root_id, created)
        answer_key = f"{post_id}:answer" if post_id else None
        if not stored.is_new:
            if not respond or answer_key is None:
                return SendResult(user_message=stored)
            earlier = await self.db(repo.message_by_post, answer_key)
            if earlier is not None:
                return SendResult(user_message=stored, assistant_message=earlier["content"])
        text = prompt if prompt is not None else strip_mentions(content)
        command = parse_command(text) if respond else parse_command(content)
        if command is None and self.llm is not None and stored.is_new:
            self._extractor.push(room, int(stored.id))
        if not respond:
            return SendResult(user_message=stored)
        request = Request(room=room, user=user, message=stored, post_id=post_id,
                          permalink=permalink, react=react)
        memories: Sequence[MemoryRecord] = ()
        ephemeral = False
        if command is None and not text:
            answer = EMPTY_PROMPT_REPLY
        elif command is None:
            answer = await self.answer_question(room, user, text)
        else:
            answer, memories, ephemeral = await handle_command(self, request, command)
        await self.db(repo.insert_message, room=room, user=None, content=answer,
                      role="assistant", post_id=answer_key, root_id=root_id or post_id,
                      created_at_ms=self.now_ms())
        return SendResult(user_message=stored, assistant_message=answer,
                          extracted_memories=tuple(memories), ephemeral=ephemeral)

    async def edit_message(self, *, post_id: str, content: str) -> None:
        """Update the message and the memories sourced from it (re-masked; re-extracted)."""
        requeue = await self.db(_apply_edit, post_id, content, self.now_ms(),
                                extract=self.llm is not None)
        if requeue is not None:
            self._extractor.push(*requeue)

    async def delete_message(self, *, post_id: str) -> None:
        """Mark the message deleted and delete the memories sourced from it."""
        await self.db(_apply_delete, post_id, self.now_ms())

    # -- retrieval -------------------------------------------------------------------------------

    async def search(self, room: RoomId, user: AgentUserId, query: str, *,
                     limit: int = 10) -> list[MemoryRecord]:
        """The memories ``user`` may see from ``room`` that match ``query``, best first."""
        return await self.db(_search_visible, room, user, query, self.now_ms(), limit)

    async def answer_question(self, room: RoomId, user: AgentUserId, question: str) -> str:
        memories = await self.search(room, user, question, limit=QUESTION_MEMORIES)
        return await compose_answer(question, memories, llm=self.llm)

    # -- summaries and extraction ----------------------------------------------------------------

    async def summarize_room(self, room: RoomId, *, hours: int = 24) -> MemoryRecord | None:
        """Summarise the room's last ``hours`` hours and store it as a room memory.

        The hook for scheduled summaries: the runtime may call it e.g. daily per room and post
        the memory's content. Idempotent per (room, hours, clock hour); None when the room had
        no messages in the window (nothing is stored then).

        Raises:
            ChatServiceError: the database or the LLM failed.
        """
        now = self.now_ms()
        rows = await self.db(repo.room_messages, room, since_ms=now - hours * 3_600_000,
                             until_ms=now)
        rows = [r for r in rows if not summary.is_chatter(r["content"])]
        if not rows:
            return None
        if self.llm is not None:
            text = await summary.llm_summary(self.llm, rows, hours=hours, now_ms=now)
        else:
            text = summary.builtin_summary(rows, hours=hours, now_ms=now)
        memory, _ = await self.db(
            repo.save_memory, text, scope="room", kind="summary", room=room, owner=None,
            author=None, source_post_id=None, permalink=None, now_ms=now,
            window_key=summary.window_key(hours, now))
        return memory

    async def extract_memories(self, room: RoomId, *,
                               ids: frozenset[int] | None = None) -> list[MemoryRecord]:
        """Ask the LLM for the facts in the room's messages ``ids`` (default: the recent ones).

        Raises:
            ChatServiceError: no LLM is configured, or it failed.
        """
        if self.llm is None:
            raise ChatServiceRejected("memory extraction needs an LLM")
        rows = await self.db(repo.room_messages, room, limit=EXTRACTION_CONTEXT_MESSAGES,
                             ids=sorted(ids) if ids is not None else None)
        rows = [r for r in rows if not summary.is_chatter(r["content"])]
        if not rows:
            return []
        answer = await self.llm.complete(build_extraction_messages(rows))
        found = parse_extraction(answer, len(rows))
        return await self.db(_save_extracted, room, rows, found, self.now_ms())

    async def _extract_pending(self, room: str, ids: frozenset[int]) -> int:
        return len(await self.extract_memories(RoomId(room), ids=ids))


@asynccontextmanager
async def open_embedded_chat_service(
    db_path: str,
    *,
    llm: LLM | None = None,
    extraction_debounce_s: float = 5.0,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[EmbeddedChatService]:
    """Open the embedded ChatService on ``db_path`` (tables created if missing).

    Args:
        db_path: the SQLite file (the runtime's; WAL lets both connections share it).
        llm: answers, summaries and extraction use it when given; else built-in answers and no
            automatic extraction.
        extraction_debounce_s: quiet time after a room's last message before extraction runs.
        clock: wall clock in seconds, for timestamps and summary windows (tests pass a fake).

    Raises:
        ChatServiceError: the database cannot be opened.
    """
    conn = await trio.to_thread.run_sync(connect, db_path)
    try:
        async with trio.open_nursery() as nursery:
            yield EmbeddedChatService(conn, llm=llm, nursery=nursery,
                                      extraction_debounce_s=extraction_debounce_s, clock=clock)
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(conn.close)


# -- units of work (run in the database thread) ----------------------------------------------------


def _store_user_message(conn: sqlite3.Connection, room: str, user: str, content: str,
                        post_id: str | None, root_id: str | None,
                        created_ms: int) -> StoredMessage:
    if not repo.room_exists(conn, room):
        raise ChatServiceRejected(f"unknown room {room}")
    if not repo.user_exists(conn, user):
        raise ChatServiceRejected(f"unknown user {user}")
    return repo.insert_message(conn, room=room, user=user, content=content, role="user",
                               post_id=post_id, root_id=root_id, created_at_ms=created_ms)


def _search_visible(conn: sqlite3.Connection, room: str, user: str, query: str, now_ms: int,
                    limit: int) -> list[MemoryRecord]:
    rooms = repo.visible_rooms(conn, user, room)
    return search_memories(conn, query, rooms=rooms, owner=user, current_room=room,
                           now_ms=now_ms, limit=limit)


def _apply_edit(conn: sqlite3.Connection, post_id: str, content: str, now_ms: int, *,
                extract: bool) -> tuple[str, int] | None:
    """Edit the message and its memories; the (room, message id) to re-extract, if any."""
    row = repo.message_by_post(conn, post_id)
    if row is None or row["deleted_at"] is not None:
        return None
    repo.edit_message(conn, post_id, content, now_ms)
    command = parse_command(content)
    for memory in repo.memories_from_post(conn, post_id):
        if memory["kind"] == "remember" and isinstance(command, Remember) and command.text:
            repo.update_memory_content(conn, memory["id"], command.text, now_ms)
        elif memory["kind"] != "summary":
            repo.delete_memory(conn, memory["id"], now_ms)
    if extract and command is None and row["role"] == "user":
        return row["room_id"], row["id"]
    return None


def _apply_delete(conn: sqlite3.Connection, post_id: str, now_ms: int) -> None:
    repo.delete_message(conn, post_id, now_ms)
    for memory in repo.memories_from_post(conn, post_id):
        repo.delete_memory(conn, memory["id"], now_ms)


def _save_extracted(conn: sqlite3.Connection, room: str, rows: list[sqlite3.Row],
                    found: list[tuple[str, int]], now_ms: int) -> list[MemoryRecord]:
    saved = []
    for content, index in found:
        source = rows[index]
        memory, _ = repo.save_memory(
            conn, content, scope="room", kind="extracted", room=room, owner=None,
            author=source["user_id"], source_post_id=source["mchat_post_id"], permalink=None,
            now_ms=now_ms)
        saved.append(memory)
    return saved


__all__ = ["EmbeddedChatService", "open_embedded_chat_service"]
