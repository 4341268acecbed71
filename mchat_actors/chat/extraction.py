"""Memory extraction with an LLM, and the per-room debouncer that batches it.

Extraction only ever runs with an LLM: the prompt lists the (masked) messages, numbered, and asks
for a JSON array ``[{"memory": "...", "message": 3}]``; ``parse_extraction`` also accepts bullet
lines. ``Debouncer`` runs one extraction per burst of messages of a room: every push moves the
room's deadline ``delay_s`` into the future, and a single task per room waits for the deadline,
takes the pending items and calls the handler, then repeats while new items arrived meanwhile.
The quiet period is a cancel scope whose deadline each push moves.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence

import attrs
import trio

from .masking import mask_sensitive

logger = logging.getLogger(__name__)

MAX_EXTRACTED = 10
MAX_MEMORY_CHARS = 500

_EXTRACTION_PROMPT = """\
You extract durable facts worth remembering from a team chat: decisions, figures, dates and \
schedules, owners, test results, supplier information. Ignore greetings, questions, chit-chat \
and anything already vague. Write each fact as one short self-contained sentence in the \
language of the chat. Reply with a JSON array only, for example \
[{"memory": "X부품 불량률은 12%", "message": 2}], where "message" is the number of the message \
the fact comes from. Reply [] when there is nothing worth remembering."""


def build_extraction_messages(rows: Sequence[sqlite3.Row]) -> list[dict[str, str]]:
    """The chat-completion messages asking the LLM for the facts in ``rows`` (masked)."""
    lines = [f"[{i}] {row['user_name'] or 'user'}: {mask_sensitive(row['content'])}"
             for i, row in enumerate(rows, 1)]
    return [{"role": "system", "content": _EXTRACTION_PROMPT},
            {"role": "user", "content": "\n".join(lines)}]


def parse_extraction(text: str, count: int) -> list[tuple[str, int]]:
    """``(memory, message index 0-based)`` pairs from the LLM's answer; ``[]`` if unusable.

    Indexes outside ``range(count)`` point at the last message.
    """
    found: list[tuple[str, int]] = []
    body = re.sub(r"^```(?:json)?|```$", "", text.strip(), flags=re.MULTILINE).strip()
    start, end = body.find("["), body.rfind("]")
    items: object = None
    if start != -1 and end > start:
        try:
            items = json.loads(body[start : end + 1])
        except ValueError:
            items = None
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping):
                memory, number = item.get("memory"), item.get("message")
            else:
                memory, number = item, None
            if isinstance(memory, str) and memory.strip():
                index = number - 1 if isinstance(number, int) and 0 < number <= count else count - 1
                found.append((memory.strip()[:MAX_MEMORY_CHARS], index))
    elif items is None:
        for line in body.splitlines():
            bullet = re.match(r"^\s*(?:[-*•]|\d+[.)])\s+(.+)$", line)
            if bullet:
                found.append((bullet.group(1).strip()[:MAX_MEMORY_CHARS], count - 1))
    return found[:MAX_EXTRACTED]


@attrs.frozen
class ExtractionStatistics:
    runs: int
    failures: int
    memories: int


@attrs.define
class _RoomState:
    items: set[int] = attrs.field(factory=set)
    # The room's quiet period: its deadline moves with every push.
    quiet: trio.CancelScope = attrs.field(factory=trio.CancelScope)


class Debouncer:
    """One call of ``handler(room, items)`` per burst of ``push(room, item)``.

    Errors of the handler are logged and counted (the error boundary of background
    extraction); they never reach the pusher.
    """

    def __init__(self, nursery: trio.Nursery, delay_s: float,
                 handler: Callable[[str, frozenset[int]], Awaitable[int]]) -> None:
        self._nursery = nursery
        self._delay_s = delay_s
        self._handler = handler
        self._rooms: dict[str, _RoomState] = {}
        self._idle = trio.Event()
        self._idle.set()
        self.runs = self.failures = self.memories = 0

    def push(self, room: str, item: int) -> None:
        state = self._rooms.get(room)
        if state is None:
            state = self._rooms[room] = _RoomState()
            if self._idle.is_set():
                self._idle = trio.Event()
            self._nursery.start_soon(self._serve_room, room, state)
        state.items.add(item)
        state.quiet.deadline = trio.current_time() + self._delay_s

    async def wait_idle(self) -> None:
        """Return once no extraction is pending or running."""
        await self._idle.wait()

    def statistics(self) -> ExtractionStatistics:
        return ExtractionStatistics(runs=self.runs, failures=self.failures,
                                    memories=self.memories)

    async def _serve_room(self, room: str, state: _RoomState) -> None:
        try:
            while state.items:
                with state.quiet:
                    await trio.sleep_forever()
                state.quiet = trio.CancelScope(deadline=math.inf)
                items = frozenset(state.items)
                state.items.clear()
                self.runs += 1
                try:
                    self.memories += await self._handler(room, items)
                except Exception:  # error boundary: one extraction, logged and counted
                    self.failures += 1
                    logger.exception("chat: memory extraction failed for room %s", room)
        finally:
            del self._rooms[room]
            if not self._rooms:
                self._idle.set()
