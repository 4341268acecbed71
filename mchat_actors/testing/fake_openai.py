"""A small OpenAI-compatible chat-completions server for tests, served in-process under trio.

    async with FakeOpenAI(api_key="sk-test") as fake:
        fake.script(Status(429, retry_after_s=1), Reply("12%"))
        cfg = ChatConfig(llm_base_url=fake.url, llm_api_key="sk-test", llm_model="fake")
        ...
        assert "12%" in fake.requests[-1].json["messages"][-1]["content"]

Real HTTP on 127.0.0.1 (port 0) through hypercorn's trio worker and a tiny Starlette app.
Each request to ``POST /v1/chat/completions`` with the right bearer key takes the next scripted
behaviour (``Reply``, ``Status``, ``Hang``, ``Malformed``); with the script empty, the default
answerer quotes the last message and the system prompt it got, so a test can see which context
reached the model. A wrong or missing key gets 401 and does not consume the script.

``POST /v1/embeddings`` (same key, same script: ``Status`` and ``Hang`` apply; ``Reply`` is
skipped) answers each input with ``fake_embedding``: a deterministic unit vector of the text's
character bigrams hashed into ``EMBEDDING_DIM`` dimensions. Texts sharing bigrams get similar
vectors, which is enough to test the plumbing (batching, rate limits, outages, re-embedding);
these vectors say nothing about the quality of real embeddings. The model name of each request
is recorded; ``down`` answers every embeddings request 503 while True.

``open_asgi_server`` is shared with ``fake_agent_api``.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import hypercorn.config
import hypercorn.trio
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp


@asynccontextmanager
async def open_asgi_server(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 on a free port; yields ``http://127.0.0.1:<port>``.

    Cancellation:
        Leaving the block cancels the server and every request still in flight (a ``Hang``).
    """
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.keep_alive_timeout = 3600.0  # idle pooled connections survive autojump_clock
    config.graceful_timeout = 0.0
    config.errorlog = logging.getLogger("mchat_actors.testing.http")
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(hypercorn.trio.serve, app, config)
        try:
            yield binds[0]
        finally:
            nursery.cancel_scope.cancel()


@attrs.frozen
class Reply:
    """Answer 200 with this assistant text."""

    text: str


@attrs.frozen
class Status:
    """Answer with an error status (429 with ``Retry-After`` when ``retry_after_s`` is set)."""

    status: int
    retry_after_s: float | None = None


@attrs.frozen
class Hang:
    """Wait ``delay_s`` seconds (forever when None), then take the next behaviour."""

    delay_s: float | None = None


@attrs.frozen
class Malformed:
    """Answer 200 with a body that is not a chat completion."""

    body: str = "not json"


Behaviour = Reply | Status | Hang | Malformed


@attrs.frozen(kw_only=True)
class RecordedRequest:
    path: str
    authorized: bool
    json: Mapping[str, Any]


def quote_context(messages: Sequence[Mapping[str, Any]]) -> str:
    """The default answerer: deterministic, quoting the last message and the context before it
    (the system prompt and any context messages)."""
    last = messages[-1].get("content", "") if messages else ""
    context = " | ".join(str(m.get("content", "")) for m in messages[:-1])
    return f"(fake answer to: {last}) context: {context}" if context else f"(fake answer) {last}"


class FakeOpenAI:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint with a scripted behaviour."""

    def __init__(
        self,
        *,
        api_key: str = "sk-fake",
        answer: Callable[[Sequence[Mapping[str, Any]]], str] = quote_context,
    ) -> None:
        self.api_key = api_key
        self.answer = answer
        # for outage scenarios: 503 for every request before this trio time, and a delay
        # chosen per request from its messages (e.g. hang the questions of one channel)
        self.down_until = 0.0
        self.delay_for: Callable[[Sequence[Mapping[str, Any]]], float] | None = None
        self.requests: list[RecordedRequest] = []
        self.url = ""  # set on entry: the base URL, ending in /v1
        self._script: collections.deque[Behaviour] = collections.deque()
        self._stack = AsyncExitStack()
        self.down = False  # embeddings answer 503 while True (an outage)
        routes = [Route("/v1/chat/completions", self._complete, methods=["POST"]),
                  Route("/v1/embeddings", self._embed, methods=["POST"])]
        self._app = Starlette(routes=routes)

    def __repr__(self) -> str:
        return f"FakeOpenAI(url={self.url!r}, requests={len(self.requests)})"

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests, in order."""
        self._script.extend(behaviours)

    @property
    def authorized_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.authorized]

    async def __aenter__(self) -> FakeOpenAI:
        base = await self._stack.enter_async_context(open_asgi_server(self._app))
        self.url = base + "/v1"
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        return await self._stack.__aexit__(*exc_info)  # type: ignore[arg-type]

    async def _complete(self, request: Request) -> Response:
        authorized = request.headers.get("authorization") == f"Bearer {self.api_key}"
        try:
            body = await request.json()
        except ValueError:
            body = {}
        recorded = RecordedRequest(path=request.url.path, authorized=authorized, json=body)
        self.requests.append(recorded)
        if not authorized:
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "invalid_request_error", "'messages' is required.")
        if trio.current_time() < self.down_until:
            return _error(503, "unavailable", "scripted outage")
        if self.delay_for is not None:
            await trio.sleep(self.delay_for(body["messages"]))
        while self._script:
            behaviour = self._script.popleft()
            match behaviour:
                case Hang(delay_s=delay):
                    if delay is None:
                        await trio.sleep_forever()
                    await trio.sleep(delay)
                case Reply(text=text):
                    return _completion(body, text)
                case Status(status=status, retry_after_s=retry_after):
                    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
                    return _error(status, "scripted", "scripted failure", headers)
                case Malformed(body=raw):
                    return Response(raw, status_code=200, media_type="application/json")
        return _completion(body, self.answer(body["messages"]))


    @property
    def embedded_texts(self) -> list[str]:
        """Every text an authorized embeddings request asked for, in order."""
        return [t for r in self.authorized_requests if r.path.endswith("/embeddings")
                for t in r.json.get("input", [])]

    async def _embed(self, request: Request) -> Response:
        authorized = request.headers.get("authorization") == f"Bearer {self.api_key}"
        try:
            body = await request.json()
        except ValueError:
            body = {}
        self.requests.append(RecordedRequest(path=request.url.path, authorized=authorized,
                                             json=body))
        if not authorized:
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        texts = body.get("input") if isinstance(body, dict) else None
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return _error(400, "invalid_request_error", "'input' must be a string or strings.")
        if self.down:
            return _error(503, "unavailable", "the embeddings service is down")
        while self._script:
            behaviour = self._script.popleft()
            match behaviour:
                case Hang(delay_s=delay):
                    if delay is None:
                        await trio.sleep_forever()
                    await trio.sleep(delay)
                case Status(status=status, retry_after_s=retry_after):
                    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
                    return _error(status, "scripted", "scripted failure", headers)
                case Malformed(body=raw):
                    return Response(raw, status_code=200, media_type="application/json")
                case _:
                    pass
        data = [{"object": "embedding", "index": i, "embedding": fake_embedding(t)}
                for i, t in enumerate(texts)]
        return JSONResponse({"object": "list", "data": data, "model": body.get("model", "")})


EMBEDDING_DIM = 64


def fake_embedding(text: str) -> list[float]:
    """A unit vector of ``text``'s character bigrams (lower case) hashed into 64 dimensions."""
    vector = [0.0] * EMBEDDING_DIM
    low = "".join(text.lower().split())
    for i in range(max(1, len(low) - 1)):
        digest = hashlib.blake2b(low[i : i + 2].encode(), digest_size=4).digest()
        vector[int.from_bytes(digest, "big") % EMBEDDING_DIM] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _completion(body: Mapping[str, Any], text: str) -> Response:
    return JSONResponse(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        }
    )


def _error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    payload = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return JSONResponse(payload, status_code=status, headers=dict(headers or {}))


__all__ = [
    "EMBEDDING_DIM",
    "Behaviour",
    "FakeOpenAI",
    "Hang",
    "Malformed",
    "RecordedRequest",
    "Reply",
    "Status",
    "open_asgi_server",
    "fake_embedding",
    "quote_context",
]
