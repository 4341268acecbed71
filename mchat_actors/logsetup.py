"""Logging of the process: human text (the terminal default) or one JSON object a line, and
redaction of secrets in every line of either.

``configure(level, fmt)`` installs one stderr handler on the root logger:

- ``text``: ``2026-01-02 03:04:05,678 INFO mchat_actors.app: message``.
- ``json`` (``MCHAT_LOG_FORMAT=json``): rendered by structlog's ``ProcessorFormatter`` for
  every stdlib record: ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the
  fields in ``FIELDS`` when a log call passes them in ``extra=`` (``mchat_channel_id``,
  ``mchat_user_id``, ``action``, ``latency_ms``, ``memory_count``, ...), and ``exception``
  (the formatted traceback) when there is one.

Redaction (``Redactor``) runs on the *finished* line, so the message, its arguments, extra
fields and tracebacks are all covered: the values of every configured secret (registered with
``add_secrets`` once the config is loaded; also in their JSON-escaped form) and anything shaped
like a credential (``Bearer <long token>``, ``token=...``, ``api_key: ...``, ``sk-...`` keys,
``user:password@`` in URLs, JWTs) become ``[redacted]``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import IO

import structlog

from .secrecy import REDACTED

__all__ = ["REDACTED", "Redactor", "add_secrets", "configure", "fields", "redact"]

FORMATS = ("text", "json")
FIELDS = ("mchat_channel_id", "mchat_user_id", "mchat_post_id", "action", "latency_ms",
          "memory_count", "status", "source")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|token)(\s+)[A-Za-z0-9._~+/=-]{16,}"), rf"\1\2{REDACTED}"),
    (re.compile(r"(?i)([\"']?\b(?:access_token|auth_token|token|api[_-]?key|apikey|x-api-key|"
                r"password|passwd|secret|client_secret|authorization)[\"']?\s*[:=]\s*[\"']?)"
                r"(?!\[redacted\])([^\s\"',;&}\]]{4,})"), rf"\1{REDACTED}"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), REDACTED),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@:]+:[^\s/@]+@"), rf"\1{REDACTED}@"),
)


class Redactor:
    """Masks known secret values and credential-shaped text."""

    def __init__(self) -> None:
        self._known: list[str] = []

    def add(self, values: Iterable[str]) -> None:
        forms = set(self._known)
        for value in values:
            if len(value) >= 4:
                forms.add(value)
                forms.add(json.dumps(value)[1:-1])  # as it appears inside a JSON line
        self._known = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._known:
            if value in text:
                text = text.replace(value, REDACTED)
        for pattern, replacement in _SHAPES:
            text = pattern.sub(replacement, text)
        return text


class RedactingFormatter(logging.Formatter):
    """Formats with ``inner`` and redacts the finished text."""

    def __init__(self, inner: logging.Formatter, redactor: Redactor) -> None:
        super().__init__()
        self.inner = inner
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(self.inner.format(record))


def fields(*, channel_id: str | None = None, user_id: str | None = None,
           post_id: str | None = None, action: str | None = None,
           latency_s: float | None = None, memory_count: int | None = None,
           source: str | None = None) -> dict[str, object]:
    """``extra=`` for a log call: the known structured fields, the unknown ones left out."""
    out: dict[str, object] = {}
    for key, value in (("mchat_channel_id", channel_id), ("mchat_user_id", user_id),
                       ("mchat_post_id", post_id), ("action", action),
                       ("memory_count", memory_count), ("source", source)):
        if value is not None:
            out[key] = value
    if latency_s is not None:
        out["latency_ms"] = round(latency_s * 1000.0, 1)
    return out


def json_formatter() -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(allow=FIELDS),
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )


def configure(level: str = "INFO", fmt: str = "text", *,
              stream: IO[str] | None = None) -> Redactor:
    """Install the process's log handler (replacing earlier ones); returns its redactor."""
    redactor = Redactor()
    inner = json_formatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(RedactingFormatter(inner, redactor))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return redactor


def redactors() -> list[Redactor]:
    """The redactors of the root logger's handlers (those installed by ``configure``)."""
    found = []
    for handler in logging.getLogger().handlers:
        fmt = handler.formatter
        if isinstance(fmt, RedactingFormatter):
            found.append(fmt.redactor)
    return found


def add_secrets(values: Iterable[str]) -> None:
    """Register secret values with every installed redactor (after the config is loaded)."""
    values = list(values)
    for redactor in redactors():
        redactor.add(values)


def redact(text: str) -> str:
    """``text`` as the installed redactors would log it (for lines printed to stderr)."""
    for redactor in redactors():
        text = redactor(text)
    if not redactors():
        text = Redactor()(text)
    return text
