"""The remote ChatService (``CHAT_BACKEND=remote``): memories live in an existing AI Memory Agent.

    async with open_embedded_chat_service(db_path) as local, \\
            open_remote_chat_service(cfg.chat, local=local, llm=llm) as svc:
        await svc.send_message(room, user, text, post_id=..., respond=True, prompt=...)

Our SQLite stays the single source of truth: users, rooms, members and messages are kept by the
inner ``local`` ChatService (the embedded one, opened without an LLM so it does not extract
memories of its own). Memories and retrieval go to the agent's Agent API:

- every new message (by post id; duplicates stop at the local store) -> ``POST data`` with
  ``data_type "message"``; ``/remember`` -> ``data_type "memory"``; both masked first;
- questions, ``/search`` and ``/memory`` -> ``POST memories/search``; results are kept when they
  belong to this room, to no room (agent-wide knowledge) or, for ``"scope": "personal"``, to
  the asker. The ``external_user_id`` we send is the agent user id (``ChatUser.id``);
- the Agent API cannot delete: ``/forget`` says so, and edits and deletes change only the
  local copy. Summaries come from the local service's ``summarize_room`` when it has one.

Every request takes a token from one ``TokenBucket`` of ``backend_rate_per_min`` per 60 s
(waiting, never failing); 429 blocks the bucket for ``Retry-After`` and retries (5 times); 5xx
and network errors retry 3 times with backoff 0.5, 1, 2 s. The key is sent in ``X-API-Key``
and appears in no log, error or repr.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol, assert_never, final, runtime_checkable
from urllib.parse import quote

import attrs
import httpx
import trio

from ..config import ChatConfig
from ..errors import (
    ChatServiceError,
    ChatServiceRejected,
    ChatServiceTimeout,
    ConfigError,
)
from ..messages import AgentUserId, RoomId
from ..ratelimit import TokenBucket
from .answer import compose_answer, format_memory, is_korean
from .commands import (
    Command,
    Forget,
    Help,
    ListMemories,
    Remember,
    Search,
    Summarize,
    parse_command,
)
from .handlers import summarize_with_reactions
from .llm import RetryPolicy, retry_after_s
from .masking import mask_sensitive
from .protocol import LLM, ChatRoom, ChatService, ChatUser, MemoryRecord, ReactFn, SendResult

logger = logging.getLogger(__name__)

QUESTION_MEMORIES = 8
SEARCH_RESULTS = 10
MAX_RATE_LIMIT_RETRIES = 5
DEFAULT_RETRY = RetryPolicy()  # 3 retries, 0.5 s backoff, factor 2

HELP_TEXT = """\
사용할 수 있는 명령 / Commands
- `/remember <내용>`: AI Memory Agent에 기억으로 저장 / store a memory in the AI Memory Agent
- `/search <검색어>`: 기억 검색 (나에게만 표시) / search memories (shown only to you)
- `/memory`: 이 방의 기억 목록 / list this room's memories
- `/forget`: 원격 백엔드에서는 지원되지 않음 / not supported by the remote backend
- `/help`: 이 도움말 / this help
- `@ai 요약 [N시간]`: 최근 N시간 대화 요약 / summary of the last N hours
그 밖의 말은 질문으로 보고 저장된 기억으로 답합니다. Anything else is a question."""

Outcome = tuple[str, tuple[MemoryRecord, ...], bool]


@runtime_checkable
class _Summarizer(Protocol):
    async def summarize_room(self, room: RoomId, *, hours: int = 24) -> MemoryRecord | None: ...


@final
class AgentApi:
    """The Agent API of one agent: rate limit, retries and error translation."""

    def __init__(self, client: httpx.AsyncClient, bucket: TokenBucket, *,
                 retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self._client = client
        self._bucket = bucket
        self._retry = retry

    def __repr__(self) -> str:
        return f"AgentApi(base_url={str(self._client.base_url)!r}, bucket={self._bucket!r})"

    async def post_data(self, data_type: str, content: str, *, external_user_id: str,
                        metadata: Mapping[str, Any]) -> str:
        """Store one item; the id the agent gave it."""
        body = {"data_type": data_type, "content": content,
                "external_user_id": external_user_id,
                "metadata": {k: v for k, v in metadata.items() if v is not None}}
        answer = await self._post("data", body)
        return str(answer.get("id", "")) if isinstance(answer, dict) else ""

    async def search(self, query: str, *, limit: int,
                     external_user_id: str) -> list[Mapping[str, Any]]:
        """The agent's search results, best first."""
        body = {"query": query, "limit": limit, "external_user_id": external_user_id}
        answer = await self._post("memories/search", body)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise ChatServiceError("the memory agent answered a search without results")
        return [r for r in results if isinstance(r, dict) and isinstance(r.get("content"), str)]

    async def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST under the rate limit with retries; the decoded JSON answer.

        Raises:
            ChatServiceRejected: 4xx other than 429 (bad key, unknown agent, bad body).
            ChatServiceTimeout: the last of the retried failures was an HTTP timeout.
            ChatServiceError: 5xx/network errors after 3 retries, 429 after 5, bad JSON.
        """
        failures = rate_limited = 0
        while True:
            await self._bucket.acquire()
            cause: httpx.TransportError | None = None
            try:
                response = await self._client.post(path, json=body)
            except httpx.TransportError as exc:
                cause, problem = exc, type(exc).__name__
            else:
                status = response.status_code
                if response.is_success:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise ChatServiceError(f"the memory agent answered {path} with bad "
                                               "JSON") from exc
                if status == 429:
                    wait = retry_after_s(response)
                    logger.warning("remote: %s rate limited, retry after %s s", path, wait)
                    if rate_limited >= MAX_RATE_LIMIT_RETRIES:
                        raise ChatServiceError(f"the memory agent kept rate limiting {path}")
                    if wait is None:
                        wait = self._retry.delay_s(rate_limited)
                    self._bucket.penalize(min(self._retry.max_retry_after_s, wait))
                    rate_limited += 1
                    continue
                if status < 500:
                    raise ChatServiceRejected(f"the memory agent refused {path}: HTTP {status}")
                problem = f"HTTP {status}"
            logger.warning("remote: %s %s (failure %d)", path, problem, failures + 1)
            if failures >= self._retry.retries:
                timed_out = isinstance(cause, httpx.TimeoutException)
                error = ChatServiceTimeout if timed_out else ChatServiceError
                raise error(f"the memory agent failed {path}: {problem}") from cause
            await trio.sleep(self._retry.delay_s(failures))
            failures += 1


def _record(result: Mapping[str, Any]) -> MemoryRecord:
    meta = result.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    owner, score, created = (result.get("external_user_id"), result.get("score"),
                             meta.get("created_at_ms"))
    return MemoryRecord(
        id=str(result.get("id", "")), content=str(result["content"]),
        scope="personal" if meta.get("scope") == "personal" else "room",
        room_id=meta.get("room_id"),
        owner_id=AgentUserId(owner) if isinstance(owner, str) else None,
        source_post_id=meta.get("post_id"), permalink=meta.get("permalink"),
        created_at_ms=created if isinstance(created, int) else 0,
        score=float(score) if isinstance(score, int | float) else 0.0,
    )


def _visible(memory: MemoryRecord, room: RoomId, user: AgentUserId) -> bool:
    if memory.scope == "personal":
        return memory.owner_id == user
    return memory.room_id is None or memory.room_id == room


@final
class RemoteChatService:
    """Implements ``ChatService``. Create it with ``open_remote_chat_service``."""

    def __init__(self, *, local: ChatService, llm: LLM | None, api: AgentApi) -> None:
        self._local = local
        self._llm = llm
        self._api = api

    def __repr__(self) -> str:
        return f"RemoteChatService(api={self._api!r}, llm={self._llm!r})"

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

    async def edit_message(self, *, post_id: str, content: str) -> None:
        """Edit the local copy only: the Agent API cannot change stored data."""
        await self._local.edit_message(post_id=post_id, content=content)

    async def delete_message(self, *, post_id: str) -> None:
        """Delete the local copy only: the Agent API cannot delete stored data."""
        await self._local.delete_message(post_id=post_id)

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
        """Store locally, send the (masked) message to the agent, and answer when ``respond``.

        A duplicate ``post_id`` (``is_new=False`` from the local store) is not sent again; when
        it asks for an answer (the runtime re-delivers a post it never answered, after a crash)
        the answer is produced again (retrieval is read-only).

        Raises:
            ChatServiceRejected: the local store or the agent refused (unknown room, bad key).
            ChatServiceTimeout, ChatServiceError: the agent or the LLM failed.
        """
        result = await self._local.send_message(
            room, user, content, post_id=post_id, root_id=root_id,
            created_at_ms=created_at_ms, respond=False, permalink=permalink)
        stored = result.user_message
        if not stored.is_new and not respond:
            return result
        if stored.is_new:
            await self._api.post_data(
                "message", mask_sensitive(content), external_user_id=user,
                metadata={"room_id": room, "post_id": post_id, "root_id": root_id,
                          "permalink": permalink, "created_at_ms": stored.created_at_ms})
        if not respond:
            return result
        text = prompt if prompt is not None else content
        command = parse_command(text)
        if command is None:
            answer: Outcome = (await self.answer_question(room, user, text), (), False)
        else:
            answer = await self._command(command, room, user, post_id, permalink, react,
                                         replay=not stored.is_new)
        reply, memories, ephemeral = answer
        return attrs.evolve(result, assistant_message=reply, extracted_memories=memories,
                            ephemeral=ephemeral)

    async def search(self, room: RoomId, user: AgentUserId, query: str, *,
                     limit: int = SEARCH_RESULTS) -> list[MemoryRecord]:
        """The agent's memories ``user`` may see from ``room`` that match ``query``."""
        results = await self._api.search(mask_sensitive(query), limit=min(50, limit * 3),
                                         external_user_id=user)
        found = [m for m in map(_record, results) if _visible(m, room, user)]
        return found[:limit]

    async def answer_question(self, room: RoomId, user: AgentUserId, question: str) -> str:
        memories = await self.search(room, user, question, limit=QUESTION_MEMORIES)
        return await compose_answer(question, memories, llm=self._llm)

    async def _command(self, command: Command, room: RoomId, user: AgentUserId,
                       post_id: str | None, permalink: str | None,
                       react: ReactFn | None, *, replay: bool = False) -> Outcome:
        match command:
            case Remember(text=text):
                return await self._remember(room, user, text, post_id, permalink, replay)
            case Search(query=query):
                return await self._search(room, user, query)
            case Forget(target=target):
                if is_korean(target) or not target:
                    return "원격 백엔드(AI Memory Agent)에서는 기억 삭제(/forget)를 지원하지 " \
                           "않습니다.", (), False
                return "Forgetting is not supported with the remote backend " \
                       "(the AI Memory Agent's API cannot delete memories).", (), False
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
        """``replay``: a re-delivered post; its memory was posted before and is not resent."""
        if not text:
            return "사용법: `/remember <기억할 내용>`", (), False
        masked = mask_sensitive(text)
        reply = f"기억했습니다: {masked}" if is_korean(text) else f"Remembered: {masked}"
        if replay:
            return reply, (), False
        memory_id = await self._api.post_data(
            "memory", masked, external_user_id=user,
            metadata={"scope": "room", "room_id": room, "post_id": post_id,
                      "permalink": permalink})
        memory = MemoryRecord(id=memory_id, content=masked, scope="room", room_id=room,
                              owner_id=user, source_post_id=post_id, permalink=permalink)
        return reply, (memory,), False

    async def _search(self, room: RoomId, user: AgentUserId, query: str) -> Outcome:
        korean = is_korean(query) or not query
        if not query:
            return "사용법: `/search <검색어>`", (), True
        found = await self.search(room, user, query)
        if not found:
            return (f"'{query}'에 맞는 기억이 없습니다." if korean
                    else f"No memory matches '{query}'."), (), True
        head = (f"'{query}' 검색 결과 {len(found)}건:" if korean
                else f"{len(found)} memories match '{query}':")
        lines = [format_memory(m, korean=korean) for m in found]
        return "\n".join([head, *lines]), (), True

    async def _list(self, room: RoomId, user: AgentUserId) -> Outcome:
        found = await self.search(room, user, "")
        if not found:
            return "이 방에 저장된 기억이 없습니다. `/remember <내용>`으로 추가하세요.", (), False
        lines = [format_memory(m, korean=True) for m in found]
        return "\n".join([f"이 방의 기억 {len(found)}개:", *lines]), (), False

    async def _summarize(self, room: RoomId, hours: int, react: ReactFn | None) -> Outcome:
        if not isinstance(self._local, _Summarizer):
            return "요약은 embedded 백엔드에서만 지원됩니다. / Summaries need the embedded " \
                   "backend.", (), False
        return await summarize_with_reactions(self._local.summarize_room, room, hours, react)



@asynccontextmanager
async def open_remote_chat_service(
    cfg: ChatConfig,
    *,
    local: ChatService,
    llm: LLM | None,
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
    per_window = max(1, int(cfg.backend_rate_per_min))
    bucket = TokenBucket(cfg.backend_rate_per_min / 60.0, burst=min(10, per_window),
                         window_s=60.0)
    base = f"{cfg.backend_url.rstrip('/')}/api/v1/agents/{quote(cfg.backend_agent_id, safe='')}/"
    client = httpx.AsyncClient(
        base_url=base,
        headers={"X-API-Key": cfg.backend_api_key.reveal(), "Accept": "application/json"},
        timeout=httpx.Timeout(cfg.timeout_s, connect=min(10.0, cfg.timeout_s)),
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
        transport=transport,
    )
    async with client:
        yield RemoteChatService(local=local, llm=llm, api=AgentApi(client, bucket))


__all__ = ["AgentApi", "RemoteChatService", "open_remote_chat_service"]
