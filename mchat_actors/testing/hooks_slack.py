"""Slack compatibility of the fake's integrations: text rewriting, attachments, post splitting.

Pure functions, as in ``app/webhook.go``, ``app/slack.go`` and ``model/slack_attachment.go`` of
the real server: ``<!channel>``/``<!here>``/``<!all>`` become ``@channel`` …, ``<@USER_ID>``
becomes ``@username``, ``<url|text>`` becomes ``[text](url)``; null attachments and fields are
dropped; a webhook post longer than MaxPostSize is cut into several posts at rune boundaries
and its attachments are spread so each post's props stay within 760 000 runes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import orjson

from .apperror import AppError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

PROPS_MAX_USER_RUNES = 760_000
_LINK_WITH_TEXT = re.compile(r"<([^\n<|>]+)\|([^|\n>]+)>")
_ANNOUNCEMENT = re.compile(r"<!(channel|here|all)>")
_USER_ID = re.compile(r"<@([a-z0-9]{26})>")

Attachment = dict[str, object]


def links_to_markdown(text: str) -> str:
    """``<https://x|label>`` -> ``[label](https://x)`` (``ParseSlackLinksToMarkdown``)."""
    return _LINK_WITH_TEXT.sub(r"[\2](\1)", text)


def process_slack_text(text: str, username_of: Callable[[str], str | None]) -> str:
    """``ProcessSlackText``: announcements and ``<@id>`` user references."""
    text = _ANNOUNCEMENT.sub(r"@\1", text)

    def user(match: re.Match[str]) -> str:
        name = username_of(match.group(1))
        return f"@{name}" if name else match.group(0)

    return _USER_ID.sub(user, text)


def process_attachments(
    attachments: Sequence[object] | None, username_of: Callable[[str], str | None]
) -> list[Attachment]:
    """``ProcessSlackAttachments``: null entries and fields dropped, texts processed."""
    out: list[Attachment] = []
    for item in attachments or ():
        if not isinstance(item, dict):
            continue
        attachment = dict(item)
        for key in ("pretext", "text", "title"):
            if isinstance(attachment.get(key), str):
                attachment[key] = process_slack_text(str(attachment[key]), username_of)
        fields = attachment.get("fields")
        if isinstance(fields, list):
            kept = [dict(f) for f in fields if isinstance(f, dict)]
            for field in kept:
                if isinstance(field.get("value"), str):
                    field["value"] = process_slack_text(str(field["value"]), username_of)
            attachment["fields"] = kept
        out.append(attachment)
    return out


def attachments_to_markdown(attachments: Sequence[Attachment]) -> list[Attachment]:
    """The link rewriting ``ParseSlackAttachment`` applies before storing attachments."""
    out = []
    for attachment in attachments:
        converted = dict(attachment)
        for key in ("text", "pretext"):
            if isinstance(converted.get(key), str):
                converted[key] = links_to_markdown(str(converted[key]))
        fields = converted.get("fields")
        if isinstance(fields, list):
            converted["fields"] = [
                {**f, "value": links_to_markdown(f["value"])} if isinstance(f.get("value"), str)
                else f
                for f in fields if isinstance(f, dict)
            ]
        out.append(converted)
    return out


def split_props_error() -> AppError:
    return AppError(400, "web.incoming_webhook.split_props_length.app_error",
                    f"Unable to split webhook props into {PROPS_MAX_USER_RUNES} character parts.")


def split_webhook_post(
    message: str, base_props: dict[str, object], attachments: Sequence[Attachment],
    max_runes: int,
) -> list[tuple[str, dict[str, object]]]:
    """``splitWebhookPost``: ``(message, props)`` per post to create, in order.

    Raises:
        AppError: 400 when the props cannot fit in 760 000 runes.
    """
    if _runes(base_props) > PROPS_MAX_USER_RUNES:
        raise split_props_error()
    splits: list[tuple[str, dict[str, object]]] = []
    while len(message) > max_runes:
        splits.append((message[:max_runes], dict(base_props)))
        message = message[max_runes:]
    splits.append((message, dict(base_props)))
    for attachment in attachments:
        new_attachment = dict(attachment)
        while True:
            last_message, last_props = splits[-1]
            existing = last_props.get("attachments")
            original = list(existing) if isinstance(existing, list) else []
            new_props = {**last_props, "attachments": [*original, new_attachment]}
            count = _runes(new_props)
            if count <= PROPS_MAX_USER_RUNES:
                splits[-1] = (last_message, new_props)
                break
            if original:
                splits.append(("", dict(base_props)))
                continue
            needed = count - PROPS_MAX_USER_RUNES
            text = str(attachment.get("text") or "")
            if len(text) < needed:
                raise split_props_error()
            new_attachment["text"] = text[: len(text) - needed]
            splits[-1] = (last_message, new_props)
            break
    return splits


def _runes(props: dict[str, object]) -> int:
    return len(orjson.dumps(props).decode())
