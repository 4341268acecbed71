"""An OpenAI-compatible chat-completions client: the ``LLM`` the ChatServices answer with.

    async with open_llm(cfg.chat) as llm:
        text = await llm.complete([{"role": "user", "content": "..."}])

One pooled ``httpx.AsyncClient`` per client. ``POST {base}/chat/completions``; 429 (honouring
``Retry-After``), 5xx and network errors are retried 3 times with backoff 0.5, 1, 2 s, all under
one overall deadline of ``cfg.llm_timeout_s``. Errors become ``ChatServiceTimeout``,
``ChatServiceRejected`` (4xx other than 429) or ``ChatServiceError``. The API key lives only in
the client's default headers: never in logs, exception messages or reprs.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, final

import attrs
import httpx
import trio

from ..config import ChatConfig
from ..errors import ChatServiceError, ChatServiceRejected, ChatServiceTimeout, ConfigError

logger = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often and how long to wait between attempts (the sender's 3 retries, factor 2)."""

    retries: int = 3
    backoff_initial_s: float = 0.5
    backoff_factor: float = 2.0
    max_retry_after_s: float = 60.0

    def delay_s(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0-based) when the server did not say."""
        return float(self.backoff_initial_s * self.backoff_factor**retry)


def retry_after_s(response: httpx.Response) -> float | None:
    """The server's ``Retry-After`` in seconds (a number or an HTTP date), or None."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_retryable(status: int) -> bool:
    return status == 429 or status >= 500


@final
class OpenAICompatibleLLM:
    """Implements ``chat.protocol.LLM``. Build it with ``open_llm``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        model: str,
        deadline_s: float,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self._client = client
        self._model = model
        self._deadline_s = deadline_s
        self._retry = retry

    def __repr__(self) -> str:
        base_url = str(self._client.base_url)
        return f"OpenAICompatibleLLM(base_url={base_url!r}, model={self._model!r})"

    async def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        temperature: float = 0.2,
        max_tokens: int | None = None,
    ) -> str:
        """The assistant's text for ``messages``.

        Raises:
            ChatServiceTimeout: no answer within ``llm_timeout_s`` (retries included).
            ChatServiceRejected: 4xx other than 429 (bad key, bad model, bad request).
            ChatServiceError: 5xx/429/network errors after 3 retries, or a malformed answer.

        Cancellation:
            Safe to cancel; nothing is left behind but a pooled connection.
        """
        body: dict[str, Any] = {
            "model": self._model,
            "messages": [dict(m) for m in messages],
            "temperature": temperature,
        }
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        try:
            with trio.fail_after(self._deadline_s):
                response = await self._post_with_retries(body)
        except trio.TooSlowError as exc:
            raise ChatServiceTimeout(
                f"the LLM gave no answer within {self._deadline_s:g} s"
            ) from exc
        return _content(response)

    async def _post_with_retries(self, body: Mapping[str, Any]) -> httpx.Response:
        attempts = self._retry.retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._client.post("chat/completions", json=body)
            except httpx.TransportError as exc:
                logger.warning(
                    "llm: %s on attempt %d/%d", type(exc).__name__, attempt + 1, attempts
                )
                if last:
                    raise ChatServiceError(
                        f"the LLM could not be reached after {attempts} attempts"
                        f" ({type(exc).__name__})"
                    ) from exc
                await trio.sleep(self._retry.delay_s(attempt))
                continue
            if response.is_success:
                return response
            status = response.status_code
            if not is_retryable(status):
                raise ChatServiceRejected(f"the LLM refused the request: HTTP {status}")
            logger.warning("llm: HTTP %d on attempt %d/%d", status, attempt + 1, attempts)
            if last:
                raise ChatServiceError(f"the LLM failed after {attempts} attempts: HTTP {status}")
            wait = retry_after_s(response)
            if wait is None:
                wait = self._retry.delay_s(attempt)
            await trio.sleep(min(wait, self._retry.max_retry_after_s))
        raise AssertionError("unreachable")  # pragma: no cover


def _content(response: httpx.Response) -> str:
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ChatServiceError("the LLM answered with a malformed chat completion") from exc
    if not isinstance(content, str):
        raise ChatServiceError("the LLM answered with a malformed chat completion")
    return content


@asynccontextmanager
async def open_llm(
    cfg: ChatConfig, *, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[OpenAICompatibleLLM]:
    """An ``OpenAICompatibleLLM`` for ``cfg.llm_base_url`` with one pooled HTTP client.

    Raises:
        ConfigError: ``llm_base_url`` or ``llm_model`` is unset (callers without an LLM pass
            ``llm=None`` to the ChatService instead of calling this).
    """
    if not cfg.llm_base_url or not cfg.llm_model:
        raise ConfigError(["LLM_BASE_URL and LLM_MODEL are required to open the LLM client"])
    headers = {"Accept": "application/json"}
    if cfg.llm_api_key:
        headers["Authorization"] = f"Bearer {cfg.llm_api_key.reveal()}"
    client = httpx.AsyncClient(
        base_url=cfg.llm_base_url.rstrip("/") + "/",
        headers=headers,
        timeout=httpx.Timeout(cfg.llm_timeout_s, connect=min(10.0, cfg.llm_timeout_s)),
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
        transport=transport,
    )
    async with client:
        yield OpenAICompatibleLLM(client, model=cfg.llm_model, deadline_s=cfg.llm_timeout_s)


__all__ = ["OpenAICompatibleLLM", "RetryPolicy", "is_retryable", "open_llm", "retry_after_s"]
