"""Outgoing webhooks: a post-created listener that POSTs matching posts to callback URLs.

Rules of ``handleWebhookEvents``/``TriggerWebhook`` (§7 of the protocol doc): only posts that
may trigger webhooks (not webhook or system posts) in public channels; per hook of the
channel's team whose channel is the post's or empty: a channel-bound hook without trigger
words fires on every post, else the message's first whitespace-separated word must equal
(``trigger_when`` 0) or start with (1) a trigger word, case-sensitively. Hooks are called one
after the other, their callback URLs concurrently, each within the server's timeout. The
answer's status is ignored; a JSON body with ``text`` (or attachments) becomes a post by the
hook's creator (``response_type: "comment"`` replies to the triggering post); an empty body
posts nothing, invalid JSON is logged. Every call is recorded in ``Hooks.deliveries``.

The real server computes one ``trigger_word`` for all the hooks a post matches (the last
match wins); the fake sends each hook its own.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import attrs
import httpx
import orjson
import trio

from .apperror import AppError
from .hooks_models import JSON, Delivery, OutgoingHook
from .hooks_slack import process_attachments, process_slack_text

if TYPE_CHECKING:
    from .app import PostCreated
    from .hooks import Hooks

logger = logging.getLogger(__name__)

EXACT, STARTS_WITH = 0, 1


def matching_trigger(hook: OutgoingHook, channel_id: str, first_word: str) -> str | None:
    """The ``trigger_word`` the hook is called with for this post, ``None`` if it is not."""
    if hook.channel_id not in (channel_id, ""):
        return None
    if hook.channel_id == channel_id and not hook.trigger_words:
        return ""
    for word in hook.trigger_words:
        if hook.trigger_when == EXACT and first_word == word:
            return word
        if hook.trigger_when == STARTS_WITH and first_word.startswith(word):
            return word
    return None


@attrs.define(eq=False)
class OutgoingWebhooks:
    hooks: Hooks

    async def on_post_created(self, created: PostCreated) -> None:
        """The post-created listener (runs after the ``posted`` broadcast)."""
        channel = created.channel
        if not created.trigger_webhooks or channel.type != "O":
            return
        post = created.post
        words = str(post["message"]).split()
        first_word = words[0] if words else ""
        for hook in [h for h in self.hooks.outgoing.values() if h.team_id == channel.team_id]:
            trigger_word = matching_trigger(hook, channel.id, first_word)
            if trigger_word is None:
                continue
            payload = self._payload(hook, created, trigger_word)
            async with trio.open_nursery() as nursery:
                for url in hook.callback_urls:
                    nursery.start_soon(self._deliver, hook, url, payload, created)

    def _payload(self, hook: OutgoingHook, created: PostCreated, trigger_word: str
                 ) -> dict[str, object]:
        post, channel = created.post, created.channel
        team = self.hooks.state.teams[channel.team_id]
        file_ids = post.get("file_ids") or []
        assert isinstance(file_ids, list)
        return {
            "token": hook.token, "team_id": hook.team_id, "team_domain": team.name,
            "channel_id": channel.id, "channel_name": channel.name,
            "timestamp": post["create_at"], "user_id": created.author.id,
            "user_name": created.author.username, "post_id": post["id"],
            "text": post["message"], "trigger_word": trigger_word,
            "file_ids": ",".join(str(f) for f in file_ids),
        }

    async def _deliver(self, hook: OutgoingHook, url: str, payload: dict[str, object],
                       created: PostCreated) -> None:
        if hook.content_type == JSON:
            content_type, body = JSON, orjson.dumps(payload)
        else:
            form = {**payload, "timestamp": str(int(payload["timestamp"]) // 1000)}  # type: ignore[call-overload]
            content_type, body = "application/x-www-form-urlencoded", urlencode(
                sorted(form.items())).encode()
        record = _DeliveryRecord(self.hooks, hook.id, url, content_type, body)
        try:
            answer = await self.hooks.send(
                "POST", url, [("Content-Type", content_type), ("Accept", "application/json")],
                body)
        except trio.TooSlowError:
            logger.warning("outgoing webhook %s: %s timed out after %s s", hook.id, url,
                           self.hooks.timeout_s)
            record.done("timeout")
            return
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            logger.warning("outgoing webhook %s: POST %s failed: %s", hook.id, url, exc)
            record.done("error")
            return
        record.answer(answer.status, answer.body)
        reply = _decode_reply(answer.body)
        if isinstance(reply, str):
            logger.warning("outgoing webhook %s: %s answered invalid JSON", hook.id, url)
            record.done(reply)
            return
        if reply is None or (reply.get("text") is None and not reply.get("attachments")):
            record.done("no post")
            return
        try:
            posts = self._post_reply(hook, reply, created)
        except AppError as err:
            logger.warning("outgoing webhook %s: reply post failed: %s", hook.id, err)
            record.done("post failed")
            return
        record.done("posted", tuple(str(p["id"]) for p in posts))

    def _post_reply(self, hook: OutgoingHook, reply: dict[str, object], created: PostCreated
                    ) -> list[dict[str, object]]:
        hooks = self.hooks
        props = dict(reply.get("props") or {})  # type: ignore[call-overload]
        props["webhook_display_name"] = hook.display_name
        text = process_slack_text(str(reply.get("text") or ""), hooks.username_of)
        attachments = reply.get("attachments")
        assert attachments is None or isinstance(attachments, list)
        return hooks.create_webhook_posts(
            hooks.state.users[hook.creator_id], created.channel, text,
            username=str(reply.get("username") or hook.username),
            icon_url=str(reply.get("icon_url") or hook.icon_url), props=props,
            attachments=process_attachments(attachments, hooks.username_of),
            post_type=str(reply.get("type") or ""),
            root_id=str(created.post["id"]) if reply.get("response_type") == "comment" else "",
            priority=reply.get("priority"),
        )


def _decode_reply(body: bytes) -> dict[str, object] | str | None:
    """The first JSON value of ``body`` as Go's json.Decoder reads it.

    ``None`` for an empty body (or ``null``), ``"invalid json"`` when it is not an
    ``OutgoingWebhookResponse``.
    """
    text = body.decode("utf-8", "replace").lstrip()
    if not text:
        return None
    try:
        value, _end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError:
        return "invalid json"
    if value is None:
        return None
    if not isinstance(value, dict):
        return "invalid json"
    for key, kind in (("text", str), ("username", str), ("icon_url", str), ("type", str),
                      ("response_type", str), ("props", dict), ("attachments", list),
                      ("priority", dict)):
        if value.get(key) is not None and not isinstance(value[key], kind):
            return "invalid json"
    return value


@attrs.define
class _DeliveryRecord:
    hooks: Hooks
    hook_id: str
    url: str
    content_type: str
    body: bytes
    status: int | None = None
    response: bytes = b""

    def answer(self, status: int, response: bytes) -> None:
        self.status, self.response = status, response

    def done(self, outcome: str, post_ids: tuple[str, ...] = ()) -> None:
        self.hooks.record(Delivery(
            kind="outgoing", hook_id=self.hook_id, url=self.url, method="POST",
            content_type=self.content_type, body=self.body, outcome=outcome,
            status=self.status, response=self.response, post_ids=post_ids))
