"""The slash commands of the remote ChatService (``chat.remote``) against the AI Memory
Agent's Agent API: ``/remember`` (stored with our audience fields), ``/search`` and ``/memory``
(ephemeral, for the asker alone), ``/forget`` (the best visible match the asker could have
written, and its data row), ``/help``, ``@ai 요약`` (from the local store); and ``find``, the
search every answer and command makes, through the audience filter
(``remote_records.scoped``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol, assert_never, final, runtime_checkable

from ..messages import AgentUserId, RoomId
from .agent_api import AgentApi
from .analysis import Analyzer, analyze_query, relevance
from .answer import format_memory, hidden_note, is_korean, matching
from .commands import Command, Forget, Help, ListMemories, Remember, Search, Summarize
from .handlers import FORGET_MIN_RELEVANCE, summarize_with_reactions
from .masking import mask_sensitive
from .protocol import ChatService, MemoryRecord, ReactFn
from .remote_records import (
    forgettable,
    hidden_elsewhere,
    record_from_result,
    scoped,
)
from .remote_records import meta as _meta
from .remote_records import meta_str as _str

SEARCH_RESULTS = 10
LIST_PAGES = 5  # /memory reads at most this many pages looking for this room's memories

HELP_TEXT = """\
사용할 수 있는 명령 / Commands
- `/remember <내용>`: AI Memory Agent에 기억으로 저장 / store a memory in the AI Memory Agent
- `/search <검색어>`: 기억 검색 (나에게만 표시) / search memories (shown only to you)
- `/memory`: 이 방의 기억 목록 (나에게만 표시) / list this room's memories (shown only to you)
- `/forget <검색어>`: 가장 잘 맞는 기억 하나 삭제 / delete the best matching memory
- `/help`: 이 도움말 / this help
- `@ai 요약 [N시간]`: 최근 N시간 대화 요약 / summary of the last N hours
그 밖의 말은 질문으로 보고 저장된 기억으로 답합니다. Anything else is a question."""

Outcome = tuple[str, tuple[MemoryRecord, ...], bool]


@runtime_checkable
class Summarizer(Protocol):
    async def summarize_room(self, room: RoomId, *, hours: int = 24) -> MemoryRecord | None: ...


@final
class AgentCommands:
    """Runs commands against ``api``; users, rooms and members come from ``local``."""

    def __init__(self, *, api: AgentApi, local: ChatService,
                 analyzer: Callable[[], Analyzer | None]) -> None:
        self._api = api
        self._local = local
        self._analyzer_of = analyzer

    @property
    def _analyzer(self) -> Analyzer | None:
        return self._analyzer_of()

    async def find(self, room: RoomId, user: AgentUserId, query: str, *,
                   only_asker: bool) -> tuple[list[MemoryRecord], list[MemoryRecord]]:
        """(the agent's matches for ``query`` a reply in ``room`` to ``user`` may show, in
        order; those it may not but some other reply could)."""
        results = await self._api.search(mask_sensitive(query), limit=50)
        found, hidden, _, _ = await scoped(self._local, [record_from_result(r) for r in results],
                                           room, user, only_asker=only_asker)
        return found, hidden_elsewhere(hidden)

    async def run(self, command: Command, room: RoomId, user: AgentUserId,
                  post_id: str | None, permalink: str | None,
                  react: ReactFn | None, *, replay: bool = False) -> Outcome:
        """The reply to ``command`` (text, memories stored, whether only the asker sees it);
        ``replay``: a re-delivered post."""
        match command:
            case Remember(text=text):
                return await self._remember(room, user, text, post_id, permalink, replay)
            case Search(query=query):
                return await self._search(room, user, query)
            case Forget(target=target):
                return await self._forget(room, user, target)
            case ListMemories():
                return await self._list(room, user)
            case Help():
                return HELP_TEXT, (), False
            case Summarize(hours=hours):
                return await self._summarize(room, hours, react)
            case _:
                assert_never(command)

    async def _remember(self, room: RoomId, user: AgentUserId, text: str,
                        post_id: str | None, permalink: str | None,
                        replay: bool = False) -> Outcome:
        """``replay``: a re-delivered post; stored again only if the agent does not have it."""
        if not text:
            return "사용법: `/remember <기억할 내용>`", (), False
        masked = mask_sensitive(text)
        reply = f"기억했습니다: {masked}" if is_korean(text) else f"Remembered: {masked}"
        if replay and post_id is not None and await self._api.items_of_post(post_id):
            return reply, (), False
        data_id = await self._api.store_memory(masked, {
            "mchat_scope": "room", "mchat_room_id": room, "mchat_owner_id": user,
            "mchat_post_id": post_id, "mchat_permalink": permalink,
            "mchat_ref": uuid.uuid4().hex})
        memory = MemoryRecord(id=data_id, content=masked, scope="room", room_id=room,
                              owner_id=user, source_post_id=post_id, permalink=permalink)
        return reply, (memory,), False

    async def _search(self, room: RoomId, user: AgentUserId, query: str) -> Outcome:
        korean = is_korean(query) or not query
        if not query:
            return "사용법: `/search <검색어>`", (), True
        # ephemeral: the runtime shows it to the asker only (or sends it by DM)
        found, hidden = await self.find(room, user, query, only_asker=True)
        found = found[:SEARCH_RESULTS]
        note = hidden_note(len(matching(query, hidden, self._analyzer)), korean=korean)
        if not found:
            return (f"'{query}'에 맞는 기억이 없습니다." if korean
                    else f"No memory matches '{query}'.") + note, (), True
        head = (f"'{query}' 검색 결과 {len(found)}건:" if korean
                else f"{len(found)} memories match '{query}':")
        lines = [format_memory(m, korean=korean) for m in found]
        return "\n".join([head, *lines]) + note, (), True

    async def _forget(self, room: RoomId, user: AgentUserId, target: str) -> Outcome:
        """Delete the best visible match, only when it covers the query's words (the vector
        search always returns its nearest items, related or not)."""
        korean = is_korean(target) or not target
        if not target:
            return "사용법: `/forget <검색어>`", (), False
        results = await self._api.search(mask_sensitive(target), limit=50)
        refs = {str(r["memory_id"]): _str(_meta(r), "mchat_ref") for r in results}
        # the reply quotes it in the room: the room's audience must see it; and it must be one
        # the asker could have written (not every team-wide memory they may read)
        visible, _, _, rooms = await scoped(self._local, [record_from_result(r) for r in results],
                                                  room, user, only_asker=False)
        query = analyze_query(target, self._analyzer)
        best = next((m for m in visible if forgettable(m, room, user, rooms)
                     and relevance(query, m.content, analyzer=self._analyzer)
                     >= FORGET_MIN_RELEVANCE), None)
        if best is None:
            return (f"'{target}'에 해당하는 기억을 찾지 못했습니다. `/search`로 먼저 확인해 보세요."
                    if korean else f"No memory you can see matches '{target}'."), (), False
        await self._api.delete(best.id)
        # the agent_data row the memory came from is listed by /memory until deleted too
        ref = refs.get(best.id)
        for item in (await self._api.memory_items())[0]:
            meta = _meta(item)
            if (_str(meta, "mchat_ref") == ref if ref else
                    item.get("content") == best.content
                    and _str(meta, "mchat_room_id", "room_id") == best.room_id):
                await self._api.delete(str(item.get("id")))
                break
        return (f"삭제했습니다: {best.content}" if korean else f"Deleted: {best.content}"), (), \
            False

    async def _list(self, room: RoomId, user: AgentUserId) -> Outcome:
        """This room's newest memories (ephemeral: for the asker alone), paging past other
        rooms' (a few pages); every row goes through the audience filter."""
        found: list[MemoryRecord] = []
        offset = 0
        for _page in range(LIST_PAGES):
            items, total = await self._api.memory_items(offset=offset)
            records = [record_from_result(r, id_key="id") for r in items]
            allowed, _, _, _ = await scoped(
                self._local, [m for m in records if m.room_id == room], room, user,
                only_asker=True)
            found += allowed
            offset += len(items)
            if len(found) >= SEARCH_RESULTS or not items or offset >= total:
                break
        found = found[:SEARCH_RESULTS]
        if not found:
            return "이 방에 저장된 기억이 없습니다. `/remember <내용>`으로 추가하세요.", (), True
        lines = [format_memory(m, korean=True) for m in found]
        return "\n".join([f"이 방의 기억 {len(found)}개:", *lines]), (), True

    async def _summarize(self, room: RoomId, hours: int, react: ReactFn | None) -> Outcome:
        if not isinstance(self._local, Summarizer):
            return "요약은 embedded 백엔드에서만 지원됩니다. / Summaries need the embedded " \
                   "backend.", (), False
        return await summarize_with_reactions(self._local.summarize_room, room, hours, react)


__all__ = ["HELP_TEXT", "LIST_PAGES", "SEARCH_RESULTS", "AgentCommands", "Outcome", "Summarizer"]
