"""The Mattermost REST client: one pooled httpx client, every call paced by one token bucket.

Open it with ``open_mattermost_client(cfg, bucket=...)``. Each method makes exactly one
request (no retries here: callers decide), returns the parsed JSON and raises only the errors
of ``mchat_actors.errors``::

    401                                   -> MattermostAuthError
    429 (plain-text body)                 -> RateLimited(Retry-After or X-Ratelimit-Reset),
                                             after bucket.penalize(...)
    5xx, transport errors, timeouts       -> MattermostUnavailable
    TLS certificate not trusted           -> MattermostCertificateError (a MattermostUnavailable)
    any other non-2xx                     -> MattermostApiError(status, AppError id, message)
    2xx whose body is not JSON            -> MalformedEvent

The bot token travels only in the ``Authorization`` header; it never appears in an
exception, a log line or a repr (httpx masks the header in its own reprs).
"""

from __future__ import annotations

import logging
import math
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any, final
from urllib.parse import quote

import attrs
import httpx

from ..config import MattermostConfig
from ..errors import (
    MalformedEvent,
    MattermostApiError,
    MattermostAuthError,
    MattermostCertificateError,
    MattermostUnavailable,
    RateLimited,
)
from ..ratelimit import Priority, RequestClass, TokenBucket, written
from ..tls import certificate_problem, client_ssl_context

logger = logging.getLogger(__name__)

_DEFAULT_RETRY_AFTER_S = 1.0
_MAX_RETRY_AFTER_S = 3600.0  # a nonsense header must not stop the bot for days
URL_CACHE = 1024  # parsed request URLs a client keeps (MattermostClient._url)


@attrs.frozen(kw_only=True)
class ClientStatistics:
    requests: int
    errors: Mapping[str, int]  # by kind: auth, rate_limited, unavailable, api, malformed
    rate_limited: int


@asynccontextmanager
async def open_mattermost_client(
    cfg: MattermostConfig,
    *,
    bucket: TokenBucket,
    transport: httpx.AsyncBaseTransport | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[MattermostClient]:
    """Open the one pooled HTTP client of the bot token; close it on exit.

    Args:
        cfg: the Mattermost section (url, token, TLS, timeout).
        bucket: the token bucket shared by every REST call of this token.
        transport: replaces the network (``httpx.MockTransport`` in tests).
        ssl_context: the client context built once at start (``tls.client_ssl_context``);
            built here when not given.
    """
    verify: ssl.SSLContext | bool = ssl_context or client_ssl_context(cfg) or True
    async with httpx.AsyncClient(
        base_url=cfg.api_url + "/",
        headers={"Authorization": f"Bearer {cfg.token.reveal()}", "Accept": "application/json"},
        timeout=httpx.Timeout(cfg.rest_timeout_s),
        limits=httpx.Limits(max_connections=10, max_keepalive_connections=5),
        verify=verify,
        transport=transport,
        follow_redirects=False,
    ) as http:
        yield MattermostClient(http, bucket=bucket, token=cfg.token.reveal())


@attrs.define
class _Counts:
    """Counters shared by a client and its ``with_priority`` views."""

    requests: int = 0
    errors: Counter[str] = attrs.Factory(Counter)


@final
class MattermostClient:
    """Typed-ish access to the REST endpoints a bot uses. Create with ``open_mattermost_client``."""

    def __init__(self, http: httpx.AsyncClient, *, bucket: TokenBucket, token: str,
                 priority: Priority | RequestClass = Priority.BACKGROUND,
                 counts: _Counts | None = None, urls: dict[str, httpx.URL] | None = None
                 ) -> None:
        self._http = http
        self._bucket = bucket
        self._token = token
        self._priority = priority  # the class of its reads; writes are always REPLY
        self._counts = counts if counts is not None else _Counts()
        self._errors = self._counts.errors
        self._urls = urls if urls is not None else {}

    def with_priority(self, priority: Priority | RequestClass) -> MattermostClient:
        """The same client (connection pool, bucket, counters) whose reads wait in the
        ``priority`` class of the bucket, or in a lane's ``RequestClass`` (raised to
        ``Priority.QUESTION`` while the lane holds a question)."""
        return MattermostClient(self._http, bucket=self._bucket, token=self._token,
                                priority=priority, counts=self._counts, urls=self._urls)

    def _url(self, path: str) -> httpx.URL:
        """``path``'s absolute URL, parsed once: httpx parses and joins a relative one on
        every request (~55 us of the ~1 ms a reply's POST costs in Python here)."""
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= URL_CACHE:  # paths with ids: keep the set bounded
                self._urls.clear()
            url = self._urls[path] = httpx.URL(str(self._http.base_url) + path.lstrip("/"))
        return url

    def __repr__(self) -> str:
        return f"<MattermostClient {self._http.base_url}>"

    def statistics(self) -> ClientStatistics:
        return ClientStatistics(
            requests=self._counts.requests,
            errors=MappingProxyType(dict(self._errors)),
            rate_limited=self._errors["rate_limited"],
        )

    # ------------------------------------------------------------------ users
    async def get_me(self) -> Any:
        return await self._request("GET", "users/me")

    async def get_user(self, user_id: str) -> Any:
        return await self._request("GET", f"users/{_seg(user_id)}")

    async def get_users_by_ids(self, ids: Sequence[str]) -> Any:
        return await self._request("POST", "users/ids", json=list(ids))

    async def get_user_by_email(self, email: str) -> Any:
        return await self._request("GET", f"users/email/{_seg(email)}")

    # ------------------------------------------------------------------ teams and channels
    async def get_my_teams(self) -> Any:
        return await self._request("GET", "users/me/teams")

    async def get_my_channels(self, team_id: str) -> Any:
        return await self._request("GET", f"users/me/teams/{_seg(team_id)}/channels")

    async def get_team_by_name(self, name: str) -> Any:
        return await self._request("GET", f"teams/name/{_seg(name)}")

    async def get_public_channels(self, team_id: str, *, page: int = 0, per_page: int = 200) -> Any:
        return await self._request(
            "GET", f"teams/{_seg(team_id)}/channels", params={"page": page, "per_page": per_page}
        )

    async def get_channel(self, channel_id: str) -> Any:
        return await self._request("GET", f"channels/{_seg(channel_id)}")

    async def get_channel_by_name(self, team_id: str, name: str) -> Any:
        return await self._request("GET", f"teams/{_seg(team_id)}/channels/name/{_seg(name)}")

    async def get_channel_members(
        self, channel_id: str, *, page: int = 0, per_page: int = 200
    ) -> Any:
        return await self._request(
            "GET", f"channels/{_seg(channel_id)}/members",
            params={"page": page, "per_page": per_page},
        )

    async def add_channel_member(self, channel_id: str, user_id: str) -> Any:
        return await self._request(
            "POST", f"channels/{_seg(channel_id)}/members", json={"user_id": user_id}
        )

    # ------------------------------------------------------------------ posts and reactions
    async def get_posts(
        self,
        channel_id: str,
        *,
        since: int | None = None,
        after: str | None = None,
        before: str | None = None,
        page: int = 0,
        per_page: int = 200,
    ) -> Any:
        """A PostList. ``since`` (ms) wins over ``after``/``before``, as on the server."""
        params: dict[str, str | int] = {}
        if since is not None:
            params["since"] = since
        else:
            params.update(page=page, per_page=per_page)
            if after is not None:
                params["after"] = after
            if before is not None:
                params["before"] = before
        return await self._request("GET", f"channels/{_seg(channel_id)}/posts", params=params)

    async def get_post(self, post_id: str) -> Any:
        return await self._request("GET", f"posts/{_seg(post_id)}")

    async def create_post(
        self,
        *,
        channel_id: str,
        message: str,
        root_id: str | None = None,
        pending_post_id: str | None = None,
        props: Mapping[str, Any] | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> Any:
        """``POST /posts``; ``on_sent`` is called when the request's last byte is written."""
        body: dict[str, Any] = {"channel_id": channel_id, "message": message}
        if root_id:
            body["root_id"] = root_id
        if pending_post_id:
            body["pending_post_id"] = pending_post_id
        if props:
            body["props"] = dict(props)
        return await self._request("POST", "posts", json=body, on_sent=on_sent)

    async def create_ephemeral_post(self, *, user_id: str, channel_id: str, message: str,
                                    root_id: str | None = None) -> Any:
        """``POST /posts/ephemeral``: shown to ``user_id`` only, never stored by the server.

        Needs the ``create_post_ephemeral`` permission (403 ``MattermostApiError`` without it).
        """
        post: dict[str, Any] = {"channel_id": channel_id, "message": message}
        if root_id:
            post["root_id"] = root_id
        return await self._request("POST", "posts/ephemeral",
                                   json={"user_id": user_id, "post": post})

    async def create_direct_channel(self, user_a: str, user_b: str) -> Any:
        """``POST /channels/direct``: the DM of two users (created if missing)."""
        return await self._request("POST", "channels/direct", json=[user_a, user_b])

    async def add_reaction(self, *, user_id: str, post_id: str, emoji_name: str) -> Any:
        body = {"user_id": user_id, "post_id": post_id, "emoji_name": emoji_name}
        return await self._request("POST", "reactions", json=body)

    async def remove_reaction(self, *, user_id: str, post_id: str, emoji_name: str) -> Any:
        path = f"users/{_seg(user_id)}/posts/{_seg(post_id)}/reactions/{_seg(emoji_name)}"
        return await self._request("DELETE", path)

    # ------------------------------------------------------------------ system
    async def get_client_config(self) -> Any:
        return await self._request("GET", "config/client", params={"format": "old"})

    async def ping(self) -> Any:
        return await self._request("GET", "system/ping")

    # ------------------------------------------------------------------ plumbing
    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        on_sent: Callable[[], None] | None = None,
    ) -> Any:
        what = f"{method} /{path.split('?')[0]}"
        # writes (replies, reactions) first, then a question's reads, then background reads
        # the answer bounds when the server counted the request: the bucket's window runs from it
        async with self._bucket.request(
                Priority.REPLY if method != "GET" else self._priority) as slot:
            self._counts.requests += 1
            try:
                response = await self._http.request(method, self._url(path), params=params,
                                                    json=json,
                                                    extensions={"trace": written(slot, on_sent)})
            except httpx.TimeoutException as exc:
                self._errors["unavailable"] += 1
                raise MattermostUnavailable(f"{what}: timed out ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                self._errors["unavailable"] += 1
                problem = certificate_problem(exc)
                if problem is not None:
                    self._errors["certificate"] += 1
                    raise MattermostCertificateError(f"{what}: {problem}") from exc
                raise MattermostUnavailable(f"{what}: {type(exc).__name__}") from exc
            slot.answered()
        status = response.status_code
        logger.debug("mattermost: %s -> %d", what, status)
        if status == 429:
            retry_after = _retry_after_s(response.headers)
            self._bucket.penalize(retry_after)
            self._errors["rate_limited"] += 1
            logger.warning("mattermost: %s rate limited, retry after %.1f s", what, retry_after)
            raise RateLimited(retry_after)
        self._feed_bucket(response.headers)
        if 200 <= status < 300:
            return self._parse_json(response, what)
        error_id, message = self._app_error(response)
        if status == 401:
            self._errors["auth"] += 1
            raise MattermostAuthError(f"{what}: the token was rejected (401 {error_id})")
        if status >= 500:
            self._errors["unavailable"] += 1
            raise MattermostUnavailable(f"{what}: server error {status} {error_id}".rstrip())
        self._errors["api"] += 1
        raise MattermostApiError(status, error_id, message)

    def _parse_json(self, response: httpx.Response, what: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            self._errors["malformed"] += 1
            raise MalformedEvent(f"{what}: {response.status_code} body is not JSON") from exc

    def _app_error(self, response: httpx.Response) -> tuple[str, str]:
        """(id, message) of an AppError body; a non-JSON body gives ("", its start)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            error_id, message = str(body.get("id") or ""), str(body.get("message") or "")
        else:
            error_id, message = "", response.text[:200].strip()
        return self._scrub(error_id), self._scrub(message)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[token]") if self._token else text

    def _feed_bucket(self, headers: httpx.Headers) -> None:
        remaining = _int_header(headers, "X-Ratelimit-Remaining")
        if remaining is None:
            return
        self._bucket.update_from_headers(
            _int_header(headers, "X-Ratelimit-Limit"),
            remaining,
            _float_header(headers, "X-Ratelimit-Reset"),
        )


def _seg(value: str) -> str:
    """One URL path segment: ids, names, e-mails and emoji names cannot escape it."""
    return quote(str(value), safe="")


def _retry_after_s(headers: httpx.Headers) -> float:
    for name in ("Retry-After", "X-Ratelimit-Reset"):
        value = _float_header(headers, name)
        if value is not None and value >= 0:
            return min(value, _MAX_RETRY_AFTER_S)
    return _DEFAULT_RETRY_AFTER_S


def _float_header(headers: httpx.Headers, name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    value = _float_header(headers, name)
    return None if value is None else int(value)
