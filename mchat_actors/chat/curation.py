"""How the embedded ChatService curates memories (``EmbeddedChatService`` builds on it): the
admin's views and actions (forget, restore, audit trail, versions) and the memories it writes
itself: room summaries and, with an LLM, facts extracted from the conversation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import trio

from ..errors import ChatServiceRejected
from ..messages import RoomId
from . import memory_store, repo, summary, units
from .answer import format_version
from .extraction import EXTRACTION_MAX_TOKENS, build_extraction_messages, parse_extraction
from .protocol import LLM, MemoryRecord
from .search import memory_from_row

if TYPE_CHECKING:
    from .analysis import Analyzer

EXTRACTION_CONTEXT_MESSAGES = 30

T = TypeVar("T")


class _Service(Protocol):
    """What ``Curation`` needs of the service it is mixed into."""

    llm: LLM | None
    timezone: str
    mask_llm: bool
    analyzer: Analyzer

    def now_ms(self) -> int: ...

    def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Awaitable[T]: ...

    def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Awaitable[T]: ...

    async def extract_memories(self, room: RoomId, *,
                               ids: frozenset[int] | None = None) -> list[MemoryRecord]: ...


class Curation:
    """Admin views and actions, summaries and extraction over the service's database."""

    # -- administration (admin API and page) ----------------------------------------------------

    async def forget_memory(self: _Service, memory_id: int, *, actor: str) -> bool:
        """Mark a memory forgotten (audited); False when it already was or does not exist."""
        return await self.db(memory_store.forget_memory, memory_id, actor=actor,
                             now_ms=self.now_ms())

    async def restore_memory(self: _Service, memory_id: int, *, actor: str) -> bool:
        """Undo a forget (audited); False when the memory is not forgotten."""
        return await self.db(memory_store.restore_memory, memory_id, actor=actor,
                             now_ms=self.now_ms())

    async def admin_memories(self: _Service, *, query: str = "", state: str = "current",
                             limit: int = 100) -> list[MemoryRecord]:
        """Memories for the admin view (see ``memory_store.admin_list``)."""
        rows = await self.read(memory_store.admin_list, query=query, state=state, limit=limit)
        return [memory_from_row(r) for r in rows]

    async def memory_audit(self: _Service, memory_id: int) -> list[dict[str, object]]:
        """The memory's audit trail, oldest first: action, actor, time, detail."""
        rows = await self.read(memory_store.audit_trail, memory_id)
        return [{k: r[k] for k in ("action", "actor", "at", "detail")} for r in rows]

    async def memory_versions(self: _Service, memory_id: int) -> list[MemoryRecord]:
        """Every version of the memory's subject, oldest first, with author and room names."""
        rows = await self.read(memory_store.versions, memory_id)
        return [memory_from_row(r) for r in rows]

    def format_version(self: _Service, memory: MemoryRecord, *, korean: bool) -> str:
        return format_version(memory, korean=korean, tz=self.timezone)

    # -- summaries and extraction ----------------------------------------------------------------

    async def summarize_room(self: _Service, room: RoomId, *,
                             hours: int = 24) -> MemoryRecord | None:
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
            text = await summary.llm_summary(self.llm, rows, hours=hours, now_ms=now,
                                             mask=self.mask_llm, tz=self.timezone)
        else:
            text = summary.builtin_summary(rows, hours=hours, now_ms=now, tz=self.timezone)
        memory, _ = await self.db(
            repo.save_memory, text, scope="room", kind="summary", room=room, owner=None,
            author=None, source_post_id=None, permalink=None, now_ms=now,
            window_key=summary.window_key(hours, now))
        return memory

    async def extract_memories(self: _Service, room: RoomId, *,
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
        answer = await self.llm.complete(build_extraction_messages(rows, mask=self.mask_llm),
                                         max_tokens=EXTRACTION_MAX_TOKENS)
        found = await trio.to_thread.run_sync(
            parse_extraction, answer, [row["content"] for row in rows], self.analyzer)
        return await self.db(units.save_extracted, room, rows, found, self.now_ms())

    async def _extract_pending(self: _Service, room: str, ids: frozenset[int]) -> int:
        return len(await self.extract_memories(RoomId(room), ids=ids))


__all__ = ["EXTRACTION_CONTEXT_MESSAGES", "Curation"]
