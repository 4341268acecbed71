"""HTTP to the AI Memory Agent: rate limit, retries and error translation, shared by the two
remote backends (``chat.remote`` for the Agent API, ``chat.agent_chat`` for the chat API).

    http = AgentHttp(client, bucket)
    answer = await http.request("POST", "agents/a1/memories/search", json=body)

Every request first takes a token from one ``TokenBucket`` (waiting, never failing). A 429 is
never processed by the server (its rate limiter runs before any handler), so it is always
retried after ``Retry-After`` (the bucket is blocked for that long; 5 times at most). 5xx and
network errors are retried 3 times with backoff 0.5, 1, 2 s when the request is idempotent;
for a request that is not (``idempotent=False``: a chat message, which has no idempotency key)
they raise ``AmbiguousRequest`` at once, because the server may have acted on it: the caller
reconciles before sending again. Credentials go in headers the caller sets on the client or
per request; they appear in no log, error or repr (errors name the path, never the headers).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, final

import httpx
import trio

from ..errors import ChatServiceError, ChatServiceRejected, ChatServiceTimeout
from ..ratelimit import TokenBucket
from .llm import RetryPolicy, retry_after_s

logger = logging.getLogger(__name__)

MAX_RATE_LIMIT_RETRIES = 5
DEFAULT_RETRY = RetryPolicy()  # 3 retries, 0.5 s backoff, factor 2


class AmbiguousRequest(ChatServiceError):
    """A non-idempotent request failed in a way that may have reached the server (5xx, a lost
    response, a timeout): whether it took effect is unknown."""


class Unauthorized(ChatServiceRejected):
    """401: the Bearer token is missing or no longer valid (tokens expire)."""


class HttpStatusError(ChatServiceRejected):
    """A 4xx other than 401 and 429; ``status`` and the server's ``detail`` are kept."""

    def __init__(self, message: str, *, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


@final
class AgentHttp:
    """One pooled client of one AI Memory Agent, with its rate limit and retry policy."""

    def __init__(self, client: httpx.AsyncClient, bucket: TokenBucket, *,
                 retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self._client = client
        self._bucket = bucket
        self._retry = retry

    def __repr__(self) -> str:
        return f"AgentHttp(base_url={str(self._client.base_url)!r}, bucket={self._bucket!r})"

    async def request(self, method: str, path: str, *, json: Any = None,
                      params: Mapping[str, Any] | None = None,
                      headers: Mapping[str, str] | None = None,
                      idempotent: bool = True) -> Any:
        """The decoded JSON answer of ``method path`` (relative to the client's base URL).

        Raises:
            Unauthorized: 401.
            HttpStatusError: another 4xx (403 wrong key or not a member, 404, 422 bad body).
            AmbiguousRequest: ``idempotent=False`` and a 5xx, timeout or network error.
            ChatServiceTimeout: the last of the retried failures was an HTTP timeout.
            ChatServiceError: 5xx/network errors after 3 retries, 429 after 5, bad JSON.
        """
        failures = rate_limited = 0
        while True:
            await self._bucket.acquire()
            cause: httpx.TransportError | None = None
            try:
                response = await self._client.request(method, path, json=json, params=params,
                                                      headers=headers)
            except httpx.TransportError as exc:
                cause, problem = exc, type(exc).__name__
            else:
                status = response.status_code
                if response.is_success:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise ChatServiceError(f"the memory agent answered {method} {path} "
                                               "with bad JSON") from exc
                if status == 429:
                    wait = retry_after_s(response)
                    logger.warning("agent: %s %s rate limited, retry after %s s", method, path,
                                   wait)
                    if rate_limited >= MAX_RATE_LIMIT_RETRIES:
                        raise ChatServiceError(f"the memory agent kept rate limiting {path}")
                    if wait is None:
                        wait = self._retry.delay_s(rate_limited)
                    self._bucket.penalize(min(self._retry.max_retry_after_s, wait))
                    rate_limited += 1
                    continue
                if status == 401:
                    raise Unauthorized(f"the memory agent wants a (new) login for {path}")
                if status < 500:
                    raise HttpStatusError(f"the memory agent refused {method} {path}: HTTP "
                                          f"{status}", status=status, detail=_detail(response))
                problem = f"HTTP {status}"
            logger.warning("agent: %s %s %s (failure %d)", method, path, problem, failures + 1)
            if not idempotent:
                raise AmbiguousRequest(f"the memory agent failed {method} {path}: {problem}; "
                                       "it may have been applied") from cause
            if failures >= self._retry.retries:
                timed_out = isinstance(cause, httpx.TimeoutException)
                error = ChatServiceTimeout if timed_out else ChatServiceError
                raise error(f"the memory agent failed {method} {path}: {problem}") from cause
            await trio.sleep(self._retry.delay_s(failures))
            failures += 1


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else ""


def agent_bucket(rate_per_min: float) -> TokenBucket:
    """The client-side limit: ``rate_per_min`` in any 60 s (the server's is 60 per API key)."""
    per_window = max(1, int(rate_per_min))
    return TokenBucket(rate_per_min / 60.0, burst=min(10, per_window), window_s=60.0)


def agent_client(base_url: str, *, timeout_s: float, headers: Mapping[str, str],
                 transport: httpx.AsyncBaseTransport | None = None,
                 max_connections: int = 8) -> httpx.AsyncClient:
    """The one pooled client for one server (``base_url`` ends with ``/``).

    ``max_connections``: requests in flight at once; the remote ChatService passes the
    runtime's answer concurrency (MCHAT_MAX_CONCURRENT_CHATS), so that a slow agent's answers
    never queue for a connection behind the limiter that already bounds them."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Accept": "application/json", **headers},
        timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
        limits=httpx.Limits(max_connections=max_connections,
                            max_keepalive_connections=max_connections),
        transport=transport,
    )


__all__ = ["AgentHttp", "AmbiguousRequest", "HttpStatusError", "Unauthorized", "agent_bucket",
           "agent_client"]
