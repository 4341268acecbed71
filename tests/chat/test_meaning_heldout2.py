"""The meaning eval's second held-out set (tests/chat/meaning_heldout2_cases.py): recall@1 and
recall@3 per category for each retrieval configuration, measured in one run on the same memories
and exactly as the first held-out set is (tests/chat/test_meaning_heldout.py,
tests/chat/meaning_measure.py):

- ``words``: the analyzer before Kiwi (``mchat_actors.testing.words_analyzer``, the baseline);
- ``kiwi``: Kiwi's content morphemes, alternative analyses and typo model, no synonyms;
- ``kiwi+synonyms``: the default: plus the domain glossary and Kiwi's morpheme similarity;
- ``+embeddings``: when ``EMBEDDINGS_BASE_URL`` and ``EMBEDDINGS_MODEL`` (and the key) are set
  in the environment of the test run: the default plus that endpoint (hybrid retrieval).

The questions were written blind (without reading the retrieval code, its docs, the other sets
or any eval output) and committed on their own before this test was written or run; they are
never edited and never tuned against. They exist so that a later change to retrieval can be
measured on questions nobody tuned against. A room the asker is not in holds near-copies of every
memory: none may ever be returned or quoted (asserted inside ``measure``). On the default
configuration the built-in answerer answers every question too: precision and abstention per
category.
"""

from __future__ import annotations

from typing import Any

from mchat_actors.chat.local_embeddings import LocalEmbedder
from mchat_actors.chat.morph import KiwiAnalyzer

from .meaning_heldout2_cases import CASES, CATEGORIES
from .meaning_measure import DEFAULT, measure_configurations, table
from .test_retrieval_eval import CASES as MEMORIES
from .test_retrieval_eval import DISTRACTORS, noise

# Floors: the figures of the first recorded run (session 7, on main at 3f93e4c, before i46's
# retrieval changes; the only run before these were set), so that a regression shows. They are
# below the 0.9 for paraphrase and typos. On the default configuration (kiwi+synonyms):
# paraphrase 23 of 33 (70 %), endings 15 of 15, typos 14 of 16 (88 %). The run after i46
# (0bb6029): paraphrase 25 of 33 (76 %), endings 15 of 15, typos 15 of 16 (94 %).
MIN_AT_1 = {"paraphrase": 23, "endings": 15, "typos": 14}
# The default configuration since session 8 (the sentence encoder in the wheel; its weight in
# the ranking was studied on the development set only), first run on this set at the commit
# that made it the default: paraphrase 30 of 33 (91 %), endings 15 of 15, typos 16 of 16;
# cross-language 10 of 15 (67 %, reported). The 0.9 holds for all three.
DEFAULT_MIN_AT_1 = {"paraphrase": 30, "endings": 15, "typos": 16}


def test_every_case_targets_a_stored_memory_and_each_category_has_unanswerable_ones() -> None:
    stored = {m for m, _ in MEMORIES}
    for category, memory, question in CASES:
        assert category in CATEGORIES, (category, question)
        assert memory is None or memory in stored, (memory, question)
        assert memory is None or question not in memory, question
    for category in CATEGORIES:
        in_category = [m for c, m, _ in CASES if c == category]
        assert any(m is None for m in in_category), category
        assert sum(m is not None for m in in_category) >= 10, category
    assert len({q for _, _, q in CASES}) == len(CASES), "a question is asked twice"


async def test_held_out2_recall_per_category_for_each_configuration(
        tmp_path, kiwi: KiwiAnalyzer, encoder: LocalEmbedder, capsys: Any) -> None:  # noqa: ANN001
    results = await measure_configurations(tmp_path, kiwi, encoder, [m for m, _ in MEMORIES],
                                           DISTRACTORS + noise(80), CASES)
    with capsys.disabled():
        print("\n" + table(f"meaning held-out set 2: {len(CASES)} questions written blind"
                           " (precision and abstention: the built-in answerer)",
                           CATEGORIES, results))
        for name, (_, misses) in results.items():
            for miss in misses:
                print(f"  miss ({name}): {miss}")
    tally = results["kiwi+synonyms"][0]
    for category, floor in MIN_AT_1.items():
        assert tally[category].at1 >= floor, (category, tally[category])
    tally = results[DEFAULT][0]
    for category, floor in DEFAULT_MIN_AT_1.items():
        assert tally[category].at1 >= floor, (category, tally[category])
    # every configuration measured every category (a category that vanished is a broken run)
    for name, (tally, _) in results.items():
        for category in CATEGORIES:
            assert tally[category].asked == sum(
                m is not None and c == category for c, m, _ in CASES), (name, category)
