"""A memory's versions in answers: the words that ask about the past (``이전``, ``지난달``,
``before``), what a version says of the one it replaced, and the history an answer lists.

Used by the built-in answerer (``chat.answer``) and the admin's version list (``curation``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from .attribution import DEFAULT_TIMEZONE, attribution, local_time
from .protocol import MemoryRecord
from .subject import value_of

# Words that ask about the past rather than the present; left out of the concepts.
_HISTORY_WORDS = re.compile(
    r"(?i)(?:(이전|예전|옛날|원래|과거|변경\s*전|바뀌기\s*전|지난달|지난주|어제|이력|전(?=에|엔))"
    r"(?:에는|에도|에|엔|은|는|의|부터)?(?![\uac00-\ud7a3])"
    r"|\b(previously|previous|before|used to|earlier|history|last month|last week|yesterday"
    r"|old)\b)")
_WHEN_AGO = {"지난달": 30, "last month": 30, "지난주": 7, "last week": 7, "어제": 1,
             "yesterday": 1}

def change_note(memory: MemoryRecord, *, korean: bool, tz: str = DEFAULT_TIMEZONE) -> str:
    """``(11/28 변경, 이전: 2주)`` for a memory that replaced an older version, else ''."""
    if memory.previous_content is None or not memory.valid_from_ms:
        return ""
    t = local_time(memory.valid_from_ms, tz)
    before = value_of(memory.previous_content)
    if korean:
        return f" ({t.month}/{t.day} 변경, 이전: {before})"
    return f" (changed {t.month}/{t.day}, before: {before})"


def format_version(memory: MemoryRecord, *, korean: bool, tz: str = DEFAULT_TIMEZONE) -> str:
    """One version of a history: its state (current, replaced, forgotten), its span and author."""
    start = local_time(memory.valid_from_ms or memory.created_at_ms, tz)
    if memory.forgotten_at_ms is not None:
        state = "잊음" if korean else "forgotten"
    elif memory.valid_to_ms is None:
        state = "현재" if korean else "current"
    else:
        state = "이전" if korean else "before"
    span = f"{start:%m/%d}~"
    if memory.valid_to_ms is not None:
        span += f"{local_time(memory.valid_to_ms, tz):%m/%d}"
    return (f"- [{state}] `{memory.id}` {memory.content} ({span}) — "
            f"{attribution(memory, korean=korean, tz=tz)}")


def history_question(question: str) -> tuple[str, int | None] | None:
    """When ``question`` asks about the past: the question without those words and how many days
    ago it looks (None: any earlier version). None for questions about the present."""
    found = [m.group(1) or m.group(2) for m in _HISTORY_WORDS.finditer(question)]
    if not found:
        return None
    days = next((_WHEN_AGO[w.lower()] for w in found if w.lower() in _WHEN_AGO), None)
    return _HISTORY_WORDS.sub(" ", question), days


def history_answer(chosen: Sequence[MemoryRecord],
                    history: Mapping[str, Sequence[MemoryRecord]], *, korean: bool, tz: str,
                    days: int | None, now_ms: int | None) -> str:
    lines = ["기억의 이력입니다:" if korean else "Here is the history:"]
    for m in chosen:
        chain = [v for v in history.get(m.id, (m,)) if v.forgotten_at_ms is None]
        if days is not None and now_ms is not None:
            at = now_ms - days * 86_400_000
            then = [v for v in chain if v.valid_from_ms <= at
                    and (v.valid_to_ms is None or v.valid_to_ms > at)]
            if then:
                lines.append(("그 무렵의 기억: " if korean else "At that time: ")
                             + format_version(then[0], korean=korean, tz=tz)[2:])
        if len(chain) == 1:
            lines.append("이전 버전 없이 지금 기억만 있습니다:" if korean
                         else "No earlier version; the current memory:")
        lines.extend(format_version(v, korean=korean, tz=tz) for v in reversed(chain))
    return "\n".join(lines)


__all__ = ["change_note", "format_version", "history_answer", "history_question"]
