"""Output hygiene at the posting boundary: what any answer, from any backend, may not carry.

``clean_answer(text)`` is applied to every ``SendReply`` (its ``message`` converter) and to the
text of slash-command answers, so the embedded service, the remote Agent API, an LLM, the
summaries and anything added later all pass through it:

- **No raw exception text.** An answer that looks like a traceback or an exception line
  (``Traceback (most recent call last)``, ``File "...", line N``, ``package.SomeError: ...``,
  a Java/JS stack frame) is replaced whole by the apology: its text may hold paths, hosts,
  SQL or tokens. Logged (type of marker only, never the text).
- **No channel-wide notifications.** ``@channel``, ``@all`` and ``@here`` (any case) get a
  zero-width space after the ``@``: they read the same but Mattermost's mention parser (which
  splits words on anything but letters, digits and ``.-_:@``) no longer sees them. Applying it
  twice changes nothing.
- **No link previews.** Posts carry ``POST_PROPS`` (``unsafe_links: "true"``): the server then
  neither unfurls links nor embeds images of the answer (the prop Mattermost's own AI posts use;
  an answer cannot make the server or readers' clients fetch a URL it chose).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from types import MappingProxyType

logger = logging.getLogger(__name__)

ZWSP = "\u200b"
_MARKER = "\N{ROBOT FACE}"  # == trigger.MARKER (checked by a test)
POST_PROPS: Mapping[str, str] = MappingProxyType({"unsafe_links": "true"})
APOLOGY = ("죄송합니다. 지금은 답변을 드릴 수 없습니다. 잠시 후 다시 시도해 주세요. "
           "(Sorry, I can't answer right now. Please try again in a moment.)")

_WIDE_MENTION = re.compile(r"@(?=(?:channel|all|here)(?![\w]))", re.IGNORECASE)
_EXCEPTION_MARKERS = (
    ("traceback", re.compile(r"Traceback \(most recent call last\)")),
    ("frame", re.compile(r'^\s*File "[^"\n]+", line \d+', re.MULTILINE)),
    ("exception_line", re.compile(
        r"^\s*(?:[A-Za-z_]\w*\.)+[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Timeout|Warning)"
        r"(?:\([^)\n]*\))?:", re.MULTILINE)),
    ("class_repr", re.compile(r"<class '[\w.]+(?:Error|Exception)'>")),
    ("java_frame", re.compile(r"^\s+at [\w.$<>]+\([\w.]+:\d+\)", re.MULTILINE)),
    ("js_frame", re.compile(r"^\s+at .+\((?:/|file:|node:)[^)\n]*:\d+:\d+\)", re.MULTILINE)),
)


def exception_marker(text: str) -> str | None:
    """The kind of exception text found in ``text`` (None when it looks clean)."""
    for name, pattern in _EXCEPTION_MARKERS:
        if pattern.search(text):
            return name
    return None


def neutralize_mentions(text: str) -> str:
    return _WIDE_MENTION.sub("@" + ZWSP, text)


def clean_answer(text: str) -> str:
    """The answer as it may be posted (see the module docstring). Idempotent."""
    marker = exception_marker(text)
    if marker is not None:
        logger.warning("hygiene: an answer carried exception text (%s); posted the apology "
                       "instead", marker)
        return _keep_prefix(text) + APOLOGY
    return neutralize_mentions(text)


def _keep_prefix(text: str) -> str:
    """Keep the reply marker (``trigger.MARKER``) in front, so the bot still ignores its own
    post (not imported: trigger imports messages, which uses this module)."""
    return _MARKER + " " if text.startswith(_MARKER) else ""
