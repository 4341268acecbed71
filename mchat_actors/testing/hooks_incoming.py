"""Incoming webhooks: ``POST /hooks/{id}`` (site root, no auth; the id is the secret).

The body is JSON (no ``Content-Type``, ``application/json`` or anything else), the JSON in the
form field ``payload`` (``application/x-www-form-urlencoded``) or plain form fields
(``multipart/form-data``). Malformed JSON is retried once with raw newlines and tabs escaped
inside ``text``/``fallback``/``pretext``/``author_name``/``title``/``value`` strings, as the
server does. Success is 200 ``text/plain`` ``ok``; errors are AppErrors (§6 of the protocol
doc). The posts go through :meth:`.hooks.Hooks.create_webhook_posts`: broadcast, listeners,
no outgoing webhooks.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import attrs
import orjson

from .apperror import AppError, route_not_found
from .hooks_slack import process_attachments, process_slack_text
from .routing import Response

if TYPE_CHECKING:
    from .hooks import Hooks
    from .models import FakeChannel
    from .routing import Request, Router

_HOOK_ID = re.compile(r"[A-Za-z0-9]+")
_ESCAPABLE = re.compile(
    rb'(?s)"(text|fallback|pretext|author_name|title|value)"\s*:\s*"(\\"|[^"])*"')
_STRING_FIELDS = ("text", "channel", "username", "icon_url", "icon_emoji", "type")


def parse_error() -> AppError:
    return AppError(400, "model.incoming_hook.parse_data.app_error",
                    "Unable to parse incoming data.")


@attrs.define(eq=False)
class IncomingWebhooks:
    hooks: Hooks

    def register(self, router: Router) -> None:
        router.add("POST", "/hooks/{hook_id}", self.handle, auth=False)

    async def handle(self, request: Request) -> Response:
        hook_id = request.params["hook_id"]
        if not _HOOK_ID.fullmatch(hook_id):
            raise route_not_found()
        self.post(hook_id, parse_payload(request))
        return Response(200, b"ok", "text/plain")

    def post(self, hook_id: str, payload: dict[str, object] | None) -> list[dict[str, object]]:
        """``HandleIncomingWebhook``: the posts made for ``payload``.

        Raises:
            AppError: the real server's answer for the same request.
        """
        if payload is None:
            raise AppError(400, "web.incoming_webhook.parse.app_error",
                           "Unable to parse incoming data.")
        text = str(payload.get("text") or "")
        raw_attachments = payload.get("attachments")
        if not text and raw_attachments is None:
            raise AppError(400, "web.incoming_webhook.text.app_error", "No text specified.")
        hook = self.hooks.incoming.get(hook_id)
        if hook is None:
            raise AppError(400, "web.incoming_webhook.invalid.app_error", "Invalid webhook.")
        state = self.hooks.state
        creator = state.users[hook.user_id]
        props = dict(payload.get("props") or {})  # type: ignore[call-overload]
        props["webhook_display_name"] = hook.display_name
        text = process_slack_text(text, self.hooks.username_of)
        assert raw_attachments is None or isinstance(raw_attachments, list)
        attachments = process_attachments(raw_attachments, self.hooks.username_of)
        post_type = str(payload.get("type") or "")
        if attachments:
            post_type = "slack_attachment"
        channel = self._channel(str(payload.get("channel") or ""), hook.channel_id,
                                hook.team_id, hook.user_id)
        if hook.channel_locked and hook.channel_id != channel.id:
            raise AppError(403, "web.incoming_webhook.channel_locked.app_error",
                           "This webhook is not permitted to post to the requested channel.")
        if channel.type != "O" and not state.can_read(creator, channel):
            raise AppError(403, "web.incoming_webhook.permissions.app_error",
                           "Inappropriate channel permissions.")
        return self.hooks.create_webhook_posts(
            creator, channel, text, username=str(payload.get("username") or hook.username),
            icon_url=str(payload.get("icon_url") or hook.icon_url),
            icon_emoji=str(payload.get("icon_emoji") or ""), props=props,
            attachments=attachments, post_type=post_type, priority=payload.get("priority"),
        )

    def _channel(self, name: str, default_id: str, team_id: str, creator_id: str) -> FakeChannel:
        state = self.hooks.state
        if name.startswith("@"):
            other = state.find_user(name[1:])
            if other is None or other.username.lower() != name[1:].lower():  # usernames only
                raise AppError(400, "web.incoming_webhook.user.app_error",
                               "Couldn't find the user.")
            return self.hooks.direct_channel(creator_id, other.id)
        wanted = name[1:] if name.startswith("#") else name
        if not wanted:
            channel = state.channels.get(default_id)
            if channel is None:
                raise AppError(404, "app.channel.get.existing.app_error",
                               "Unable to find the existing channel.")
            return channel
        for channel in state.channels.values():
            if channel.team_id == team_id and channel.name == wanted:
                return channel
        raise AppError(404, "web.incoming_webhook.channel.app_error", "Couldn't find the channel.")


def parse_payload(request: Request) -> dict[str, object] | None:
    """The incoming webhook request of ``request`` (``None`` for a JSON ``null``).

    Raises:
        AppError: 400 ``model.incoming_hook.parse_data.app_error``.
    """
    content_type = request.header("content-type") or ""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        return _decode_json(form.get("payload", [""])[0].encode())
    if media_type == "multipart/form-data":
        return _multipart_fields(content_type, request.body)
    return _decode_json(request.body)


def _decode_json(raw: bytes) -> dict[str, object] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        escaped = _ESCAPABLE.sub(
            lambda m: m.group(0).replace(b"\n", b"\\n").replace(b"\t", b"\\t"), raw)
        try:
            value = orjson.loads(escaped)
        except orjson.JSONDecodeError:
            raise parse_error() from None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise parse_error()
    _check_types(value)
    return value


def _check_types(value: dict[str, object]) -> None:
    """What Go's json.Unmarshal into ``IncomingWebhookRequest`` would refuse."""
    for key in _STRING_FIELDS:
        if value.get(key) is not None and not isinstance(value[key], str):
            raise parse_error()
    for key, kind in (("props", dict), ("attachments", list), ("priority", dict)):
        if value.get(key) is not None and not isinstance(value[key], kind):
            raise parse_error()
    attachments = value.get("attachments")
    if isinstance(attachments, list) and any(
        a is not None and not isinstance(a, dict) for a in attachments
    ):
        raise parse_error()


def _multipart_fields(content_type: str, body: bytes) -> dict[str, object]:
    """Form fields of a multipart body mapped onto the request's string fields."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise parse_error()
    out: dict[str, object] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and name in _STRING_FIELDS:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                out[name] = payload.decode("utf-8", "replace")
    return out
