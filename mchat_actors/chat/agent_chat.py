"""The agent-chat ChatService (``CHAT_BACKEND=agent-chat``): the seed's own design over HTTP.

The seed's Mattermost worker calls ``ChatService(db).send_message(room, user, content)`` inside
the AI Memory Agent and posts the ``assistant_message`` back. This backend does the same through
the agent's chat API (``chat.agent_chat_client``), so the agent's own pipeline (its commands,
answers, memory extraction and room context) serves Mattermost:

- each of our rooms (one per Mattermost channel) -> one agent chat room, created by the service
  account and named ``Mchat: <name> [<our room id>]``; each of our users -> one agent user,
  matched or created by e-mail (``<our user id>@mchat.local`` without one); members are added
  as they join. The ids are kept in ``chat.agent_chat_store``'s tables, resolved on first use.
- every stored post -> ``POST chat-rooms/{room}/messages`` as its author: addressed to the bot,
  as ``@ai <question>`` or the server's command (``/remember``, ``/search``, ``/forget``,
  ``/memory``, ``/help``; other ``/words`` as written); not addressed to the bot, as written but
  with ``@ai`` and a leading ``/`` defused (a zero-width space) so the agent neither answers nor
  runs a command nobody asked it for. The ``assistant_message`` is the reply (through our
  outbox); ``/search`` replies are ephemeral. Summaries (``요약``) come from our local store.
- edits and deletes change only our copy: the chat API cannot edit or delete a message.

Idempotency. The chat API has no idempotency key, so each post id is recorded ``sending``
before the POST and ``sent`` (with the answer) after it; a replay of a ``sent`` post returns
the stored answer and sends nothing. A ``sending`` post (our process died, or the server
answered 5xx or timed out: ``AmbiguousRequest``) is reconciled before it is sent again: the
room's messages are read and the copies of this exact text from this user are counted against
the copies we recorded ``sent``; one more means it landed (its answer is the next assistant
message). The same check runs once inline, a second after the failure, before one more send.
Remaining window: a request still in flight on the server (not yet stored) when the
reconciliation reads, or the same user sending the same text through the agent's own web UI
meanwhile, can still give a duplicate or hide one.

HTTP (pooled client, rate limit, 429) is ``chat.agent_http``. The chat API is not rate limited by
the server (its limiter covers ``/api/v1/agents/`` only), so 429s come only from a proxy.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar, final, runtime_checkable

import attrs
import httpx
import trio

from ..config import ChatConfig
from ..errors import ChatServiceError, ConfigError
from ..messages import AgentUserId, RoomId
from . import agent_chat_store as store
from . import repo
from .agent_chat_client import AgentChatClient
from .agent_http import AgentHttp, AmbiguousRequest, HttpStatusError, agent_bucket, agent_client
from .commands import Forget, Help, ListMemories, Remember, Search, Summarize, parse_command
from .handlers import summarize_with_reactions
from .protocol import ChatRoom, ChatService, ChatUser, MemoryRecord, ReactFn, SendResult

logger = logging.getLogger(__name__)

T = TypeVar("T")
ZWSP = "\u200b"
RECONCILE_AFTER_S = 1.0  # pause before reading the room after an ambiguous failure
_AI_MENTION = re.compile(r"@(?=ai(?!\w))", re.IGNORECASE)


@runtime_checkable
class LocalStore(ChatService, Protocol):
    """The embedded service: our users, rooms and messages, and its database thread."""

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    async def summarize_room(self, room: RoomId, *, hours: int = 24) -> MemoryRecord | None: ...

    async def set_room_members(self, room: RoomId,
                               users: Sequence[AgentUserId]) -> tuple[int, int]: ...


def defuse(content: str) -> str:
    """``content`` as the agent must store it when nobody addressed the bot: no ``@ai`` mention
    (src/chat/service.py ``@(\\w+)``) and no leading ``/command`` (it strips whitespace only)."""
    text = _AI_MENTION.sub("@" + ZWSP, content)
    return ZWSP + text if text.strip().startswith("/") else text


def addressed(prompt: str) -> tuple[str, bool]:
    """(what to send, whether the reply is ephemeral) for a message addressed to the bot."""
    text = prompt.strip()
    match parse_command(text):
        case Remember(text=arg):
            return f"/remember {arg}".rstrip(), False
        case Search(query=arg):
            return f"/search {arg}".rstrip(), True
        case Forget(target=arg):
            return f"/forget {arg}".rstrip(), False
        case ListMemories():
            return "/memory", False
        case Help():
            return "/help", False
        case _:
            return (text if text.startswith("/") else f"@ai {text}".rstrip()), False


@final
class AgentChatService:
    """Implements ``ChatService``. Create it with ``open_agent_chat_service``."""

    def __init__(self, *, local: LocalStore, client: AgentChatClient) -> None:
        self._local = local
        self._client = client

    def __repr__(self) -> str:
        return f"AgentChatService(client={self._client!r})"

    # -- users, rooms, members: ours first, the agent's on first use --------------------------

    async def find_user_by_email(self, email: str) -> ChatUser | None:
        return await self._local.find_user_by_email(email)

    async def create_user(self, *, name: str, email: str | None) -> ChatUser:
        return await self._local.create_user(name=name, email=email)

    async def create_room(self, *, name: str, kind: str) -> ChatRoom:
        return await self._local.create_room(name=name, kind=kind)

    async def add_room_member(self, room: RoomId, user: AgentUserId) -> None:
        await self._local.add_room_member(room, user)
        await self._ensure_member(room, user)

    async def remove_room_member(self, room: RoomId, user: AgentUserId) -> None:
        await self._local.remove_room_member(room, user)
        remote_room = await self._local.db(store.remote_room, room)
        remote_user = await self._local.db(store.remote_user, user)
        if remote_room and remote_user:
            await self._client.remove_member(remote_room, remote_user)
        await self._local.db(store.drop_member, room, user)

    async def set_room_members(self, room: RoomId,
                               users: Sequence[AgentUserId]) -> tuple[int, int]:
        """The members re-check after a reconnect (``Mapper.resync_members``): ours, then the
        agent's room (someone who left while we were disconnected leaves it too)."""
        before = await self._local.db(repo.room_members, room)
        added, removed = await self._local.set_room_members(room, users)
        remote_room = await self._local.db(store.remote_room, room)
        if remote_room is None:
            return added, removed  # not sent anything yet: members are added on first use
        for user in sorted(before - set(users)):
            remote_user = await self._local.db(store.remote_user, user)
            if remote_user:
                await self._client.remove_member(remote_room, remote_user)
            await self._local.db(store.drop_member, room, user)
        for user in sorted(set(users) - before):
            await self._ensure_member(room, user)
        return added, removed

    async def edit_message(self, *, post_id: str, content: str) -> None:
        """Our copy only: the agent's chat API cannot edit a message."""
        await self._local.edit_message(post_id=post_id, content=content)

    async def delete_message(self, *, post_id: str) -> None:
        """Our copy only: the agent's chat API cannot delete a message."""
        await self._local.delete_message(post_id=post_id)

    async def summarize_room(self, room: RoomId, *, hours: int = 24) -> MemoryRecord | None:
        """Scheduled summaries (``actors.summaries``): from our local store."""
        return await self._local.summarize_room(room, hours=hours)

    async def _user(self, user: AgentUserId) -> tuple[str, str, str]:
        """(agent user id, e-mail, name) of one of our users, created or matched if new."""
        found = await self._local.db(store.local_user, user)
        if found is None:
            raise ChatServiceError(f"unknown user {user}")
        name, email = found
        email = email or f"{user}@mchat.local"
        remote = await self._local.db(store.remote_user, user)
        if remote is None:
            remote = await self._client.user_login(name=name, email=email)
            await self._local.db(store.put_remote_user, user, remote, email)
        return remote, email, name

    async def _room(self, room: RoomId) -> str:
        remote = await self._local.db(store.remote_room, room)
        if remote is None:
            name = await self._local.db(store.local_room_name, room)
            if name is None:
                raise ChatServiceError(f"unknown room {room}")
            remote = await self._client.find_or_create_room(f"Mchat: {name} [{room}]")
            await self._local.db(store.put_remote_room, room, remote)
        return remote

    async def _ensure_member(self, room: RoomId, user: AgentUserId) -> tuple[str, str, str, str]:
        remote_room = await self._room(room)
        remote_user, email, name = await self._user(user)
        if not await self._local.db(store.member_known, room, user):
            await self._client.add_member(remote_room, remote_user)
            await self._local.db(store.put_member, room, user)
        return remote_room, remote_user, email, name

    # -- messages ----------------------------------------------------------------------------

    async def send_message(
        self, room: RoomId, user: AgentUserId, content: str, *, post_id: str | None = None,
        root_id: str | None = None, created_at_ms: int | None = None, respond: bool = False,
        prompt: str | None = None, permalink: str | None = None, react: ReactFn | None = None,
    ) -> SendResult:
        """Store locally, send to the agent's room as ``user`` (once per post id), and return
        the agent's answer when ``respond``.

        Raises:
            ChatServiceRejected: the agent refused (bad service login, not allowed).
            AmbiguousRequest: the agent may or may not have the message (a retry reconciles).
            ChatServiceError: the agent failed, or stored the message without an answer.
        """
        result = await self._local.send_message(
            room, user, content, post_id=post_id, root_id=root_id,
            created_at_ms=created_at_ms, respond=False, permalink=permalink)
        text, ephemeral = defuse(content), False
        if respond:
            asked = prompt if prompt is not None else content
            if isinstance(parse_command(asked), Summarize):
                return await self._summary(result, room, parse_command(asked), react)
            text, ephemeral = addressed(asked)
        answer = await self._deliver(room, user, text, post_id)
        if not respond:
            return result
        if answer is None:  # stored, but its LLM gave nothing: one apology, never a resend
            raise ChatServiceError("the memory agent stored the message without an answer")
        return attrs.evolve(result, assistant_message=answer, ephemeral=ephemeral)

    async def _summary(self, result: SendResult, room: RoomId, command: Any,
                       react: ReactFn | None) -> SendResult:
        reply, memories, _ = await summarize_with_reactions(
            self._local.summarize_room, room, command.hours, react)
        return attrs.evolve(result, assistant_message=reply, extracted_memories=memories)

    async def _deliver(self, room: RoomId, user: AgentUserId, text: str,
                       post_id: str | None) -> str | None:
        """Send ``text`` once per ``post_id``; the agent's answer (stored for replays)."""
        state = None if post_id is None else await self._local.db(store.post_state, post_id)
        if state is not None and state[0] == "sent":
            return state[1]
        remote_room, remote_user, email, name = await self._ensure_member(room, user)
        prior = 0
        if post_id is not None:
            prior = await self._local.db(store.begin_post, post_id, remote_room, remote_user,
                                         text)
            if state is not None:  # "sending": maybe it landed before we lost track
                landed = await self._landed(remote_room, remote_user, email, name, text, prior)
                if landed is not None:
                    return await self._finish(post_id, *landed)
        post = functools.partial(self._client.as_user, remote_user, email, name, "POST",
                                 f"chat-rooms/{remote_room}/messages", json={"content": text},
                                 idempotent=False)
        try:
            answer = await post()
        except HttpStatusError as exc:
            if exc.status != 403:
                raise
            # not a member after all (removed on the agent's side): join again, send once more
            await self._local.db(store.drop_member, room, user)
            await self._ensure_member(room, user)
            answer = await post()
        except AmbiguousRequest:
            if post_id is None:
                raise
            # the agent stores a message first thing, so after a short pause a read shows
            # whether it has it; if not, one more send (a second failure is raised)
            await trio.sleep(RECONCILE_AFTER_S)
            landed = await self._landed(remote_room, remote_user, email, name, text, prior)
            if landed is not None:
                return await self._finish(post_id, *landed)
            answer = await post()
        message = _field(answer, "user_message")
        reply = _field(answer, "assistant_message")
        content = reply.get("content") if reply else None
        if post_id is not None:
            await self._local.db(store.finish_post, post_id,
                                 str(message.get("id")) if message else None,
                                 content if isinstance(content, str) else None)
        return content if isinstance(content, str) else None

    async def _landed(self, remote_room: str, remote_user: str, email: str, name: str,
                      text: str, prior: int) -> tuple[str, str | None] | None:
        """(message id, answer) when the agent holds more copies of ``text`` from this user
        than we recorded as sent, else None."""
        rows = await self._client.messages(remote_room, remote_user, email, name)
        copies = [i for i, r in enumerate(rows) if r.get("role") == "user"
                  and r.get("user_id") == remote_user and r.get("content") == text]
        if len(copies) <= prior:
            return None
        at = copies[prior]
        reply = next((r for r in rows[at + 1:] if r.get("role") == "assistant"), None)
        logger.info("agent-chat: a post the agent already had was not sent again")
        answer = reply.get("content") if reply else None
        return str(rows[at].get("id")), answer if isinstance(answer, str) else None

    async def _finish(self, post_id: str, message_id: str, answer: str | None) -> str | None:
        await self._local.db(store.finish_post, post_id, message_id, answer)
        return answer


def _field(answer: Any, name: str) -> Mapping[str, Any] | None:
    value = answer.get(name) if isinstance(answer, dict) else None
    return value if isinstance(value, dict) else None


@asynccontextmanager
async def open_agent_chat_service(
    cfg: ChatConfig, *, local: LocalStore, transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[AgentChatService]:
    """An ``AgentChatService`` for ``cfg.backend_url`` with one pooled HTTP client.

    Args:
        cfg: ``backend_url``, ``agent_service_email``/``agent_service_password`` (the service
            account), ``agent_user_auth``, ``agent_rate_per_min``, ``timeout_s``.
        local: the embedded service (our users, rooms, messages; the mapping tables).

    Raises:
        ConfigError: the URL or the service account is missing, or a bad user auth mode.
    """
    if not (cfg.backend_url and cfg.agent_service_email):
        raise ConfigError(["CHAT_BACKEND_URL and CHAT_AGENT_SERVICE_EMAIL are required when "
                           "CHAT_BACKEND=agent-chat"])
    await local.db(store.ensure_schema)
    base = f"{cfg.backend_url.rstrip('/')}/api/v1/"
    async with agent_client(base, timeout_s=cfg.timeout_s, headers={},
                            transport=transport) as client:
        http = AgentHttp(client, agent_bucket(cfg.agent_rate_per_min))
        password = cfg.agent_service_password.reveal() if cfg.agent_service_password else ""
        yield AgentChatService(local=local, client=AgentChatClient(
            http, service_email=cfg.agent_service_email, service_password=password,
            user_auth=cfg.agent_user_auth))


__all__ = ["AgentChatService", "AmbiguousRequest", "addressed", "defuse",
           "open_agent_chat_service"]
