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

Modules: this one is the ``ChatService`` (local store, questions, edits and deletes);
``remote_commands`` runs the slash commands and the search every answer makes;
``remote_records`` turns the agent's rows into ``MemoryRecord``s and holds the audience filter.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar, final, runtime_checkable
from urllib.parse import quote

import attrs
import httpx

from ..config import ChatConfig
from ..errors import ConfigError
from ..messages import AgentUserId, RoomId
from . import repo
from .agent_api import AgentApi
from .agent_http import AgentHttp, agent_bucket, agent_client
from .analysis import Analyzer
from .answer import compose_answer, matching
from .commands import Remember, parse_command, strip_mentions
from .masking import mask_sensitive
from .protocol import (
    LLM,
    ChatRoom,
    ChatService,
    ChatUser,
    MemoryRecord,
    NewMessage,
    ReactFn,
    SendResult,
    SharedStorage,
    StoredMessage,
)
from .remote_commands import HELP_TEXT, SEARCH_RESULTS, AgentCommands, Outcome, Summarizer
from .remote_records import audience_filter, parse_server_time, record_from_result
from .remote_records import meta as _meta

logger = logging.getLogger(__name__)

T = TypeVar("T")

QUESTION_MEMORIES = 8


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


@final
class RemoteChatService:
    """Implements ``ChatService``. Create it with ``open_remote_chat_service``."""

    def __init__(self, *, local: ChatService, llm: LLM | None, api: AgentApi) -> None:
        self._local = local
        self._llm = llm
        self._api = api
        self._commands = AgentCommands(api=api, local=local, analyzer=lambda: self._analyzer)

    def __repr__(self) -> str:
        return f"RemoteChatService(api={self._api!r}, llm={self._llm!r})"

    # -- shared storage (``protocol.SharedStorage``) ---------------------------------------------
    # A plain post is stored in the local store only (the agent keeps memories, not messages:
    # ``send_message`` without ``respond``). When that store writes through the runtime's
    # storage actor, a lane's plain posts join the runtime's request (seen marks, cursor) as
    # with the embedded backend: one request per run, not two per post. Questions and commands
    # still take ``send_message`` (the agent answers them).

    def shares_store(self) -> bool:
        return isinstance(self._local, SharedStorage) and self._local.shares_store()

    def store_messages_work(self, messages: Sequence[NewMessage]
                            ) -> Callable[[Any], list[StoredMessage]]:
        if not isinstance(self._local, SharedStorage):
            raise TypeError("the local store does not share the runtime's")
        return self._local.store_messages_work(messages)

    def messages_stored(self, messages: Sequence[StoredMessage]) -> None:
        if isinstance(self._local, SharedStorage):
            self._local.messages_stored(messages)

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
            answer = await self._commands.run(command, room, user, post_id, permalink, react,
                                         replay=not result.user_message.is_new)
        reply, memories, ephemeral = answer
        return attrs.evolve(result, assistant_message=reply, extracted_memories=memories,
                            ephemeral=ephemeral)

    async def search(self, room: RoomId, user: AgentUserId, query: str, *,
                     limit: int = SEARCH_RESULTS) -> list[MemoryRecord]:
        """The agent's memories matching ``query`` that a reply in ``room`` to ``user`` may
        show (``chat.audience``)."""
        found, _ = await self._commands.find(room, user, query, only_asker=False)
        return found[:limit]

    async def search_scoped(self, room: RoomId, user: AgentUserId, query: str, *,
                            limit: int = SEARCH_RESULTS, only_asker: bool = False
                            ) -> tuple[list[MemoryRecord], int]:
        """``(matches the reply's audience may see, how many more matches it may not)``, as
        ``EmbeddedChatService.search_scoped``; ``only_asker``: a reply only ``user`` reads."""
        found, hidden = await self._commands.find(room, user, query, only_asker=only_asker)
        return found[:limit], len(matching(query, hidden, self._analyzer))

    async def answer_question(self, room: RoomId, user: AgentUserId, question: str) -> str:
        found, hidden = await self._commands.find(room, user, question, only_asker=False)
        return await compose_answer(question, found[:QUESTION_MEMORIES], llm=self._llm,
                                    hidden=len(matching(question, hidden, self._analyzer)),
                                    analyzer=self._analyzer)

    async def summarize_room(self, room: RoomId, *, hours: int = 24) -> MemoryRecord | None:
        """Scheduled summaries (``actors.summaries``): from the local store, if it can."""
        if not isinstance(self._local, Summarizer):
            return None
        return await self._local.summarize_room(room, hours=hours)


@asynccontextmanager
async def open_remote_chat_service(
    cfg: ChatConfig, *, local: ChatService, llm: LLM | None,
    transport: httpx.AsyncBaseTransport | None = None, max_connections: int = 8,
) -> AsyncIterator[RemoteChatService]:
    """A ``RemoteChatService`` for ``cfg.backend_url`` with one pooled HTTP client.

    Args:
        cfg: ``backend_url``, ``backend_api_key``, ``backend_agent_id``,
            ``backend_rate_per_min`` and ``timeout_s`` (per HTTP request) are used.
        local: the ChatService that keeps users, rooms and messages (the embedded one).
        llm: answers questions from the retrieved memories; None: the built-in answerer.
        transport: for tests (``httpx.MockTransport``).
        max_connections: agent requests in flight at once (the runtime passes
            MCHAT_MAX_CONCURRENT_CHATS: with 8, a 1 s agent capped answers at 8/s).

    Raises:
        ConfigError: the URL, key or agent id is missing.
    """
    if not (cfg.backend_url and cfg.backend_api_key and cfg.backend_agent_id):
        raise ConfigError(["CHAT_BACKEND_URL, CHAT_BACKEND_API_KEY and CHAT_BACKEND_AGENT_ID "
                           "are required when CHAT_BACKEND=remote"])
    base = f"{cfg.backend_url.rstrip('/')}/api/v1/agents/{quote(cfg.backend_agent_id, safe='')}/"
    client = agent_client(base, timeout_s=cfg.timeout_s, transport=transport,
                          max_connections=max_connections,
                          headers={"X-API-Key": cfg.backend_api_key.reveal()})
    async with client:
        http = AgentHttp(client, agent_bucket(cfg.backend_rate_per_min))
        yield RemoteChatService(local=local, llm=llm, api=AgentApi(http))


__all__ = ["HELP_TEXT", "AgentApi", "RemoteChatService", "audience_filter",
           "open_remote_chat_service", "parse_server_time", "record_from_result"]
