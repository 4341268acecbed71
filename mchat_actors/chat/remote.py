"""The remote ChatService (``CHAT_BACKEND=remote``): memories live in an AI Memory Agent's Agent
API (illing1230/ai-memory-agent, src/agent/router.py and src/agent/service.py at ``0d62821``).

    async with open_embedded_chat_service(db_path) as local, \\
            open_remote_chat_service(cfg.chat, local=local, llm=llm) as svc:
        await svc.send_message(room, user, text, post_id=..., respond=True, prompt=...)

Our SQLite stays the single source of truth: users, rooms, members and messages are kept by the
inner ``local`` ChatService (the embedded one, opened without an LLM so it extracts nothing).
What goes to the agent, and how (``{a}`` = ``/api/v1/agents/{CHAT_BACKEND_AGENT_ID}``):

- ``/remember`` -> ``POST {a}/data`` ``data_type "memory"`` (masked). The server turns it into a
  memory with ``scope "agent"``; our audience fields ride in its metadata (``mchat_scope``,
  ``mchat_room_id``, ``mchat_owner_id``, ``mchat_post_id``, ``mchat_permalink``) and come back
  in every search result. A re-delivered post is looked up by ``mchat_post_id`` first.
- questions, ``/search`` -> ``POST {a}/memories/search`` with ``context_sources
  {"include_agent": true}`` (without it the server searches nothing). Results are mapped from
  the real fields (``memory_id``, ``scope``, ``category``, ``importance``, ``score``, ISO
  ``created_at``, ``metadata``). The server returns at most 5 per source.
- ``/memory`` -> ``GET {a}/data?data_type=memory`` (an empty query lists nothing: the server
  embeds ``""``).
- ``/forget <query>`` -> search, the best visible match covering the query's words, then
  ``DELETE {a}/memories/{memory_id}`` and the same for its agent_data row (the server's
  delete of a memory leaves the data row that ``/memory`` lists).
- Plain messages are not uploaded: the server never turns ``data_type "message"`` into
  memories, each upload would spend one of the key's 60 requests a minute that questions need,
  and it would copy private channels' text to a second place for nothing.
- ``external_user_id`` is not sent: the server resolves it to a mapped internal user, whose
  agent memories a later search (resolved the same way) may not see. All memories stay in the
  instance owner's pool; who may read them is decided here.

Audience: every search, ``/memory`` list and ``/forget`` goes through
``remote_records.audience_filter`` with the rules of ``chat.audience`` (the embedded service's):
the reply's audience (room kind, members, teams) and the kind, members and team of each
memory's room come from our local store (``audience_scope``). A hit outside it is never quoted
nor sent to an LLM; answers and ``/search`` count it ("N more private results, ask in a DM").
A memory without a room (written through the Agent API by someone else) is shown nowhere
unless marked team-wide (``mchat_scope "team"``, ``mchat_team_id``) for a team every reader is
in. ``/search`` and ``/memory`` replies are for the asker alone (ephemeral). ``/forget`` deletes
only what the reply may show and the asker could have written (their room, a room they are in).

Edits and deletes: an edited ``/remember`` post replaces its memory in the agent (delete the
old memory and row, store the new text; the API has no update), a deleted one deletes it.
Summaries come from the local store. HTTP (rate
limit, 429/5xx retries, key never logged) is ``chat.agent_http``; the key goes in ``X-API-Key``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar, assert_never, final, runtime_checkable
from urllib.parse import quote

import attrs
import httpx

from ..config import ChatConfig
from ..errors import ConfigError
from ..messages import AgentUserId, RoomId
from . import repo
from .agent_api import AgentApi
from .agent_http import AgentHttp, agent_bucket, agent_client
from .analysis import Analyzer, analyze_query, relevance
from .answer import compose_answer, format_memory, hidden_note, is_korean, matching
from .audience import Audience, RoomInfo
from .commands import (
    Command,
    Forget,
    Help,
    ListMemories,
    Remember,
    Search,
    Summarize,
    parse_command,
    strip_mentions,
)
from .handlers import FORGET_MIN_RELEVANCE, summarize_with_reactions
from .masking import mask_sensitive
from .protocol import LLM, ChatRoom, ChatService, ChatUser, MemoryRecord, ReactFn, SendResult
from .remote_records import (
    audience_filter,
    forgettable,
    hidden_elsewhere,
    parse_server_time,
    record_from_result,
)
from .remote_records import meta as _meta
from .remote_records import meta_str as _str

logger = logging.getLogger(__name__)

T = TypeVar("T")

QUESTION_MEMORIES = 8
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
class _AudienceSource(Protocol):
    async def audience_scope(self, room: RoomId, user: AgentUserId, *, only_asker: bool,
                             memory_rooms: Sequence[str]
                             ) -> tuple[Audience, dict[str, RoomInfo]]: ...


@runtime_checkable
class _Messages(Protocol):
    """A local store whose messages we can read (the embedded service)."""

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...


@runtime_checkable
class _MemberSetter(Protocol):
    async def set_room_members(self, room: RoomId,
                               users: Sequence[AgentUserId]) -> tuple[int, int]: ...


def _remembers(content: str) -> bool:
    return isinstance(parse_command(strip_mentions(content)), Remember)


Scoped = tuple[list[MemoryRecord], list[MemoryRecord], Audience, Mapping[str, RoomInfo]]


@runtime_checkable
class _Summarizer(Protocol):
    async def summarize_room(self, room: RoomId, *, hours: int = 24) -> MemoryRecord | None: ...


@final
class RemoteChatService:
    """Implements ``ChatService``. Create it with ``open_remote_chat_service``."""

    def __init__(self, *, local: ChatService, llm: LLM | None, api: AgentApi) -> None:
        self._local = local
        self._llm = llm
        self._api = api

    def __repr__(self) -> str:
        return f"RemoteChatService(api={self._api!r}, llm={self._llm!r})"

    @property
    def _analyzer(self) -> Analyzer | None:
        """The local store's text analyzer (Kiwi), so remote answers read questions alike."""
        return getattr(self._local, "analyzer", None)

    async def find_user_by_email(self, email: str) -> ChatUser | None:
        return await self._local.find_user_by_email(email)

    async def create_user(self, *, name: str, email: str | None) -> ChatUser:
        return await self._local.create_user(name=name, email=email)

    async def create_room(self, *, name: str, kind: str) -> ChatRoom:
        return await self._local.create_room(name=name, kind=kind)

    async def add_room_member(self, room: RoomId, user: AgentUserId) -> None:
        await self._local.add_room_member(room, user)

    async def remove_room_member(self, room: RoomId, user: AgentUserId) -> None:
        await self._local.remove_room_member(room, user)

    async def set_room_members(self, room: RoomId,
                               users: Sequence[AgentUserId]) -> tuple[int, int]:
        """The members re-check after a reconnect (``Mapper.resync_members``) reaches the local
        store, whose members the audience rules read; (added, removed)."""
        if not isinstance(self._local, _MemberSetter):
            return 0, 0
        return await self._local.set_room_members(room, users)

    async def edit_message(self, *, post_id: str, content: str) -> None:
        """Edit the local copy; an edited ``/remember`` post replaces its memory in the agent
        (the Agent API has no update: the old memory and its row are deleted, the new text
        stored with the same audience fields)."""
        readable, before = await self._local_text(post_id)
        await self._local.edit_message(post_id=post_id, content=content)
        if not readable or (before is not None and _remembers(before)):
            await self._follow_post(post_id, content)

    async def delete_message(self, *, post_id: str) -> None:
        """Delete the local copy; a deleted ``/remember`` post's memory is deleted in the
        agent too (hard: the Agent API keeps no history)."""
        readable, before = await self._local_text(post_id)
        await self._local.delete_message(post_id=post_id)
        if not readable or (before is not None and _remembers(before)):
            await self._follow_post(post_id, None)

    async def _local_text(self, post_id: str) -> tuple[bool, str | None]:
        """(whether the local store can tell, the post's text as stored there or None): only
        a ``/remember`` post has a memory in the agent; a store we cannot read means ask."""
        if not isinstance(self._local, _Messages):
            return False, None
        row = await self._local.db(repo.message_by_post, post_id)
        return True, (str(row["content"]) if row is not None else None)

    async def _follow_post(self, post_id: str, content: str | None) -> None:
        """Make the agent's memory of ``post_id`` say what the post now says (None: deleted).
        When the old memory cannot be found to delete, the new text is not stored either (two
        versions would both answer); that is logged."""
        items = await self._api.items_of_post(post_id)
        command = parse_command(strip_mentions(content)) if content is not None else None
        text = mask_sensitive(command.text) if isinstance(command, Remember) else ""
        if not items or (text and all(item.get("content") == text for item in items)):
            return  # nothing of this post in the agent, or an edit replayed
        fields = {k: v for k, v in _meta(items[0]).items() if k.startswith("mchat_")}
        dropped = [await self._api.drop_item(item) for item in items]
        if text and all(dropped):
            await self._api.store_memory(text, {**fields, "mchat_ref": uuid.uuid4().hex})

    async def send_message(
        self, room: RoomId, user: AgentUserId, content: str, *, post_id: str | None = None,
        root_id: str | None = None, created_at_ms: int | None = None, respond: bool = False,
        prompt: str | None = None, permalink: str | None = None, react: ReactFn | None = None,
    ) -> SendResult:
        """Store locally and, when ``respond``, answer from the agent's memories.

        A re-delivered post (``is_new=False``) asking for an answer is answered again
        (retrieval is read-only); its ``/remember`` is stored only if the agent lacks it.

        Raises:
            ChatServiceRejected: the local store or the agent refused (unknown room, bad key).
            ChatServiceTimeout, ChatServiceError: the agent or the LLM failed.
        """
        result = await self._local.send_message(
            room, user, content, post_id=post_id, root_id=root_id,
            created_at_ms=created_at_ms, respond=False, permalink=permalink)
        if not respond:
            return result
        text = prompt if prompt is not None else content
        command = parse_command(text)
        if command is None:
            answer: Outcome = (await self.answer_question(room, user, text), (), False)
        else:
            answer = await self._command(command, room, user, post_id, permalink, react,
                                         replay=not result.user_message.is_new)
        reply, memories, ephemeral = answer
        return attrs.evolve(result, assistant_message=reply, extracted_memories=memories,
                            ephemeral=ephemeral)

    async def _scoped(self, records: Sequence[MemoryRecord], room: RoomId, user: AgentUserId,
                      *, only_asker: bool) -> Scoped:
        """``records`` split by the audience of a reply in ``room`` to ``user`` (``only_asker``:
        one only ``user`` reads): (allowed, left out, the audience, the memories' rooms)."""
        audience: Audience
        rooms: Mapping[str, RoomInfo]
        if isinstance(self._local, _AudienceSource):
            audience, rooms = await self._local.audience_scope(
                room, user, only_asker=only_asker,
                memory_rooms=sorted({m.room_id for m in records if m.room_id}))
        else:  # a local store that cannot say who reads what: this room's memories only
            audience = (Audience.only(user, room) if only_asker
                        else Audience.of(kind="channel", room=room, members=(), asker=user))
            rooms = {}
        allowed, hidden = audience_filter(records, audience, rooms)
        return allowed, hidden, audience, rooms

    async def _find(self, room: RoomId, user: AgentUserId, query: str, *,
                    only_asker: bool) -> tuple[list[MemoryRecord], list[MemoryRecord]]:
        results = await self._api.search(mask_sensitive(query), limit=50)
        found, hidden, _, _ = await self._scoped([record_from_result(r) for r in results],
                                                 room, user, only_asker=only_asker)
        return found, hidden_elsewhere(hidden)

    async def search(self, room: RoomId, user: AgentUserId, query: str, *,
                     limit: int = SEARCH_RESULTS) -> list[MemoryRecord]:
        """The agent's memories matching ``query`` that a reply in ``room`` to ``user`` may
        show (``chat.audience``)."""
        found, _ = await self._find(room, user, query, only_asker=False)
        return found[:limit]

    async def search_scoped(self, room: RoomId, user: AgentUserId, query: str, *,
                            limit: int = SEARCH_RESULTS, only_asker: bool = False
                            ) -> tuple[list[MemoryRecord], int]:
        """``(matches the reply's audience may see, how many more matches it may not)``, as
        ``EmbeddedChatService.search_scoped``; ``only_asker``: a reply only ``user`` reads."""
        found, hidden = await self._find(room, user, query, only_asker=only_asker)
        return found[:limit], len(matching(query, hidden, self._analyzer))

    async def answer_question(self, room: RoomId, user: AgentUserId, question: str) -> str:
        found, hidden = await self._find(room, user, question, only_asker=False)
        return await compose_answer(question, found[:QUESTION_MEMORIES], llm=self._llm,
                                    hidden=len(matching(question, hidden, self._analyzer)),
                                    analyzer=self._analyzer)

    async def _command(self, command: Command, room: RoomId, user: AgentUserId,
                       post_id: str | None, permalink: str | None,
                       react: ReactFn | None, *, replay: bool = False) -> Outcome:
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
        found, hidden = await self._find(room, user, query, only_asker=True)
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
        visible, _, _, rooms = await self._scoped([record_from_result(r) for r in results],
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
            allowed, _, _, _ = await self._scoped(
                [m for m in records if m.room_id == room], room, user, only_asker=True)
            found += allowed
            offset += len(items)
            if len(found) >= SEARCH_RESULTS or not items or offset >= total:
                break
        found = found[:SEARCH_RESULTS]
        if not found:
            return "이 방에 저장된 기억이 없습니다. `/remember <내용>`으로 추가하세요.", (), True
        lines = [format_memory(m, korean=True) for m in found]
        return "\n".join([f"이 방의 기억 {len(found)}개:", *lines]), (), True

    async def summarize_room(self, room: RoomId, *, hours: int = 24) -> MemoryRecord | None:
        """Scheduled summaries (``actors.summaries``): from the local store, if it can."""
        if not isinstance(self._local, _Summarizer):
            return None
        return await self._local.summarize_room(room, hours=hours)

    async def _summarize(self, room: RoomId, hours: int, react: ReactFn | None) -> Outcome:
        if not isinstance(self._local, _Summarizer):
            return "요약은 embedded 백엔드에서만 지원됩니다. / Summaries need the embedded " \
                   "backend.", (), False
        return await summarize_with_reactions(self._local.summarize_room, room, hours, react)


@asynccontextmanager
async def open_remote_chat_service(
    cfg: ChatConfig, *, local: ChatService, llm: LLM | None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[RemoteChatService]:
    """A ``RemoteChatService`` for ``cfg.backend_url`` with one pooled HTTP client.

    Args:
        cfg: ``backend_url``, ``backend_api_key``, ``backend_agent_id``,
            ``backend_rate_per_min`` and ``timeout_s`` (per HTTP request) are used.
        local: the ChatService that keeps users, rooms and messages (the embedded one).
        llm: answers questions from the retrieved memories; None: the built-in answerer.
        transport: for tests (``httpx.MockTransport``).

    Raises:
        ConfigError: the URL, key or agent id is missing.
    """
    if not (cfg.backend_url and cfg.backend_api_key and cfg.backend_agent_id):
        raise ConfigError(["CHAT_BACKEND_URL, CHAT_BACKEND_API_KEY and CHAT_BACKEND_AGENT_ID "
                           "are required when CHAT_BACKEND=remote"])
    base = f"{cfg.backend_url.rstrip('/')}/api/v1/agents/{quote(cfg.backend_agent_id, safe='')}/"
    client = agent_client(base, timeout_s=cfg.timeout_s, transport=transport,
                          headers={"X-API-Key": cfg.backend_api_key.reveal()})
    async with client:
        http = AgentHttp(client, agent_bucket(cfg.backend_rate_per_min))
        yield RemoteChatService(local=local, llm=llm, api=AgentApi(http))


__all__ = ["AgentApi", "RemoteChatService", "audience_filter", "open_remote_chat_service",
           "parse_server_time", "record_from_result"]
