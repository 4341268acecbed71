"""In-process fakes for the ChatService tests: an LLM and a wall clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


class FakeLLM:
    """An in-process ``LLM``: records every call and answers with ``reply(messages)``."""

    def __init__(self, reply: str | Callable[[Sequence[Mapping[str, str]]], str] = "",
                 *, error: Exception | None = None) -> None:
        self.reply = reply
        self.error = error
        self.calls: list[list[dict[str, str]]] = []
        self.max_tokens: list[int | None] = []

    async def complete(self, messages: Sequence[Mapping[str, str]], *, temperature: float = 0.2,
                       max_tokens: int | None = None) -> str:
        self.calls.append([dict(m) for m in messages])
        self.max_tokens.append(max_tokens)
        if self.error is not None:
            raise self.error
        return self.reply(messages) if callable(self.reply) else self.reply


@attrs.define
class FakeClock:
    """Wall clock in seconds that tests move by hand."""

    now: float = T0

    def __call__(self) -> float:
        return self.now
