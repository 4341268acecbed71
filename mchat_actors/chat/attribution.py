"""Who said a memory, when and where: the attribution every quoted memory carries (the author,
the time in the team's zone, the room or "personal", the link to the source post).

Used by the built-in answerer (``chat.answer``), the version history (``chat.history``) and
the slash commands' listings.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from .protocol import MemoryRecord

DEFAULT_TIMEZONE = "Asia/Seoul"

_HANGUL = re.compile(r"[\uac00-\ud7a3]")

def is_korean(text: str) -> bool:
    """True when ``text`` contains a Hangul syllable."""
    return bool(_HANGUL.search(text))


def scope_label(memory: MemoryRecord, *, korean: bool) -> str:
    """``방 기억`` / ``개인 기억`` (or ``room`` / ``personal``)."""
    if memory.scope == "personal":
        return "개인 기억" if korean else "personal"
    return "방 기억" if korean else "room"


def local_time(ms: int, tz: str = DEFAULT_TIMEZONE) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(tz))


def when_text(ms: int, tz: str = DEFAULT_TIMEZONE) -> str:
    """``2026-11-28 14:05 KST``."""
    t = local_time(ms, tz)
    return f"{t:%Y-%m-%d %H:%M} {t.tzname() or tz}"


def attribution(memory: MemoryRecord, *, korean: bool, tz: str = DEFAULT_TIMEZONE,
                label: str | None = None) -> str:
    """Who said it, when, where, and the link to the source post."""
    parts = []
    if memory.author_name:
        parts.append(memory.author_name)
    when = memory.valid_from_ms or memory.updated_at_ms or memory.created_at_ms
    if when:
        parts.append(when_text(when, tz))
    if label:
        parts.append(label)
    elif memory.scope == "personal":
        parts.append("개인 기억" if korean else "personal")
    elif memory.room_name:
        parts.append(f"#{memory.room_name}")
    if memory.permalink:
        parts.append(f"[{'원문' if korean else 'source'}]({memory.permalink})")
    return ", ".join(parts)


__all__ = ["DEFAULT_TIMEZONE", "attribution", "is_korean", "local_time", "scope_label",
           "when_text"]
