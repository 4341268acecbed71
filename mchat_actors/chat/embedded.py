"""The embedded ChatService: users, rooms, messages and memories in the runtime's database
(the SQLite file here; on PostgreSQL ``pg.chat_db`` gives it a handle over the runtime's pool).

    async with open_embedded_chat_service(cfg.db_path, llm=llm) as svc:
        result = await svc.send_message(room, user, text, post_id=..., respond=True, prompt=...)

Writes: given the runtime's ``store`` (``app.run`` does), every write is a request to its
storage actor (``writer.Writer``) and commits in the same group commit as the runtime's rows;
without one (tests, tools) the service writes on its own connection, one transaction a call.
Reads (search, history, admin views) run on the service's own connection in a deferred read
transaction under a ``CapacityLimiter(1)``: WAL shows them every committed write and they never
take the write lock. The service also has a nursery for debounced background memory extraction
(LLM only). Leaving the block cancels pending extractions.

Retrieval: the memories the asker may see (the room asked in, the rooms they are in, public
rooms, their personal memories) are searched; only those every reader of the reply may see
(``chat.audience``) are used, the others are counted ("N more private results, ask in a DM").
Memories are versioned (``chat.memory_store``): answers use the current version and say what it
replaced. The commands (``chat.commands``) are handled in ``chat.handlers``; questions are
answered in ``chat.questions``; summaries, extraction and the admin's views in ``chat.curation``.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast, final

import trio

from ..messages import AgentUserId, RoomId
from . import repo, units
from .analysis import Analyzer
from .answer import DEFAULT_TIMEZONE, matching
from .audience import Audience, RoomInfo
from .chat_db import ChatDatabase, ChatHandle
from .commands import parse_command, strip_mentions
from .curation import Curation
from .embeddings import Embedder, dense_query, run_embedder
from .extraction import Debouncer, ExtractionStatistics
from .handlers import Request, handle_command
from .morph import KiwiAnalyzer, explain_matches
from .protocol import (
    LLM,
    ChatRoom,
    ChatUser,
    MemoryRecord,
    NewMessage,
    ReactFn,
    SendResult,
    StoredMessage,
)
from .questions import EMPTY_PROMPT_REPLY, Answering, ReadCost
from .schema import connect

if TYPE_CHECKING:
    from ..store import Store

logger = logging.getLogger(__name__)

T = TypeVar("T")


@final
class EmbeddedChatService(Answering, Curation):
    """The embedded ``ChatService`` over a ``ChatHandle`` (SQLite: ``open_embedded_chat_service``;
    PostgreSQL: ``pg.chat_db.open_pg_embedded_chat_service``)."""

    def __init__(self, database: ChatHandle, *, llm: LLM | None, nursery: trio.Nursery,
                 extraction_debounce_s: float, timezone: str = DEFAULT_TIMEZONE,
                 mask_llm: bool = True, embeddings: Embedder | None = None) -> None:
        self.database = database
        self.analyzer = database.analyzer
        self.embeddings = embeddings
        if embeddings is not None:
            nursery.start_soon(functools.partial(run_embedder, self.read, self.db, embeddings,
                                                    cache=database.vectors))
        self.llm = llm
        self.timezone = timezone
        self.mask_llm = mask_llm
        self.read_cost = ReadCost()  # its question reads' time (``chat.questions``)
        self._extractor = Debouncer(nursery, extraction_debounce_s, self._extract_pending)

    @property
    def _conn(self) -> sqlite3.Connection:
        """The SQLite service's own connection (white-box tests)."""
        return cast(ChatDatabase, self.database)._conn  # noqa: SLF001

    # -- the database handle ---------------------------------------------------------------------

    def now_ms(self) -> int:
        return self.database.now_ms()

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.database.db(fn, *args, **kwargs)

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.database.read(fn, *args, **kwargs)

    def shares_store(self) -> bool:
        return self.database.shares_store()

    @property
    def queries(self) -> Any:
        """The queries the units run with (``chat.units.Queries``)."""
        return self.database.queries

    def store_messages_work(self, messages: Sequence[NewMessage]
                            ) -> Callable[[Any], list[StoredMessage]]:
        return self.database.store_messages_work(messages)

    def shared_work(self, fn: Callable[..., T], *args: Any) -> Callable[[Any], T]:
        return self.database.shared_work(fn, *args)

    # -- shared storage (``protocol.SharedStorage``) ---------------------------------------------

    def messages_stored(self, messages: Sequence[StoredMessage]) -> None:
        if self.llm is None:
            return
        for stored in messages:
            if stored.is_new and parse_command(stored.content) is None:
                self._extractor.push(stored.room_id, int(stored.id))

    def statistics(self) -> ExtractionStatistics:
        """Counters of background extraction (runs, failures, memories stored)."""
        return self._extractor.statistics()

    async def wait_extractions_idle(self) -> None:
        """Return once no background extraction is pending or running (for tests and demos)."""
        await self._extractor.wait_idle()

    # -- users and rooms -------------------------------------------------------------------------

    async def find_user_by_email(self, email: str) -> ChatUser | None:
        return await self.read(repo.find_user_by_email, email)

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
        stored = await self.db(units.store_user_message, room, user, content, post_id,
                               root_id, created, permalink)
        answer_key = f"{post_id}:answer" if post_id else None
        if not stored.is_new:
            if not respond or answer_key is None:
                return SendResult(user_message=stored)
            earlier = await self.read(repo.message_by_post, answer_key)
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
        """Update the message; a /remember post's memories get a new version (the old one is
        kept in their history), other memories from it are retracted and re-extracted."""
        requeue = await self.db(units.apply_edit, post_id, content, self.now_ms(),
                                extract=self.llm is not None)
        if requeue is not None:
            self._extractor.push(*requeue)

    async def delete_message(self, *, post_id: str) -> None:
        """Mark the message deleted and its memories retracted (kept, never answered)."""
        await self.db(units.apply_delete, post_id, self.now_ms())

    # -- retrieval -------------------------------------------------------------------------------

    async def search(self, room: RoomId, user: AgentUserId, query: str, *,
                     limit: int = 10) -> list[MemoryRecord]:
        """The memories matching ``query`` that a reply in ``room`` to ``user`` may show."""
        found, _ = await self.read(units.search_for_audience, room, user, query, self.now_ms(),
                                   limit, False, await dense_query(self.embeddings, query))
        return found

    async def search_scoped(self, room: RoomId, user: AgentUserId, query: str, *,
                            limit: int = 10, only_asker: bool = False
                            ) -> tuple[list[MemoryRecord], int]:
        """``(matches the reply's audience may see, how many more matches it may not)``.

        The audience is everyone who reads a reply in ``room`` (``chat.audience``), or, with
        ``only_asker``, the asker alone (a reply the runtime shows to the asker only: an
        ephemeral post or a DM). Matches outside it are counted, never returned.
        """
        found, hidden = await self.read(units.search_for_audience, room, user, query,
                                        self.now_ms(), limit, only_asker,
                                        await dense_query(self.embeddings, query))
        return found, len(await trio.to_thread.run_sync(matching, query, hidden, self.analyzer))

    async def audience_scope(self, room: RoomId, user: AgentUserId, *, only_asker: bool,
                             memory_rooms: Sequence[str]) -> tuple[Audience, dict[str, RoomInfo]]:
        """The audience of a reply in ``room`` to ``user`` (``only_asker``: one only ``user``
        sees) and kind, members and team of ``memory_rooms``, for ``chat.audience.may_use``."""
        return await self.read(units.audience_scope, room, user, only_asker, list(memory_rooms))

    async def explain(self, query: str, memories: Sequence[MemoryRecord]) -> list[str]:
        """Why each of ``memories`` matches ``query``: its concepts found exactly or through
        which expansion (glossary, Kiwi similarity, typo), one line per memory."""
        return await trio.to_thread.run_sync(explain_matches, self.analyzer, query, memories)

    async def set_room_members(self, room: RoomId, users: Sequence[AgentUserId]) -> tuple[int, int]:
        """Make ``users`` the room's members (a re-check after a reconnect); (added, removed)."""
        return await self.db(repo.set_room_members, room, users, self.now_ms())


@asynccontextmanager
async def open_embedded_chat_service(
    db_path: str,
    *,
    llm: LLM | None = None,
    extraction_debounce_s: float = 5.0,
    clock: Callable[[], float] = time.time,
    timezone: str = DEFAULT_TIMEZONE,
    mask_llm: bool = True,
    analyzer: Analyzer | None = None,
    glossary_path: str | None = None,
    embeddings: Embedder | None = None,
    store: Store | None = None,
) -> AsyncIterator[EmbeddedChatService]:
    """Open the embedded ChatService on ``db_path`` (tables created if missing).

    Args:
        db_path: the SQLite file (the runtime's; WAL lets both connections share it).
        llm: answers, summaries and extraction use it when given; else built-in answers and no
            automatic extraction.
        extraction_debounce_s: quiet time after a room's last message before extraction runs.
        clock: wall clock in seconds, for timestamps and summary windows (tests pass a fake).
        timezone: IANA name of the time zone dates are shown in (MCHAT_TIMEZONE).
        mask_llm: mask phone numbers and e-mails in text sent to the LLM (MCHAT_MASK_LLM).
        analyzer: the text analyzer (``chat.morph.KiwiAnalyzer``), loaded once by the caller
            and shared; when None, one is loaded here (in a worker thread: ~2-3 s, ~300 MB).
        glossary_path: synonym groups added to the shipped glossary (MCHAT_GLOSSARY_PATH), for
            the analyzer loaded here.
        embeddings: hybrid retrieval (``chat.embeddings``): memories are embedded in the
            background and questions searched by meaning too; None: lexical only.
        store: the runtime's store (same file): writes then join its storage actor's group
            commits instead of committing on the service's connection.

    Raises:
        ChatServiceError: the database cannot be opened.
    """
    if analyzer is None:
        kiwi = await trio.to_thread.run_sync(functools.partial(
            KiwiAnalyzer.load, **({"glossary_path": glossary_path} if glossary_path else {})))
        logger.info("chat: Kiwi analyzer loaded in %.1f s (%s)", kiwi.load_seconds,
                    kiwi.index_version)
        analyzer = kiwi
    conn = await trio.to_thread.run_sync(connect, db_path, analyzer)
    if embeddings is not None:  # said once, when the service opens
        logger.info("chat: vector search over the visible memories' vectors, kept in memory "
                    "once read (%s)", embeddings.model)
    try:
        async with trio.open_nursery() as nursery:
            database = ChatDatabase(conn, clock=clock, store=store, analyzer=analyzer)
            yield EmbeddedChatService(database, llm=llm, nursery=nursery,
                                      extraction_debounce_s=extraction_debounce_s,
                                      timezone=timezone, mask_llm=mask_llm,
                                      embeddings=embeddings)
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(conn.close)


__all__ = ["EmbeddedChatService", "open_embedded_chat_service"]
