"""Turn a question and the memories retrieved for it into the bot's answer.

Stable API (the remote adapter imports it)::

    async def compose_answer(question, memories, *, llm) -> str

With an ``LLM``: one chat completion whose system prompt lists the (masked) memories and asks for
an answer from them only, in the question's language. Without one: a built-in answerer that
quotes the memories that cover the question best, or says plainly (Korean for a Korean question,
else English) that nothing relevant is stored.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from .analysis import analyze_query, relevance
from .masking import mask_sensitive
from .protocol import LLM, MemoryRecord

# Memories quoted by the built-in answerer: at least this share of the question's concepts.
RELATED_THRESHOLD = 0.5
EXACT_THRESHOLD = 0.99
MAX_QUOTED = 3
MAX_CONTEXT_MEMORIES = 12

_HANGUL = re.compile(r"[\uac00-\ud7a3]")

_SYSTEM_PROMPT = """\
You are the AI Memory Agent of a team chat. Answer the user's question using only the stored \
memories below. If they do not contain the answer, say so briefly and suggest /remember. Answer \
in the language of the question, in at most a few sentences, and quote figures exactly.

Stored memories (most relevant first):
{memories}"""


def is_korean(text: str) -> bool:
    """True when ``text`` contains a Hangul syllable."""
    return bool(_HANGUL.search(text))


def scope_label(memory: MemoryRecord, *, korean: bool) -> str:
    """``방 기억`` / ``개인 기억`` (or ``room`` / ``personal``)."""
    if memory.scope == "personal":
        return "개인 기억" if korean else "personal"
    return "방 기억" if korean else "room"


def format_memory(memory: MemoryRecord, *, korean: bool, label: str | None = None,
                  with_id: bool = False) -> str:
    """One bullet line: the content, its scope (or ``label``), its date, and its id if asked."""
    when = memory.updated_at_ms or memory.created_at_ms
    details = [label or scope_label(memory, korean=korean)]
    if when:
        details.append(time.strftime("%Y-%m-%d", time.localtime(when / 1000)))
    prefix = f"`{memory.id}` " if with_id else ""
    return f"- {prefix}{memory.content} ({', '.join(details)})"


def _memory_context(memories: Sequence[MemoryRecord]) -> str:
    if not memories:
        return "(none)"
    lines = []
    for i, m in enumerate(memories[:MAX_CONTEXT_MEMORIES], 1):
        lines.append(f"{i}. [{scope_label(m, korean=False)}] {mask_sensitive(m.content)}")
    return "\n".join(lines)


async def compose_answer(
    question: str, memories: Sequence[MemoryRecord], *, llm: LLM | None
) -> str:
    """The answer to ``question`` from ``memories`` (best first).

    Args:
        question: the text asked (masked before it reaches the LLM).
        memories: retrieved memories, best first; may be empty.
        llm: the model to answer with, or None for the built-in answerer.

    Raises:
        ChatServiceError: the LLM failed (from ``llm.complete``); the text is not shown to users.
    """
    if llm is None:
        return builtin_answer(question, memories)
    messages = [
        {"role": "system", "content": _SYSTEM_PROMPT.format(memories=_memory_context(memories))},
        {"role": "user", "content": mask_sensitive(question)},
    ]
    text = (await llm.complete(messages)).strip()
    return text or builtin_answer(question, memories)


def builtin_answer(question: str, memories: Sequence[MemoryRecord]) -> str:
    """Quote the memories that cover the question best, or say that none does."""
    korean = is_korean(question)
    query = analyze_query(question)
    scored = sorted(
        ((relevance(query, m.content), -i, m) for i, m in enumerate(memories)),
        key=lambda item: (item[0], item[1]),
        reverse=True,
    )
    best = scored[0][0] if scored else 0.0
    if best < RELATED_THRESHOLD:
        if korean:
            return ("관련된 기억을 찾지 못했습니다. `/remember <내용>`으로 알려 주시면 "
                    "기억해 두겠습니다.")
        return ("I have no stored memory about that. Tell me with `/remember <text>` and I will "
                "keep it.")
    floor = max(RELATED_THRESHOLD, best - 0.25)
    quoted = [m for score, _, m in scored if score >= floor][:MAX_QUOTED]
    lines = [format_memory(m, korean=korean) for m in quoted]
    if best >= EXACT_THRESHOLD:
        head = "저장된 기억에 따르면:" if korean else "According to the stored memories:"
    else:
        head = ("정확히 일치하는 기억은 없지만, 관련된 기억입니다:" if korean
                else "Nothing matches exactly, but these memories are related:")
    return "\n".join([head, *lines])


__all__ = ["builtin_answer", "compose_answer", "format_memory", "is_korean", "scope_label"]
