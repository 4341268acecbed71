"""How the meaning eval and its development set are measured (one place, so both measure alike).

Every memory is stored in the room kim asks about (``quality``), and a near-copy of it in a room
kim is not in (never to be returned); distractors and noise go to ``quality`` too. kim asks in
a DM with the bot. Per question:

- search: is the memory first (recall@1) or among the first three (recall@3)?
- answer (the built-in answerer, no LLM): does it quote the memory (``ans``: of the questions
  with a stored answer), or, for a question nothing stored answers (memory ``None``), say it
  does not know (``idk``)? Precision is over the answers given: those quoting the memory asked
  about; an answer to an unanswerable question is a wrong one.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from mchat_actors.chat import repo
from mchat_actors.chat.analysis import Analyzer
from mchat_actors.chat.embedded import open_embedded_chat_service
from mchat_actors.chat.embeddings import Embedder, open_embeddings, pending
from mchat_actors.chat.local_embeddings import LocalEmbedder
from mchat_actors.chat.morph import KiwiAnalyzer
from mchat_actors.config import ChatConfig
from mchat_actors.testing.words_analyzer import WordsAnalyzer

from .chat_fakes import FakeClock

DONT_KNOW = ("관련된 기억을 찾지 못했습니다", "I have no stored memory")


@attrs.define
class Tally:
    asked: int = 0  # questions with a stored answer
    at1: int = 0
    at3: int = 0
    unanswerable: int = 0  # questions nothing stored answers
    abstained: int = 0  # ... answered "I don't know"
    given: int = 0  # answers given (not "I don't know"), over all questions
    right: int = 0  # ... quoting the memory asked about

    def cells(self) -> str:
        r1 = self.at1 / self.asked if self.asked else 0.0
        r3 = self.at3 / self.asked if self.asked else 0.0
        if not self.given and not self.unanswerable:  # answers not measured
            return f"{r1:>6.0%} /{r3:>5.0%} {'':>17}"
        answered = self.right / self.asked if self.asked else 0.0
        precision = self.right / self.given if self.given else 1.0
        abstain = f"{self.abstained}/{self.unanswerable}" if self.unanswerable else "-"
        return f"{r1:>6.0%} /{r3:>5.0%} {answered:>5.0%} {precision:>5.0%} {abstain:>5}"


CELL_HEADER = "   r@1 /  r@3   ans  prec  idk"


async def measure(path: str, analyzer: Analyzer, memories: Sequence[str],
                  filler: Sequence[str], cases: Sequence[tuple[str, str | None, str]],
                  embeddings: Embedder | None = None, *, answers: bool = True,
                  ) -> tuple[dict[str, Tally], list[str]]:
    """Per category its ``Tally``; and one line per miss (search not first, wrong answer)."""
    clock = FakeClock()
    async with open_embedded_chat_service(path, clock=clock, analyzer=analyzer,
                                          embeddings=embeddings) as svc:
        kim = await svc.create_user(name="kim", email="kim@example.com")
        lee = await svc.create_user(name="lee", email="lee@example.com")
        quality = await svc.create_room(name="quality", kind="channel")
        other = await svc.create_room(name="not-kims", kind="private")
        dm = await svc.create_room(name="kim-dm", kind="direct")
        for room, user in ((quality, kim), (quality, lee), (other, lee), (dm, kim)):
            await svc.add_room_member(room.id, user.id)
        now = int(clock.now * 1000)

        def load(conn: Any) -> None:
            def put(text: str, room: str) -> None:
                repo.save_memory(conn, text, scope="room", kind="remember", room=room,
                                 owner=None, author=lee.id, source_post_id=None,
                                 permalink=None, now_ms=now)

            for memory in memories:
                put(memory, quality.id)
                put(f"{memory} (비공개 사본 99)", other.id)
            for text in filler:
                put(text, quality.id)

        await svc.db(load)
        if embeddings is not None:
            with trio.fail_after(600):
                while await svc.db(pending, embeddings.model, 1):  # noqa: ASYNC110
                    await trio.sleep(min(1.0, embeddings.idle_s))
        tally: dict[str, Tally] = defaultdict(Tally)
        misses = []
        for category, memory, question in cases:
            t = tally[category]
            if memory is not None:
                found = [m.content for m in await svc.search(dm.id, kim.id, question, limit=3)]
                assert not any("사본" in c for c in found), "a memory kim may not see was returned"
                t.asked += 1
                t.at1 += bool(found) and found[0] == memory
                t.at3 += memory in found
                if not found or found[0] != memory:
                    misses.append(f"[{category}] search {question!r} -> {found[:1]}")
            if not answers:
                continue
            answer = await svc.answer_question(dm.id, kim.id, question)
            assert "사본" not in answer, "a memory kim may not see was quoted"
            if memory is None:
                t.unanswerable += 1
            if answer.startswith(DONT_KNOW):
                t.abstained += memory is None
                if memory is not None:
                    misses.append(f"[{category}] no answer {question!r}")
                continue
            t.given += 1
            t.right += memory is not None and memory in answer
            if memory is None or memory not in answer:
                quoted = answer.splitlines()[1 if "\n" in answer else 0][:70]
                misses.append(f"[{category}] answer {question!r} -> {quoted!r}")
    return dict(tally), misses


DEFAULT = "+encoder"  # the default configuration: kiwi+synonyms and the sentence encoder


async def measure_configurations(
        tmp_path: Any, kiwi: KiwiAnalyzer, encoder: LocalEmbedder, memories: Sequence[str],
        filler: Sequence[str], cases: Sequence[tuple[str, str | None, str]],
) -> dict[str, tuple[dict[str, Tally], list[str]]]:
    """Every configuration on the same memories, each step adding one thing:

    - ``words``: the analyzer before Kiwi (``mchat_actors.testing.words_analyzer``);
    - ``kiwi``: Kiwi's content morphemes, alternative analyses and typo model;
    - ``kiwi+synonyms``: plus the domain glossary and Kiwi's morpheme similarity (the default
      before session 8; its answers are measured too);
    - ``+encoder``: the default: plus the sentence encoder that ships in the wheel
      (``chat.local_embeddings``, no network);
    - ``+endpoint``: when ``EMBEDDINGS_BASE_URL`` and ``EMBEDDINGS_MODEL`` (and the key) are
      set in the environment of the test run: kiwi+synonyms plus that endpoint instead.
    """
    configs: dict[str, Analyzer] = {
        "words": WordsAnalyzer(),
        "kiwi": kiwi.with_options(expand=False),
        "kiwi+synonyms": kiwi,
    }
    results = {name: await measure(str(tmp_path / f"{name}.db"), analyzer, memories, filler,
                                   cases, answers=name == "kiwi+synonyms")
               for name, analyzer in configs.items()}
    results[DEFAULT] = await measure(str(tmp_path / "encoder.db"), kiwi, memories, filler,
                                     cases, encoder.with_intervals(idle_s=0.01, retry_s=0.1))
    cfg = ChatConfig(embeddings_base_url=os.environ.get("EMBEDDINGS_BASE_URL"),
                     embeddings_api_key=os.environ.get("EMBEDDINGS_API_KEY"),
                     embeddings_model=os.environ.get("EMBEDDINGS_MODEL"))
    if cfg.embeddings_base_url and cfg.embeddings_model:  # a real endpoint: measured, reported
        async with open_embeddings(cfg) as client:
            results["+endpoint"] = await measure(str(tmp_path / "emb.db"), kiwi, memories,
                                                 filler, cases, client)
    return results


def table(title: str, categories: Sequence[str],
          results: dict[str, tuple[dict[str, Tally], list[str]]]) -> str:
    """The printed table: one row per configuration, one cell per category."""
    lines = [title, f"  {'configuration':<15}" + "".join(f"{c:>33}" for c in categories),
             f"  {'':<15}" + "".join(f"{CELL_HEADER:>33}" for _ in categories)]
    for name, (tally, _) in results.items():
        lines.append(f"  {name:<15}" + "".join(f"{tally.get(c, Tally()).cells():>33}"
                                                for c in categories))
    return "\n".join(lines)
