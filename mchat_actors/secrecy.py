"""Secret settings: wrapped so they cannot be printed by accident, and readable from files.

``Secret`` holds a token, key or secret URL. ``str()``, ``repr()``, f-strings, ``%s`` and
exception text all show ``[redacted]``; the value is reached only through ``reveal()``, at the
few places that put it on the wire (an ``Authorization`` header, a constant-time compare).

Every secret setting ``NAME`` can instead be given as ``NAME_FILE``: the path of a file holding
it (container secret mounts); one trailing newline is dropped. Setting both is an error.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REDACTED = "[redacted]"

# every setting that holds a secret (each may also come from <NAME>_FILE)
SECRET_SETTINGS = (
    "MCHAT_TOKEN",
    "MCHAT_ADMIN_TOKEN",
    "MCHAT_WEBHOOK_TOKENS",
    "MCHAT_SLASH_TOKENS",
    "MCHAT_OUTGOING_WEBHOOK_TOKENS",
    "MCHAT_INCOMING_WEBHOOK_URL",
    "LLM_API_KEY",
    "CHAT_BACKEND_API_KEY",
    "CHAT_AGENT_SERVICE_PASSWORD",
    "EMBEDDINGS_API_KEY",
    "MCHAT_DATABASE_URL",
)
MAX_SECRET_FILE_BYTES = 64 * 1024


class Secret:
    """A secret string. Equal to another ``Secret`` or ``str`` with the same value (compared
    in constant time); hashable; never printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("a Secret holds a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return format(REDACTED, spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            other = other._value
        if not isinstance(other, str):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not pickled")


def secret(value: str | Secret | None) -> Secret | None:
    """Converter for optional secret fields."""
    return None if value is None else Secret(value)


def secrets_tuple(values: Any) -> tuple[Secret, ...]:
    """Converter for lists of secrets (webhook tokens)."""
    return tuple(Secret(v) for v in values)


def reveal(value: Secret | str | None) -> str | None:
    if value is None:
        return None
    return value.reveal() if isinstance(value, Secret) else value


def resolve_secret_files(values: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Replace every ``<NAME>_FILE`` of a secret setting by ``NAME`` read from that file.

    Returns the new values and one problem line per unusable file (the file's content is never
    quoted in a problem).
    """
    out = dict(values)
    problems: list[str] = []
    for name in SECRET_SETTINGS:
        path = (out.pop(f"{name}_FILE", None) or "").strip()
        if not path:
            continue
        if (out.get(name) or "").strip():
            problems.append(f"{name} and {name}_FILE are both set: use one")
            continue
        try:
            raw = Path(path).read_bytes()[: MAX_SECRET_FILE_BYTES + 1]
        except OSError as exc:
            problems.append(f"{name}_FILE: cannot read {path!r} ({exc.strerror})")
            continue
        except ValueError:  # a NUL byte in the path
            problems.append(f"{name}_FILE: not a usable path: {path!r}")
            continue
        if len(raw) > MAX_SECRET_FILE_BYTES:
            problems.append(f"{name}_FILE: {path!r} is larger than 64 KiB")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{name}_FILE: {path!r} is not UTF-8 text")
            continue
        text = text[:-1] if text.endswith("\n") else text
        text = text[:-1] if text.endswith("\r") else text
        if not text.strip():
            problems.append(f"{name}_FILE: {path!r} is empty")
            continue
        out[name] = text
    return out, problems


def secret_values(config: Any) -> list[str]:
    """Every secret value held by ``config`` (for the log redaction)."""
    import attrs

    found: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, Secret):
            if obj.reveal():
                found.append(obj.reveal())
        elif isinstance(obj, tuple | list):
            for item in obj:
                walk(item)
        elif attrs.has(type(obj)):
            for field in attrs.fields(type(obj)):
                value = getattr(obj, field.name)
                if field.repr is False and isinstance(value, str) and value:
                    found.append(value)  # a secret kept as str (e.g. a webhook URL)
                else:
                    walk(value)

    walk(config)
    return found
