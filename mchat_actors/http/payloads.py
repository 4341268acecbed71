"""Integration payloads from Mattermost: JSON or form bodies, read without trusting them.

``read_fields`` gives one flat ``{name: value}`` mapping for either encoding (the first value of
a repeated form key). Malformed input raises ``ApiError`` 400 (or 415 for other media types);
nothing here raises anything else.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request

from .errors import ApiError

JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded",)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_fields(request: Request, *, allow_json: bool = True) -> tuple[dict[str, Any], str]:
    """The payload's fields and its encoding (``"json"`` or ``"form"``).

    Raises:
        ApiError: 400 malformed JSON/form or not an object, 415 another media type.
    """
    kind = media_type(request)
    body = await request.body()
    if kind in JSON_TYPES or kind.endswith("+json"):
        if not allow_json:
            raise ApiError(415, "unsupported media type",
                           "send application/x-www-form-urlencoded")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ApiError(400, "malformed JSON", "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "malformed JSON", "the body must be a JSON object")
        return data, "json"
    if kind in FORM_TYPES or (kind == "" and not body):
        return parse_form(body), "form"
    raise ApiError(415, "unsupported media type",
                   "send application/json or application/x-www-form-urlencoded")


def parse_form(body: bytes) -> dict[str, str]:
    """Decode an urlencoded body; the first value wins for repeated keys.

    Raises:
        ApiError: 400 when the body is not UTF-8 or not ``name=value`` pairs.
    """
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict",
                          max_num_fields=1000)
    except ValueError:  # includes UnicodeDecodeError
        raise ApiError(400, "malformed form", "the body is not a valid urlencoded form") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def text_field(fields: dict[str, Any], name: str, *, required: bool = False,
               max_chars: int = 100_000) -> str:
    """A string field; 400 when required and missing, or not a string."""
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(400, "invalid payload", f"the field {name!r} is required")
        return ""
    if not isinstance(value, str):
        raise ApiError(400, "invalid payload", f"the field {name!r} must be a string")
    if len(value) > max_chars:
        raise ApiError(400, "invalid payload", f"the field {name!r} is too long")
    return value


def timestamp_ms(fields: dict[str, Any], encoding: str) -> int:
    """The post's ``create_at`` in ms: JSON sends milliseconds (a number), forms seconds (text).

    A missing timestamp means "now".
    """
    raw = fields.get("timestamp")
    if raw is None or raw == "":
        return int(time.time() * 1000)
    if encoding == "json":
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ApiError(400, "invalid payload", "timestamp must be a number (milliseconds)")
        value = float(raw)
    else:
        try:
            value = float(str(raw)) * 1000
        except ValueError:
            raise ApiError(400, "invalid payload", "timestamp must be a number (seconds)") \
                from None
    if not 0 <= value < 1e16:  # also refuses NaN and infinities
        raise ApiError(400, "invalid payload", "timestamp is out of range")
    return int(value)
