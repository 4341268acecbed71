"""Summaries of a room's recent conversation (``요약 [N시간]``).

With an LLM the (masked) conversation is summarised by the model; without one
``builtin_summary`` writes an extractive summary: the window, the number of messages, the
participants and up to five key lines (lines with figures, dates, decisions or issues score
highest; questions and commands are left out). A summary is stored as a room memory whose
``window_key`` is ``summary:<hours>h:<hour of the request>``, so asking twice within the same
clock hour for the same span replaces the first summary instead of adding another.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from .commands import parse_command
from .masking import mask_for_storage, mask_sensitive
from .protocol import LLM

DEFAULT_TIMEZONE = "Asia/Seoul"

MAX_KEY_LINES = 5
MIN_KEY_LINE_SCORE = 0.3  # "좋아요" and the like are not key lines
MAX_LINE_CHARS = 160
MAX_LLM_LINES = 400
_HOUR_MS = 3_600_000

_KEYWORDS = re.compile(
    r"결정|확정|일정|배포|릴리스|회의|마감|완료|불량|이슈|문제|장애|원인|조치|변경|연기|합격|불합격|"
    r"승인|검사|테스트|결과|공급|납기|출하|담당|decid|deadline|release|deploy|meeting|issue|"
    r"fail|pass|result|supplier|due|approved|postpone|fixed",
    re.IGNORECASE,
)
_FIGURE = re.compile(r"\d")
_MENTION = re.compile(r"^(?:\s*@[\w.\-]+[\s,:]*)+")

_SUMMARY_PROMPT = """\
Summarise this team chat of the last {hours} hours for someone who missed it, in Korean unless \
the chat is entirely in another language: first one line with the main topics, then at most \
six bullet points with decisions, figures, dates, owners and open issues. Quote figures \
exactly. Do not invent anything."""


def window_key(hours: int, now_ms: int) -> str:
    """The idempotency key of a summary of ``hours`` hours asked at ``now_ms``."""
    return f"summary:{hours}h:{now_ms // _HOUR_MS}"


def is_chatter(content: str) -> bool:
    """True for messages a summary leaves out: commands and questions to the bot."""
    text = _MENTION.sub("", content).strip()
    return (not text or parse_command(text) is not None or text.startswith("/")
            or (content.lstrip().startswith("@") and text.endswith("?")))


def _clock(ms: int, tz: str = DEFAULT_TIMEZONE) -> str:
    """``11-28 14:05`` in ``tz`` (MCHAT_TIMEZONE, KST by default)."""
    t = datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(tz))
    return f"{t:%m-%d %H:%M}"


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_LINE_CHARS else text[: MAX_LINE_CHARS - 1] + "…"


def _line_score(content: str) -> float:
    score = min(len(content), 120) / 120
    score += 1.0 if _FIGURE.search(content) else 0.0
    score += 0.8 * min(2, len(_KEYWORDS.findall(content)))
    if content.rstrip().endswith("?"):
        score -= 1.0
    return score


def builtin_summary(rows: Sequence[sqlite3.Row], *, hours: int, now_ms: int,
                    tz: str = DEFAULT_TIMEZONE) -> str:
    """An extractive summary of ``rows`` (messages with ``user_name``, oldest first), masked."""
    start = now_ms - hours * _HOUR_MS
    head = f"📋 최근 {hours}시간 요약 ({_clock(start, tz)} ~ {_clock(now_ms, tz)})"
    if not rows:
        return f"{head}\n이 기간에는 대화가 없습니다."
    participants = list(dict.fromkeys(r["user_name"] or "?" for r in rows))
    ranked = sorted(range(len(rows)), key=lambda i: (-_line_score(rows[i]["content"]), i))
    worthy = [i for i in ranked if _line_score(rows[i]["content"]) >= MIN_KEY_LINE_SCORE]
    key = sorted((worthy or ranked)[:MAX_KEY_LINES])
    lines = [
        head,
        f"- 메시지 {len(rows)}개, 참여자 {len(participants)}명: {', '.join(participants)}",
        "- 주요 내용:",
    ]
    lines += [f"  • {rows[i]['user_name'] or '?'}: {_shorten(rows[i]['content'])}" for i in key]
    return mask_sensitive("\n".join(lines))


SUMMARY_MAX_TOKENS = 800


async def llm_summary(llm: LLM, rows: Sequence[sqlite3.Row], *, hours: int, now_ms: int,
                      mask: bool = True, tz: str = DEFAULT_TIMEZONE) -> str:
    """The model's summary of ``rows`` (masked before sending), under the same heading."""
    hide = mask_sensitive if mask else mask_for_storage
    convo = "\n".join(
        f"[{_clock(r['created_at'], tz)}] {r['user_name'] or 'user'}: {hide(r['content'])}"
        for r in rows[-MAX_LLM_LINES:]
    )
    text = await llm.complete([
        {"role": "system", "content": _SUMMARY_PROMPT.format(hours=hours)},
        {"role": "user", "content": convo},
    ], max_tokens=SUMMARY_MAX_TOKENS)
    start = now_ms - hours * _HOUR_MS
    head = (f"📋 최근 {hours}시간 요약 ({_clock(start, tz)} ~ {_clock(now_ms, tz)}, "
            f"메시지 {len(rows)}개)")
    body = mask_sensitive(text.strip())
    return f"{head}\n{body}" if body else builtin_summary(rows, hours=hours, now_ms=now_ms,
                                                          tz=tz)
