"""Parsers of setting values (``config``): each takes the raw text of one setting and returns
its value, or raises ``ValueError`` with a message naming what was expected (never the value of
a secret: see ``secret_url``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit


def timezone_name(raw: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {raw!r} (an IANA name such as Asia/Seoul)") from None
    return raw


def glossary_file(raw: str) -> str:
    from .chat.morph import read_glossary_files

    read_glossary_files(raw)  # ValueError: unreadable, or not [[same]] terms = [...]
    return raw


def boolean(raw: str) -> bool:
    low = raw.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def positive(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None
    if not value > 0:
        raise ValueError(f"must be greater than 0, got {raw!r}")
    return value


def positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"expected a whole number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {raw!r}")
    return value


def choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {raw!r}")
        return raw.lower()

    return parse


def csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def usernames(raw: str) -> tuple[str, ...]:
    return tuple(name.lstrip("@").lower() for name in csv(raw) if name.lstrip("@"))


def url(raw: str) -> str:
    if urlsplit(raw).scheme not in ("http", "https") or not urlsplit(raw).netloc:
        raise ValueError(f"expected an http(s) URL, got {raw!r}")
    return raw


def secret_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an http(s) URL (the value is a secret: not shown)")
    return raw


def existing_file(raw: str) -> str:
    if not Path(raw).is_file():
        raise ValueError(f"no such file: {raw!r}")
    return raw


def listen_address(raw: str) -> str:
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected host:port, got {raw!r}")
    return raw


def auto_join(raw: str) -> tuple[str, ...]:
    items = csv(raw)
    for item in items:
        team, sep, channel = item.partition("/")
        if not sep or not team or not channel:
            raise ValueError(f"expected team/channel or team/*, got {item!r}")
    return items


def cidrs(raw: str) -> tuple[str, ...]:
    import ipaddress

    items = csv(raw)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"not an address or CIDR network: {item!r}") from None
    return items
