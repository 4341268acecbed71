"""When does a post get an answer, and what is the prompt? Pure rules from architecture.md.

- The bot's own posts (by user id, or starting with the marker emoji) and system posts are
  ignored: not stored, never answered.
- A post whose text contains ``@ai`` (any case) or ``@<bot username>`` / ``@<MCHAT_BOT_NAME>``
  gets exactly one answer.
- In a DM every post is answered (``MCHAT_RESPOND_TO_ALL_DM``).
- ``/cmd args`` at the start of a post is a command (remember, search, forget, memory, help).
  ``@ai /cmd args`` is the same command; ``@ai help me ...`` is a question.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from .messages import Post, PostId

MARKER = "🤖"  # every reply starts with it; posts starting with it are never answered
COMMANDS = ("remember", "search", "forget", "memory", "help")
_COMMAND_RE = re.compile(r"^/(" + "|".join(COMMANDS) + r")(?:\s|$)", re.IGNORECASE)


@attrs.frozen(kw_only=True)
class Decision:
    store: bool  # store the post in chat_messages
    respond: bool  # produce exactly one answer
    prompt: str = ""  # the text addressed to the bot
    reason: str = ""  # ignored_own | ignored_system | mention | dm | command | none


@attrs.frozen(kw_only=True)
class BotIdentity:
    user_id: str
    username: str
    extra_names: tuple[str, ...] = ()  # MCHAT_BOT_NAME
    respond_to_all_dm: bool = True

    @property
    def names(self) -> tuple[str, ...]:
        seen: list[str] = []
        for name in ("ai", self.username, *self.extra_names):
            if name and name.lower() not in seen:
                seen.append(name.lower())
        return tuple(seen)


def mention_pattern(names: Iterable[str]) -> re.Pattern[str]:
    """``@name`` not followed by another name character, case-insensitive."""
    alts = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(r"(?<![\w@])@(?:" + alts + r")(?![A-Za-z0-9_.\-])", re.IGNORECASE)


def decide(post: Post, *, channel_type: str, bot: BotIdentity,
           pattern: re.Pattern[str] | None = None) -> Decision:
    """Classify ``post`` for ``bot`` in a channel of ``channel_type`` (O, P, D, G)."""
    if post.user_id == bot.user_id or post.message.lstrip().startswith(MARKER):
        return Decision(store=False, respond=False, reason="ignored_own")
    if post.is_system:
        return Decision(store=False, respond=False, reason="ignored_system")
    text = post.message.strip()
    pattern = pattern or mention_pattern(bot.names)
    if pattern.search(text):
        prompt = " ".join(pattern.sub(" ", text).split())
        return Decision(store=True, respond=True, prompt=prompt, reason="mention")
    if _COMMAND_RE.match(text):
        return Decision(store=True, respond=True, prompt=text, reason="command")
    if channel_type == "D" and bot.respond_to_all_dm:
        return Decision(store=True, respond=True, prompt=text, reason="dm")
    return Decision(store=True, respond=False, reason="none")


def reply_root(post: Post, reply_mode: str) -> PostId | None:
    """``root_id`` for the answer: the post's thread root in thread mode, else none."""
    return post.thread_root if reply_mode == "thread" else None
