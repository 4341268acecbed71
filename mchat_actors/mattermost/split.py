"""Split a long message into posts Mattermost accepts (at most ``max_chars`` code points each).

Chunks end, by preference, after a paragraph break, a line break, a sentence end, a space, or
(for unbroken text) anywhere; a preferred boundary is taken only if it fills at least half of
the chunk, so a boundary near the start does not produce a run of tiny posts.

Markdown code fences stay balanced: a chunk that ends inside a fence gets a closing fence
appended, and the next chunk reopens it with the same marker and info string. Apart from that
bookkeeping, chunks concatenate back to the original text. Cuts never fall inside a fence line,
and a cut inside a line never leaves a piece that would read as a fence line.

Degenerate case: if ``max_chars`` is too small to hold a fence line plus the reopen/close
markers, that chunk is cut without bookkeeping (still never longer than ``max_chars``).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

import attrs

MAX_POST_CHARS = 16383

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_SENTENCE_END = re.compile(r"[.!?\u2026][ \t]|[\u3002\uff01\uff1f]")
_SPACE = re.compile(r"[ \t]")


def split_message(text: str, max_chars: int = MAX_POST_CHARS) -> list[str]:
    """Split ``text`` into chunks of at most ``max_chars`` code points (``len``).

    Returns ``[text]`` unchanged when it fits.

    Raises:
        ValueError: ``max_chars`` is less than 1.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars!r}")
    if len(text) <= max_chars:
        return [text]
    return [prefix + body + suffix for prefix, body, suffix in split_pieces(text, max_chars)]


@attrs.frozen
class _Fence:
    marker: str  # "```", "~~~~" ...
    info: str

    @property
    def opener(self) -> str:
        return f"{self.marker}{self.info}\n"


class _Scan:
    """Line starts of ``text`` and the fence state at the start of each line."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts: list[int] = []
        self.states: list[_Fence | None] = []
        self.is_fence: list[bool] = []
        state: _Fence | None = None
        pos = 0
        while pos < len(text):
            nl = text.find("\n", pos)
            end = len(text) if nl < 0 else nl + 1
            self.starts.append(pos)
            self.states.append(state)
            new_state = _next_state(state, text[pos:end].rstrip("\n"))
            self.is_fence.append(new_state != state)
            state = new_state
            pos = end
        self.final = state

    def line_of(self, j: int) -> int:
        return bisect.bisect_right(self.starts, j) - 1

    def state_at(self, j: int) -> _Fence | None:
        """Fence state at ``j`` (a line start, or inside a line that is not a fence line)."""
        return self.final if j >= len(self.text) else self.states[self.line_of(j)]

    def safe_cut(self, pos: int, j: int) -> bool:
        """Is ``j`` a cut that keeps every fence line whole and creates no new one?"""
        if j >= len(self.text) or self.text[j - 1] == "\n":
            return True
        i = self.line_of(j)
        if self.is_fence[i]:
            return False
        nl = self.text.find("\n", j)
        tail = self.text[j: len(self.text) if nl < 0 else nl]
        head = self.text[max(self.starts[i], pos): j]
        return not (_FENCE.fullmatch(head) or _FENCE.fullmatch(tail))


def _next_state(state: _Fence | None, line: str) -> _Fence | None:
    m = _FENCE.fullmatch(line)
    if m is None:
        return state
    marker, rest = m.group(1), m.group(2)
    if state is None:
        if marker[0] == "`" and "`" in rest:
            return None  # not a fence: backtick info strings cannot contain backticks
        return _Fence(marker, rest.strip())
    if marker[0] == state.marker[0] and len(marker) >= len(state.marker) and not rest.strip():
        return None
    return state


def _closer(state: _Fence | None, body: str) -> str:
    if state is None:
        return ""
    return state.marker if body.endswith("\n") else "\n" + state.marker


def split_pieces(text: str, max_chars: int) -> list[tuple[str, str, str]]:
    """The chunks as (added prefix, original text, added suffix); the bodies join to ``text``."""
    scan = _Scan(text)
    pieces: list[tuple[str, str, str]] = []
    pos = 0
    while pos < len(text):
        state = scan.state_at(pos)
        prefix = state.opener if state is not None else ""
        if len(prefix) >= max_chars:
            prefix = ""  # degenerate: no room for bookkeeping
        budget = max_chars - len(prefix)
        if len(text) - pos <= budget:
            pieces.append((prefix, text[pos:], ""))
            break
        j = _choose_cut(scan, pos, budget)
        if j is None:  # degenerate: no clean cut fits
            j = pos + budget
            pieces.append((prefix, text[pos:j], ""))
        else:
            body = text[pos:j]
            pieces.append((prefix, body, _closer(scan.state_at(j), body)))
        pos = j
    return pieces


def _choose_cut(scan: _Scan, pos: int, budget: int) -> int | None:
    """The best end for a chunk starting at ``pos`` whose body and closer fit ``budget``."""
    text = scan.text
    window = text[pos: pos + budget]
    min_fill = max(1, budget // 2)

    def fits(j: int) -> bool:
        return (j - pos) + len(_closer(scan.state_at(j), text[pos:j])) <= budget and (
            scan.safe_cut(pos, j)
        )

    for candidates in (
        _ends_of(window, "\n\n"),
        _ends_of(window, "\n"),
        (m.end() for m in reversed(list(_SENTENCE_END.finditer(window)))),
        (m.end() for m in reversed(list(_SPACE.finditer(window)))),
    ):
        for end in candidates:
            if end < min_fill:
                break
            if fits(pos + end):
                return pos + end
    return next((j for j in range(pos + budget, pos, -1) if fits(j)), None)


def _ends_of(window: str, sep: str) -> Iterator[int]:
    """Offsets just after each ``sep`` in ``window``, last first."""
    end = len(window)
    while (k := window.rfind(sep, 0, end)) >= 0:
        yield k + len(sep)
        end = k + len(sep) - 1
