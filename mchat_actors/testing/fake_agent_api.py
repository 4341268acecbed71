"""A twin of the real AI Memory Agent's HTTP API, served in-process under trio on real sockets.

    async with FakeAgentAPI(api_key="k", agent_id="agent-1") as fake:
        fake.seed_agent_memory("X부품 불량률 12%")
        ...  # point CHAT_BACKEND_URL at fake.url
        assert fake.world.memories

Built from illing1230/ai-memory-agent at ``0d62821`` (HEAD when issue #16 was written) with the
same framework (FastAPI), the same request/response models (``fake_agent_schemas``) and the same
rules, so a client that works against the twin works against the real server. Each route's
docstring names the real file.

Agent API (``X-API-Key``; src/agent/router.py, src/agent/service.py):

- ``POST /api/v1/agents/{agent_id}/data`` -> 200 ``AgentDataResponse``; ``data_type "memory"``
  also becomes a memory with ``scope "agent"`` whose metadata is the item's plus ``source`` and
  ``agent_instance_id``. Messages and logs are only stored (nothing turns them into memories).
- ``GET /api/v1/agents/{agent_id}/data?data_type=&limit=&offset=`` -> ``{"data", "total"}``,
  newest first.
- ``POST /api/v1/agents/{agent_id}/memories`` -> 200 ``AgentDataResponse`` (a memory item).
- ``POST /api/v1/agents/{agent_id}/memories/search`` -> ``{"results", "total", "query"}``:
  looks only in the sources ``context_sources`` switches on (none without it), at most 5 hits
  per source, reranked by similarity 0.6 + recency 0.4, ``limit`` 1..50.
- ``DELETE /api/v1/agents/{agent_id}/memories/{memory_id}`` -> 200 ``{"message"}``: a memory id
  deletes the memory; an agent_data id deletes only that data row; else 404.

The key picks the agent instance; ``{agent_id}`` in the path is never checked (the real router
ignores it, so there is no 404 for an unknown agent). A missing ``X-API-Key`` header is 422
(FastAPI validation), a wrong key 403. ``external_user_id`` resolves to the instance owner unless
an external user mapping exists (``world.mappings``). Rate limit (src/shared/rate_limiter.py):
paths under ``/api/v1/agents/`` with an ``X-API-Key`` header, 60 per key in any sliding 60 s, then
429 ``{"detail"}`` with ``Retry-After: int(oldest + 60 - now) + 1``; other paths are not limited.
Window time is trio's clock, so ``autojump_clock`` tests run it in mock time.

The chat API (auth, users, chat rooms, messages) is in ``fake_agent_chat``. ``script(Fault(...))``
makes the next matching requests fail, before the handler runs or (``after=True``) after it ran
and changed state, the way a lost response looks to a client.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

import attrs
import orjson
import trio
from fastapi import APIRouter, FastAPI, Header, HTTPException
from starlette.types import Message, Receive, Scope, Send

from .fake_agent_chat import chat_router
from .fake_agent_schemas import (
    AgentDataCreate,
    AgentDataListResponse,
    AgentDataResponse,
    AgentMemoryCreate,
    AgentMemorySearchRequest,
    AgentMemorySearchResponse,
    MessageOnly,
)
from .fake_agent_state import AgentData, AgentWorld, Instance, Memory, similarity
from .fake_openai import Status, open_asgi_server

WINDOW_S = 60.0
RATE_PER_MIN = 60  # src/shared/rate_limiter.py default_limit
bigram_score = similarity  # the old name


@attrs.frozen(kw_only=True)
class Fault:
    """Answer ``status`` (with ``Retry-After`` when set) to the next request whose path contains
    ``path``; ``after``: run the real handler first (its effects stay), then answer ``status``;
    ``delay_s``: hold the answer that long first (a client may give up or die meanwhile)."""

    status: int
    retry_after_s: float | None = None
    after: bool = False
    path: str = ""
    delay_s: float = 0.0
    method: str = ""  # only requests of this method ("" any)


@attrs.frozen(kw_only=True)
class AgentRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    json: Any
    at: float  # trio time the request arrived
    status: int


class FakeAgentAPI:
    """The AI Memory Agent twin, with its ``world`` open for seeding and inspection."""

    def __init__(self, *, api_key: str = "agent-key", agent_id: str = "agent-1",
                 owner_email: str = "agent-owner@example.com",
                 rate_per_min: int = RATE_PER_MIN, world: AgentWorld | None = None) -> None:
        self.api_key = api_key
        self.agent_id = agent_id
        self.rate_per_min = rate_per_min
        self.world = world or AgentWorld()
        self.owner = (self.world.user_by_email(owner_email)
                      or self.world.add_user("agent owner", owner_email))
        self.instance = (self.world.instances.get(agent_id)
                         or self.world.add_instance(owner=self.owner, api_key=api_key,
                                                    agent_id=agent_id))
        self.requests: list[AgentRequest] = []
        self.url = ""  # set on entry: http://127.0.0.1:<port>
        self._faults: collections.deque[Fault] = collections.deque()
        self._windows: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque)
        self._stack = AsyncExitStack()
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        app.include_router(agent_router(self.world), prefix="/api/v1")
        app.include_router(chat_router(self.world), prefix="/api/v1")
        self._app = app

    def __repr__(self) -> str:
        return f"FakeAgentAPI(url={self.url!r}, memories={len(self.world.memories)})"

    async def __aenter__(self) -> FakeAgentAPI:
        self.url = await self._stack.enter_async_context(open_asgi_server(self._gate))
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        return await self._stack.__aexit__(*exc_info)  # type: ignore[arg-type]

    # -- test helpers ------------------------------------------------------------------------

    def script(self, *faults: Fault | Status) -> None:
        """Make the next matching requests fail, in order."""
        for fault in faults:
            self._faults.append(fault if isinstance(fault, Fault) else
                                Fault(status=fault.status, retry_after_s=fault.retry_after_s))

    def seed_agent_memory(self, content: str, *, metadata: Mapping[str, Any] | None = None,
                          category: str | None = None) -> Memory:
        """A memory as if stored through ``POST data`` by someone else (owner's pool)."""
        meta = {**(metadata or {}), "source": "agent", "agent_instance_id": self.instance.id}
        return self.world.add_memory(content, owner_id=self.owner.id, scope="agent",
                                     metadata=meta, category=category)

    def seed_memory_item(self, content: str, *,
                         metadata: Mapping[str, Any] | None = None) -> AgentData:
        """A memory item as ``POST data`` stores it (a data row and its memory)."""
        body = AgentDataCreate(data_type="memory", content=content,
                               metadata=dict(metadata) if metadata else None)
        return receive_data(self.world, self.instance, self.owner.id, body)

    def accepted_times(self) -> list[float]:
        """Arrival times of the Agent API requests that passed the rate limit."""
        return [r.at for r in self.requests
                if r.path.startswith("/api/v1/agents/") and r.status != 429]

    def calls(self, method: str, fragment: str) -> list[AgentRequest]:
        return [r for r in self.requests if r.method == method and fragment in r.path]

    # -- the gate: rate limit, scripted faults, request log ----------------------------------

    async def _gate(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        at = trio.current_time()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        chunks: list[bytes] = []

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        path: str = scope["path"]
        safe = {k: v for k, v in headers.items() if k in ("x-api-key", "authorization",
                                                          "x-user-id")}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":  # logged before the client sees it
                raw = b"".join(chunks)
                try:
                    body = orjson.loads(raw) if raw else None
                except orjson.JSONDecodeError:
                    body = None
                self.requests.append(AgentRequest(method=scope["method"], path=path,
                                                  headers=safe, json=body, at=at,
                                                  status=message["status"]))
            await send(message)

        limited = self._rate_limited(path, headers, at)
        fault = None if limited else self._take_fault(scope["method"], path)
        if limited is not None:
            await _json(recording_send, 429, {"detail": "Rate limit exceeded. Too many requests."},
                        {"Retry-After": str(limited)})
        elif fault is not None and not fault.after:
            await _fault(recording_send, fault)
        elif fault is not None:
            async def discard(message: Message) -> None:
                pass

            await self._app(scope, recording_receive, discard)
            await _fault(recording_send, fault)
        else:
            await self._app(scope, recording_receive, recording_send)

    def _rate_limited(self, path: str, headers: Mapping[str, str], at: float) -> int | None:
        """Retry-After seconds when this request is over the limit (src/shared/rate_limiter.py)."""
        key = headers.get("x-api-key")
        if not path.startswith("/api/v1/agents/") or not key:
            return None
        window = self._windows[key]
        while window and window[0] <= at - WINDOW_S:
            window.popleft()
        if len(window) >= self.rate_per_min:
            return max(1, int(window[0] + WINDOW_S - at) + 1)
        window.append(at)
        return None

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.path in path and fault.method in ("", method):
                self._faults.remove(fault)
                return fault
        return None


async def _json(send: Send, status: int, body: Any, headers: Mapping[str, str] | None = None,
                ) -> None:
    raw = orjson.dumps(body)
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


async def _fault(send: Send, fault: Fault) -> None:
    await trio.sleep(fault.delay_s)
    headers = {} if fault.retry_after_s is None else {"Retry-After": f"{fault.retry_after_s:g}"}
    await _json(send, fault.status, {"detail": "scripted failure"}, headers)


# -- the Agent API routes (src/agent/router.py) ----------------------------------------------------


def receive_data(world: AgentWorld, instance: Instance, user: str,
                 body: AgentDataCreate) -> AgentData:
    """src/agent/service.py receive_agent_data and _convert_to_memory."""
    item = AgentData(id=world.new_id("data"), agent_instance_id=instance.id,
                     data_type=body.data_type, content=body.content,
                     external_user_id=body.external_user_id, internal_user_id=user,
                     metadata=body.metadata or None,
                     created_at=world.clock().replace(microsecond=0))
    world.data.append(item)
    if body.data_type == "memory":
        meta = body.metadata or {}
        world.add_memory(body.content, owner_id=user, scope="agent",
                         category=meta.get("category"),
                         importance=meta.get("importance", "medium"),
                         metadata={**meta, "source": "agent", "agent_instance_id": instance.id})
    return item


def agent_router(world: AgentWorld) -> APIRouter:
    router = APIRouter()

    def resolve(api_key: str, external_user_id: str | None = None) -> tuple[Instance, str]:
        """src/agent/service.py _resolve_user_from_api_key (PermissionDenied -> 403)."""
        instance = world.instance_by_key(api_key)
        if instance is None:
            raise HTTPException(403, "유효하지 않은 API Key입니다")
        if instance.status != "active":
            raise HTTPException(403, "비활성화된 Agent Instance입니다")
        if external_user_id:
            mapped = world.mappings.get((instance.id, external_user_id))
            return instance, mapped or instance.owner_id
        return instance, instance.owner_id

    def store(instance: Instance, user: str, body: AgentDataCreate) -> AgentDataResponse:
        return AgentDataResponse.model_validate(receive_data(world, instance, user, body))

    @router.post("/agents/{agent_id}/data", response_model=AgentDataResponse)
    async def receive_agent_data(agent_id: str, data: AgentDataCreate,
                                 x_api_key: str = Header(..., alias="X-API-Key"),
                                 ) -> AgentDataResponse:
        """src/agent/router.py receive_agent_data (200, not 201)."""
        instance, user = resolve(x_api_key, data.external_user_id)
        return store(instance, user, data)

    @router.post("/agents/{agent_id}/memories", response_model=AgentDataResponse)
    async def create_agent_memory(agent_id: str, data: AgentMemoryCreate,
                                  x_api_key: str = Header(..., alias="X-API-Key"),
                                  ) -> AgentDataResponse:
        """src/agent/router.py create_agent_memory (no external user: the owner's)."""
        instance, user = resolve(x_api_key)
        body = AgentDataCreate(data_type="memory", content=data.content, metadata=data.metadata)
        return store(instance, user, body)

    @router.get("/agents/{agent_id}/data", response_model=AgentDataListResponse)
    async def get_agent_data(agent_id: str, data_type: str | None = None,
                             external_user_id: str | None = None, limit: int = 100,
                             offset: int = 0, x_api_key: str = Header(..., alias="X-API-Key"),
                             ) -> dict[str, Any]:
        """src/agent/router.py get_agent_data: this user's items, newest first, and a total."""
        instance, user = resolve(x_api_key, external_user_id)
        rows = [d for d in world.data if d.agent_instance_id == instance.id
                and d.internal_user_id == user and (data_type is None or d.data_type == data_type)]
        rows.sort(key=lambda d: d.created_at, reverse=True)
        return {"data": rows[offset:offset + limit], "total": len(rows)}

    @router.post("/agents/{agent_id}/memories/search", response_model=AgentMemorySearchResponse)
    async def search_agent_memories(agent_id: str, data: AgentMemorySearchRequest,
                                    x_api_key: str = Header(..., alias="X-API-Key"),
                                    ) -> dict[str, Any]:
        """src/agent/service.py search_memories: only the sources switched on, 5 per source."""
        instance, user = resolve(x_api_key, data.external_user_id)
        sources = data.context_sources
        hits: list[tuple[Memory, float]] = []
        if sources is not None:
            accessible = {r.id for r in world.user_rooms(user)}
            for room_id in sources.chat_rooms:
                if room_id in accessible:
                    hits += world.nearest(data.query, (m for m in world.memories.values()
                                                       if m.chat_room_id == room_id))
            if sources.include_agent:
                hits += world.nearest(data.query, (m for m in world.agent_memories(instance)
                                                   if m.owner_id == user))
            # include_document and agent_instances: the twin holds no documents and no
            # shared instances, so those sources add nothing
        ranked = world.reranked(hits)[:data.limit]
        results = [{"memory_id": m.id, "content": m.content, "scope": m.scope,
                    "category": m.category, "importance": m.importance, "score": score,
                    "created_at": m.created_at, "metadata": m.metadata} for m, score in ranked]
        return {"results": results, "total": len(results), "query": data.query}

    @router.delete("/agents/{agent_id}/memories/{memory_id}", response_model=MessageOnly)
    async def delete_agent_memory(agent_id: str, memory_id: str,
                                  x_api_key: str = Header(..., alias="X-API-Key"),
                                  ) -> dict[str, str]:
        """src/agent/service.py delete_agent_memory: a memory id, or an agent_data id (which
        deletes only the data row, not the memory made from it)."""
        instance, _user = resolve(x_api_key)
        memory = world.memories.get(memory_id)
        if memory is not None:
            if (memory.metadata or {}).get("agent_instance_id") != instance.id:
                raise HTTPException(403, "이 에이전트의 메모리가 아닙니다")
            del world.memories[memory_id]
            return {"message": "메모리가 삭제되었습니다"}
        item = next((d for d in world.data if d.id == memory_id), None)
        if item is not None and item.agent_instance_id == instance.id:
            world.data.remove(item)
            return {"message": "메모리가 삭제되었습니다"}
        raise HTTPException(404, f"메모리 (ID: {memory_id})을(를) 찾을 수 없습니다")

    return router


__all__ = ["AgentRequest", "Fault", "FakeAgentAPI", "agent_router", "bigram_score", "receive_data"]
