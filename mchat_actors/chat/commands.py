"""Recognise the bot's commands in the text addressed to it.

    >>> parse_command("/remember X부품 불량률 12%")
    Remember(text='X부품 불량률 12%')
    >>> parse_command("요약 3시간")
    Summarize(hours=3)
    >>> parse_command("help me with the report") is None   # a question
    True

Stable API (the remote adapter imports it): ``parse_command(prompt) -> Command | None`` and the
closed union ``Command = Remember | Search | Forget | ListMemories | Help | Summarize``;
dispatch with ``match``. Recognised forms (case-insensitive, leading ``@mentions`` ignored):

==========================  =======================================  =================
``/remember <text>``        also ``/기억 <text>``                      ``Remember(text)``
``/search <query>``         also ``/검색``                              ``Search(query)``
``/forget <query or id>``   also ``/잊어``, ``/삭제``; ids look like m42   ``Forget(target)``
``/memory``                 also ``/memories``, ``/기억목록``             ``ListMemories()``
``/memory history <q>``     also ``/기억이력 <q>``, ``/memory 이력 <q>`` ``ListMemories(history)``
``/help``                   also ``/도움말``                            ``Help()``
``요약 [N시간]``              ``요약 3h``, ``요약 2일``, ``요약해줘``,        ``Summarize(hours)``
                            ``3시간 요약``, ``/summary [N]``, ``/요약 [N]``
==========================  =======================================  =================

Arguments may be empty (``/remember`` alone gives ``Remember(text="")``); the service answers
those with a usage line. Anything else, including unknown ``/words``, is ``None``: a question.
"""

from __future__ import annotations

import re

import attrs

DEFAULT_SUMMARY_HOURS = 24
MAX_SUMMARY_HOURS = 24 * 7


@attrs.frozen
class Remember:
    """Store ``text`` as a memory of the room and of its author."""

    text: str


@attrs.frozen
class Search:
    """List the memories the asker may see that match ``query``."""

    query: str


@attrs.frozen
class Forget:
    """Delete the best visible match for ``target`` (a query, or a memory id such as ``m42``)."""

    target: str


@attrs.frozen
class ListMemories:
    """``/memory``: extract memories from the recent conversation, or list the room's memories.

    ``/memory history <query>`` (``/memory 이력 <query>``, ``/기억이력 <query>``) sets
    ``history``: list every version of the memories matching the query.
    """

    history: str = ""


@attrs.frozen
class Help:
    """Show the command list."""


@attrs.frozen
class Summarize:
    """Summarise the room's last ``hours`` hours."""

    hours: int = DEFAULT_SUMMARY_HOURS


Command = Remember | Search | Forget | ListMemories | Help | Summarize

_MENTIONS = re.compile(r"^(?:\s*@[\w.\-]+[\s,:]*)+")
_SLASH = re.compile(r"^/(?P<name>[^\s/]+)(?:\s+(?P<arg>.*))?$", re.DOTALL)
_NAMES: dict[str, str] = {
    "remember": "remember", "기억": "remember",
    "search": "search", "검색": "search",
    "forget": "forget", "잊어": "forget", "삭제": "forget",
    "memory": "memory", "memories": "memory", "기억목록": "memory",
    "기억이력": "history",
    "help": "help", "도움말": "help",
    "summary": "summary", "summarize": "summary", "요약": "summary",
}
_SUMMARY = re.compile(
    r"^요약(?:\s*(?:해\s*(?:줘|주세요|줄래)|하기|좀))?"
    r"(?:\s+(?P<n>\d{1,4})\s*(?P<unit>시간|h|hr|hrs|hour|hours|일|d|day|days)?)?"
    r"(?:\s*(?:요약)?\s*(?:해\s*(?:줘|주세요|줄래))?)?[\s.!?]*$",
    re.IGNORECASE,
)
_SUMMARY_AFTER = re.compile(  # "3시간 요약", "최근 3시간 요약해줘"
    r"^(?:최근|지난)?\s*(?P<n>\d{1,4})\s*(?P<unit>시간|h|hr|hrs|hour|hours|일|d|day|days)\s*"
    r"(?:동안\s*)?(?:대화\s*)?요약(?:\s*(?:해\s*(?:줘|주세요|줄래)|하기))?[\s.!?]*$",
    re.IGNORECASE,
)


def _hours(number: str | None, unit: str | None) -> int:
    if number is None:
        return DEFAULT_SUMMARY_HOURS
    hours = int(number) * (24 if unit and unit.lower() in ("일", "d", "day", "days") else 1)
    return max(1, min(MAX_SUMMARY_HOURS, hours))


def strip_mentions(text: str) -> str:
    """``text`` without its leading ``@mentions`` (``@ai 요약`` -> ``요약``)."""
    return _MENTIONS.sub("", text).strip()


def parse_command(prompt: str) -> Command | None:
    """The command in ``prompt``, or None when it is a question or ordinary text.

    Args:
        prompt: the text addressed to the bot, with or without the leading mention.
    """
    text = strip_mentions(prompt)
    if not text:
        return None
    slash = _SLASH.match(text)
    if slash:
        name = _NAMES.get(slash.group("name").lower())
        arg = (slash.group("arg") or "").strip()
        if name == "remember":
            return Remember(arg)
        if name == "search":
            return Search(arg)
        if name == "forget":
            return Forget(arg)
        if name == "memory":
            return _parse_memory_arg(arg)
        if name == "history":  # /기억이력 <query>
            return ListMemories(history=arg or " ")
        if name == "help":
            return Help()
        if name == "summary":
            return _parse_summary_arg(arg)
        return None
    summary = _SUMMARY.match(text) or _SUMMARY_AFTER.match(text)
    if summary:
        return Summarize(_hours(summary.group("n"), summary.group("unit")))
    return None


def _parse_memory_arg(arg: str) -> ListMemories:
    word, _, rest = arg.partition(" ")
    if word.lower() in ("history", "이력", "기록", "versions"):
        return ListMemories(history=rest.strip() or " ")
    return ListMemories()


def _parse_summary_arg(arg: str) -> Summarize | None:
    if not arg:
        return Summarize()
    found = re.fullmatch(r"(\d{1,4})\s*(시간|h|hr|hrs|hour|hours|일|d|day|days)?", arg, re.I)
    return Summarize(_hours(found.group(1), found.group(2))) if found else None


__all__ = [
    "DEFAULT_SUMMARY_HOURS",
    "Command",
    "Forget",
    "Help",
    "ListMemories",
    "Remember",
    "Search",
    "Summarize",
    "parse_command",
    "strip_mentions",
]
