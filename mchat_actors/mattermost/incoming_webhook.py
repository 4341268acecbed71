"""Replies through a Mattermost incoming webhook: the sender's transport in webhook-only mode.

Webhook-only mode (``MCHAT_INCOMING_WEBHOOK_URL`` set, no ``MCHAT_TOKEN``) has no bot account,
so the sender cannot ``POST /api/v4/posts``. ``IncomingWebhookPoster.create_post`` posts each
outbox row instead as ``POST <webhook url>`` with the JSON body of Mattermost's
``IncomingWebhookRequest``::

    {"text": <message>, "channel": <channel name>, "username"?: ..., "icon_url"?: ...,
     "props": {"mchat_reply_key": ..., "from_bot": "true"}}

* ``channel`` is the channel's *name* (the payloads' ``channel_name``, kept in
  ``mchat_channel_mapping``): the webhook posts in any channel of its team its creator may post
  in. A channel never seen in a payload, a DM or a group (webhook-only mode does not answer
  them) is a permanent error for that row.
* The payload has no ``root_id`` (``server/public/model/incoming_webhook.go``): answers are
  top-level posts in the question's channel; the row's ``root_id`` is not sent.
* ``username`` / ``icon_url`` are the configured overrides (``MCHAT_WEBHOOK_USERNAME``,
  ``MCHAT_WEBHOOK_ICON_URL``); the server applies them only when it allows overrides.
* Every request takes a token from the shared bucket. Answers map to the REST client's errors,
  so the sender retries exactly as for REST: 429 -> ``RateLimited`` (after
  ``bucket.penalize``), 5xx and network errors -> ``MattermostUnavailable``, other non-200 ->
  ``MattermostApiError`` (permanent). 200 ``ok`` returns ``{"id": "webhook:<pending_post_id>"}``:
  the server does not say which post it made, so that marker is what the outbox records.
* There is no way to read a channel back without a token, so a row whose post may have gone
  out before a crash (sent, but not yet marked sent) is posted again: at least once, never lost.

The webhook URL is a secret (its id is the credential): it never appears in a log line, an
error or a repr.
"""

from __future__ import annotations

import logging
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, final

import httpx

from ..config import MattermostConfig
from ..errors import MattermostApiError, MattermostUnavailable, RateLimited
from ..ratelimit import Priority, TokenBucket, written
from ..tls import client_ssl_context
from .rest import ClientStatistics, _retry_after_s

logger = logging.getLogger(__name__)

ChannelLookup = Callable[[str], Awaitable[Mapping[str, Any] | None]]
"""channel id -> its ``mchat_channel_mapping`` row (``mchat_channel_name``, ``channel_type``)."""


@asynccontextmanager
async def open_incoming_webhook(
    cfg: MattermostConfig,
    *,
    bucket: TokenBucket,
    channel_lookup: ChannelLookup,
    transport: httpx.AsyncBaseTransport | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[IncomingWebhookPoster]:
    """The one pooled HTTP client of the incoming webhook; closed on exit. ``ssl_context`` is
    the one built at start for REST (``tls.client_ssl_context``); built here when not given."""
    if not cfg.incoming_webhook_url:
        raise ValueError("no incoming webhook URL configured")
    verify: ssl.SSLContext | bool = ssl_context or client_ssl_context(cfg) or True
    async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.rest_timeout_s), verify=verify,
                                 transport=transport, follow_redirects=False,
                                 limits=httpx.Limits(max_connections=4)) as http:
        yield IncomingWebhookPoster(http, url=cfg.incoming_webhook_url, bucket=bucket,
                                    channel_lookup=channel_lookup,
                                    username=cfg.webhook_username,
                                    icon_url=cfg.webhook_icon_url)


@final
class IncomingWebhookPoster:
    """``create_post`` through the incoming webhook (see the module docstring)."""

    def __init__(self, http: httpx.AsyncClient, *, url: str, bucket: TokenBucket,
                 channel_lookup: ChannelLookup, username: str | None = None,
                 icon_url: str | None = None) -> None:
        self._http = http
        self._url = url
        self._bucket = bucket
        self._lookup = channel_lookup
        self._username = username
        self._icon_url = icon_url
        self._requests = 0
        self._errors: Counter[str] = Counter()

    def __repr__(self) -> str:
        return "<IncomingWebhookPoster [webhook url hidden]>"

    def statistics(self) -> ClientStatistics:
        return ClientStatistics(requests=self._requests, errors=dict(self._errors),
                                rate_limited=self._errors["rate_limited"])

    async def create_post(self, *, channel_id: str, message: str, root_id: str | None = None,
                          pending_post_id: str | None = None,
                          props: Mapping[str, Any] | None = None,
                          on_sent: Callable[[], None] | None = None) -> Any:
        """Post ``message`` in ``channel_id`` (top level: ``root_id`` cannot be sent);
        ``on_sent`` is called when the request's last byte is written.

        Raises:
            RateLimited, MattermostUnavailable: transient (the sender retries).
            MattermostApiError: the channel cannot be posted to, or the server refused the body.
        """
        row = await self._lookup(channel_id)
        name = str(row.get("mchat_channel_name") or "") if row is not None else ""
        if not name:
            self._errors["api"] += 1
            raise MattermostApiError(404, "mchat.webhook_only.unknown_channel",
                                     f"channel {channel_id} was never named in a payload")
        if row is not None and row.get("channel_type") in ("D", "G"):
            self._errors["api"] += 1
            raise MattermostApiError(403, "mchat.webhook_only.direct_channel",
                                     "webhook-only mode does not post in DMs or groups")
        body: dict[str, Any] = {"text": message, "channel": name,
                                "props": dict(props or {})}
        if self._username:
            body["username"] = self._username
        if self._icon_url:
            body["icon_url"] = self._icon_url
        async with self._bucket.request(Priority.REPLY) as slot:  # a reply: before every read
            self._requests += 1
            try:
                response = await self._http.post(self._url, json=body,
                                                 extensions={"trace": written(slot, on_sent)})
            except httpx.HTTPError as exc:
                self._errors["unavailable"] += 1
                raise MattermostUnavailable(
                    f"incoming webhook: {type(exc).__name__} (network)") from None
            slot.answered()
        status = response.status_code
        if status == 429:
            retry_after = _retry_after_s(response.headers)
            self._bucket.penalize(retry_after)
            self._errors["rate_limited"] += 1
            raise RateLimited(retry_after)
        if status >= 500:
            self._errors["unavailable"] += 1
            raise MattermostUnavailable(f"incoming webhook: server error {status}")
        if status != 200:
            self._errors["api"] += 1
            raise MattermostApiError(status, _error_id(response), "incoming webhook refused")
        return {"id": f"webhook:{pending_post_id or ''}", "channel_id": channel_id}


    async def ping(self) -> object:
        """``GET /api/v4/system/ping`` on the webhook's server, without credentials (the
        sender's circuit probe): it answers while the server is up.

        Raises:
            MattermostUnavailable: no answer, or a 5xx.
        """
        url = httpx.URL(self._url).copy_with(path="/api/v4/system/ping", query=None)
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            raise MattermostUnavailable(f"system/ping: {type(exc).__name__} (network)") from None
        if response.status_code >= 500:
            raise MattermostUnavailable(f"system/ping: server error {response.status_code}")
        return response.status_code


def _error_id(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("id") or "") if isinstance(body, Mapping) else ""
