"""The meaning eval's held-out set (tests/chat/meaning_heldout_cases.py): recall@1 and recall@3
per category for each retrieval configuration, measured in one run on the same memories and
exactly as the meaning eval measures (tests/chat/test_meaning_eval.py,
tests/chat/meaning_measure.py):

- ``words``: the analyzer before Kiwi (``mchat_actors.testing.words_analyzer``, the baseline);
- ``kiwi``: Kiwi's content morphemes, alternative analyses and typo model, no synonyms;
- ``kiwi+synonyms``: the default: plus the domain glossary and Kiwi's morpheme similarity;
- ``+embeddings``: when ``EMBEDDINGS_BASE_URL`` and ``EMBEDDINGS_MODEL`` (and the key) are set
  in the environment of the test run: the default plus that endpoint (hybrid retrieval).

The questions were written blind (without reading the retrieval code, its docs, the development
set or any eval output) and committed before this test was first run; they are never edited and
never tuned against. Asserted on the default configuration (no network): the issue's target,
recall@1 >= 0.9, for paraphrase, endings and typos, unless the blind run measured less (then the
floor is that measured figure, said so beside it). Cross-language is reported only. A room the
asker is not in holds near-copies of every memory: none may ever be returned. On the default
configuration the built-in answerer answers every question too: precision and abstention per
category.
"""

from __future__ import annotations

from typing import Any

from mchat_actors.chat.local_embeddings import LocalEmbedder
from mchat_actors.chat.morph import KiwiAnalyzer

from .meaning_heldout_cases import CASES, CATEGORIES
from .meaning_measure import DEFAULT, measure_configurations, table
from .test_retrieval_eval import CASES as MEMORIES
from .test_retrieval_eval import DISTRACTORS, noise

# the target is 0.9 for all three; the blind run (2026-11-30, the only run before this
# floor was set; output in docs/retrieval.md) measured endings 14/14, and below 0.9 typos 12/14
# (86%) and paraphrase 27/32 (84%): those two floors are the measured figures, below the
# issue's 0.9, so that a regression shows; the questions were not edited after that run.
# Typos: 13/14 once a confused vowel in a word's first syllable is looked up as a typo (i44,
# a change studied on the development set): the 0.9 is asserted
MIN_RECALL_AT_1 = {
    "endings": 0.9,
    "typos": 0.9,
    "paraphrase": 27 / 32,  # measured figure, below the 0.9
}
# The default configuration since session 8 (the sentence encoder in the wheel; its weight in
# the ranking was studied on the development set only), first run on this set at the commit
# that made it the default: paraphrase 29 of 32 (91 %), endings 14 of 14, typos 13 of 14
# (93 %); cross-language 10 of 12 (83 %, reported). The 0.9 holds for all three.
DEFAULT_MIN_AT_1 = {"paraphrase": 29, "endings": 14, "typos": 13}


async def test_held_out_recall_per_category_for_each_configuration(
        tmp_path, kiwi: KiwiAnalyzer, encoder: LocalEmbedder, capsys: Any) -> None:  # noqa: ANN001
    results = await measure_configurations(tmp_path, kiwi, encoder, [m for m, _ in MEMORIES],
                                           DISTRACTORS + noise(80), CASES)
    with capsys.disabled():
        print("\n" + table(f"meaning held-out set: {len(CASES)} questions written blind"
                           " (precision and abstention: the built-in answerer)",
                           CATEGORIES, results))
        for name, (_, misses) in results.items():
            for miss in misses:
                print(f"  miss ({name}): {miss}")
    tally = results["kiwi+synonyms"][0]
    for category, floor in MIN_RECALL_AT_1.items():
        assert tally[category].at1 / tally[category].asked >= floor, category
    tally = results[DEFAULT][0]
    for category, floor in DEFAULT_MIN_AT_1.items():
        assert tally[category].at1 >= floor, (category, tally[category])
