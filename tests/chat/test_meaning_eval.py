"""The meaning eval: recall@1 and recall@3 per category (tests/chat/meaning_cases.py) for each
retrieval configuration, measured in one run on the same memories:

- ``words``: the analyzer before Kiwi (``mchat_actors.testing.words_analyzer``, the baseline);
- ``kiwi``: Kiwi's content morphemes, alternative analyses and typo model, no synonyms;
- ``kiwi+synonyms``: the default: plus the domain glossary and Kiwi's morpheme similarity;
- ``+embeddings``: when ``EMBEDDINGS_BASE_URL`` and ``EMBEDDINGS_MODEL`` (and the key) are set
  in the environment of the test run: the default plus that endpoint (hybrid retrieval).

Asserted on the default configuration (no network): recall@1 >= 0.9 for paraphrase, endings
and typos (paraphrase was 14/16 = 88% when written, asserted at that level; 15/16 since i42).
Cross-language is reported only (it needs an LLM or embeddings to be asserted). The
questions measure; nothing is tuned against them (changes are studied on the development set,
tests/chat/test_meaning_dev.py). A room the asker is not in holds near-copies of every memory:
none may ever be returned. On the default configuration the built-in answerer answers every
question too: precision (answers quoting the memory asked about, over the answers given) and
abstention (questions nothing stored answers, answered "I don't know") per category
(tests/chat/meaning_measure.py).
"""

from __future__ import annotations

import os
from typing import Any

from mchat_actors.chat.analysis import Analyzer
from mchat_actors.chat.embeddings import open_embeddings
from mchat_actors.chat.morph import KiwiAnalyzer
from mchat_actors.config import ChatConfig
from mchat_actors.testing.words_analyzer import WordsAnalyzer

from .meaning_cases import CASES, CATEGORIES
from .meaning_measure import measure, table
from .test_retrieval_eval import CASES as MEMORIES
from .test_retrieval_eval import DISTRACTORS, noise

# the target, 0.9, for all three; paraphrase measured 14/16 (88%) when this eval was
# written (asserted at 0.875 then), 15/16 (94%) since an expansion is found in a compound noun
# as its word is (i42, studied on the development set; docs/retrieval.md)
MIN_RECALL_AT_1 = {"endings": 0.9, "typos": 0.9, "paraphrase": 0.9}


async def test_recall_per_category_for_each_configuration(tmp_path, kiwi: KiwiAnalyzer,
                                                          capsys: Any) -> None:
    configs: dict[str, Analyzer] = {
        "words": WordsAnalyzer(),
        "kiwi": kiwi.with_options(expand=False),
        "kiwi+synonyms": kiwi,
    }
    memories = [m for m, _ in MEMORIES]
    filler = DISTRACTORS + noise(80)
    results = {name: await measure(str(tmp_path / f"{name}.db"), analyzer, memories, filler,
                                   CASES, answers=name == "kiwi+synonyms")
               for name, analyzer in configs.items()}
    cfg = ChatConfig(embeddings_base_url=os.environ.get("EMBEDDINGS_BASE_URL"),
                     embeddings_api_key=os.environ.get("EMBEDDINGS_API_KEY"),
                     embeddings_model=os.environ.get("EMBEDDINGS_MODEL"))
    if cfg.embeddings_base_url and cfg.embeddings_model:  # a real endpoint: measured, reported
        async with open_embeddings(cfg) as client:
            results["+embeddings"] = await measure(str(tmp_path / "emb.db"), kiwi, memories,
                                                   filler, CASES, client)
    with capsys.disabled():
        print("\n" + table(f"meaning eval: {len(CASES)} questions (precision and abstention:"
                           " the built-in answerer)", CATEGORIES, results))
        for name, (_, misses) in results.items():
            for miss in misses:
                print(f"  miss ({name}): {miss}")
    tally = results["kiwi+synonyms"][0]
    for category, floor in MIN_RECALL_AT_1.items():
        assert tally[category].at1 / tally[category].asked >= floor, category
