"""A small fake of an existing AI Memory Agent's Agent API, served in-process under trio.

    async with FakeAgentAPI(api_key="k", agent_ids=("agent-1",), rate_per_min=60) as fake:
        fake.seed_memory("agent-1", "X부품 불량률 12%")
        ...  # point CHAT_BACKEND_URL at fake.url
        assert fake.data[-1].data_type == "message"

Endpoints (real HTTP on 127.0.0.1, port 0), the API key in ``X-API-Key``:

- ``POST /api/v1/agents/{agent_id}/data`` with ``{"data_type": "message" | "memory", "content",
  "external_user_id", "metadata"}`` -> 201 ``{"id", "agent_id", "data_type", "status"}``.
- ``POST /api/v1/agents/{agent_id}/memories/search`` with ``{"query", "limit",
  "external_user_id"}`` -> 200 ``{"results": [{"id", "content", "score", "external_user_id",
  "metadata", "created_at"}]}``, best first. Searches the agent's ``memory`` items by character
  bigram overlap (an empty query lists them all, newest first); items whose metadata says
  ``"scope": "personal"`` are returned only to their own ``external_user_id``.

A missing or wrong key is 401, an unknown agent 404, a bad body 422. More than ``rate_per_min``
accepted requests per key in any 60 s window is 429 with ``Retry-After`` (seconds until the
oldest request leaves the window). ``script(Status(...))`` makes the next authorised requests
fail. Time is trio's clock, so ``autojump_clock`` tests run the window in mock time.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

import attrs
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .fake_openai import Status, open_asgi_server

WINDOW_S = 60.0


@attrs.frozen(kw_only=True)
class StoredData:
    id: str
    agent_id: str
    data_type: str
    content: str
    external_user_id: str | None
    metadata: Mapping[str, Any]
    created_at: float  # trio time


@attrs.frozen(kw_only=True)
class AgentRequest:
    method: str
    path: str
    key_ok: bool
    json: Any
    at: float  # trio time the request arrived
    status: int


def bigram_score(query: str, content: str) -> float:
    """Share of the query's character bigrams (per word, case-folded) found in ``content``."""
    haystack = content.casefold()
    if query.strip() and query.strip().casefold() in haystack:
        return 1.0
    grams = {w[i : i + 2] for w in query.casefold().split() for i in range(max(1, len(w) - 1))}
    if not grams:
        return 0.0
    return sum(1 for g in grams if g in haystack) / len(grams)


class FakeAgentAPI:
    """The Agent API of one AI Memory Agent deployment, with inspection for tests."""

    def __init__(
        self,
        *,
        api_key: str = "agent-key",
        agent_ids: tuple[str, ...] = ("agent-1",),
        rate_per_min: int = 60,
    ) -> None:
        self.api_key = api_key
        self.agent_ids = agent_ids
        self.rate_per_min = rate_per_min
        self.data: list[StoredData] = []
        self.requests: list[AgentRequest] = []
        self.url = ""  # set on entry: http://127.0.0.1:<port>
        self._script: collections.deque[Status] = collections.deque()
        self._accepted: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self._stack = AsyncExitStack()
        base = "/api/v1/agents/{agent_id}"
        self._app = Starlette(
            routes=[
                Route(base + "/data", self._handle, methods=["POST"]),
                Route(base + "/memories/search", self._handle, methods=["POST"]),
            ]
        )

    def __repr__(self) -> str:
        return f"FakeAgentAPI(url={self.url!r}, data={len(self.data)})"

    async def __aenter__(self) -> FakeAgentAPI:
        self.url = await self._stack.enter_async_context(open_asgi_server(self._app))
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        return await self._stack.__aexit__(*exc_info)  # type: ignore[arg-type]

    def script(self, *failures: Status) -> None:
        """Make the next authorised requests answer these statuses, in order."""
        self._script.extend(failures)

    def seed_memory(
        self,
        agent_id: str,
        content: str,
        *,
        external_user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> StoredData:
        """Store a memory directly, as if the agent had learnt it elsewhere."""
        return self._store(agent_id, "memory", content, external_user_id, dict(metadata or {}))

    def accepted_times(self) -> list[float]:
        """Arrival times of the requests that passed the rate limit (any status after it)."""
        return [r.at for r in self.requests if r.key_ok and r.status != 429]

    def _store(
        self,
        agent_id: str,
        data_type: str,
        content: str,
        external_user_id: str | None,
        metadata: Mapping[str, Any],
    ) -> StoredData:
        item = StoredData(
            id=f"d{len(self.data) + 1}",
            agent_id=agent_id,
            data_type=data_type,
            content=content,
            external_user_id=external_user_id,
            metadata=metadata,
            created_at=trio.current_time(),
        )
        self.data.append(item)
        return item

    async def _handle(self, request: Request) -> Response:
        at = trio.current_time()
        try:
            body = await request.json()
        except ValueError:
            body = None
        key_ok = request.headers.get("x-api-key") == self.api_key
        response = self._respond(request, body, key_ok, at)
        self.requests.append(
            AgentRequest(
                method=request.method,
                path=request.url.path,
                key_ok=key_ok,
                json=body,
                at=at,
                status=response.status_code,
            )
        )
        return response

    def _respond(self, request: Request, body: Any, key_ok: bool, at: float) -> Response:
        if not key_ok:
            return _error(401, "invalid or missing X-API-Key")
        window = self._accepted[self.api_key]
        while window and window[0] <= at - WINDOW_S:
            window.popleft()
        if len(window) >= self.rate_per_min:
            wait = max(1, math.ceil(window[0] + WINDOW_S - at))
            return _error(429, "rate limit exceeded", {"Retry-After": str(wait)})
        window.append(at)
        if self._script:
            failure = self._script.popleft()
            headers = {}
            if failure.retry_after_s is not None:
                headers["Retry-After"] = f"{failure.retry_after_s:g}"
            return _error(failure.status, "scripted failure", headers)
        agent_id = request.path_params["agent_id"]
        if agent_id not in self.agent_ids:
            return _error(404, f"agent {agent_id} not found")
        if not isinstance(body, dict):
            return _error(422, "a JSON object is required")
        if request.url.path.endswith("/data"):
            return self._post_data(agent_id, body)
        return self._search(agent_id, body)

    def _post_data(self, agent_id: str, body: Mapping[str, Any]) -> Response:
        data_type, content = body.get("data_type"), body.get("content")
        metadata = body.get("metadata") or {}
        if data_type not in ("message", "memory") or not isinstance(content, str) or not content:
            return _error(422, "data_type must be message or memory, content a non-empty string")
        if not isinstance(metadata, dict):
            return _error(422, "metadata must be an object")
        user = body.get("external_user_id")
        item = self._store(agent_id, data_type, content, user, metadata)
        payload = {"id": item.id, "agent_id": agent_id, "data_type": data_type, "status": "stored"}
        return JSONResponse(payload, status_code=201)

    def _search(self, agent_id: str, body: Mapping[str, Any]) -> Response:
        query, limit, user = body.get("query"), body.get("limit", 10), body.get("external_user_id")
        if not isinstance(query, str) or not isinstance(limit, int) or limit < 1:
            return _error(422, "query must be a string and limit a positive integer")
        scored = []
        for item in self.data:
            if item.agent_id != agent_id or item.data_type != "memory":
                continue
            if item.metadata.get("scope") == "personal" and item.external_user_id != user:
                continue
            score = bigram_score(query, item.content)
            if score > 0 or not query.strip():
                scored.append((score, item))
        scored.sort(key=lambda pair: (-pair[0], -pair[1].created_at))
        results = [
            {
                "id": item.id,
                "content": item.content,
                "score": round(score, 4),
                "external_user_id": item.external_user_id,
                "metadata": dict(item.metadata),
                "created_at": item.created_at,
            }
            for score, item in scored[:limit]
        ]
        return JSONResponse({"results": results})


def _error(status: int, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"detail": detail}, status_code=status, headers=dict(headers or {}))


__all__ = ["AgentRequest", "FakeAgentAPI", "StoredData", "bigram_score"]
