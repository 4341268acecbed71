"""The meaning eval: recall@1 and recall@3 per category (tests/chat/meaning_cases.py) for each
retrieval configuration, measured in one run on the same memories:

- ``words``: the analyzer before Kiwi (``mchat_actors.testing.words_analyzer``, the baseline);
- ``kiwi``: Kiwi's content morphemes, alternative analyses and typo model, no synonyms;
- ``kiwi+synonyms``: plus the domain glossary and Kiwi's morpheme similarity;
- ``+encoder``: the default: plus the sentence encoder that ships in the wheel (no network);
- ``+endpoint``: when ``EMBEDDINGS_BASE_URL`` and ``EMBEDDINGS_MODEL`` (and the key) are set
  in the environment of the test run: kiwi+synonyms plus that endpoint (hybrid retrieval).
  (``meaning_measure.measure_configurations``.)

Asserted on kiwi+synonyms (the default before session 8), and on the default at its measured
figures (below): recall@1 >= 0.9 for paraphrase, endings
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

from typing import Any

from mchat_actors.chat.local_embeddings import LocalEmbedder
from mchat_actors.chat.morph import KiwiAnalyzer

from .meaning_cases import CASES, CATEGORIES
from .meaning_measure import DEFAULT, measure_configurations, table
from .test_retrieval_eval import CASES as MEMORIES
from .test_retrieval_eval import DISTRACTORS, noise

# the target, 0.9, for all three; paraphrase measured 14/16 (88%) when this eval was
# written (asserted at 0.875 then), 15/16 (94%) since an expansion is found in a compound noun
# as its word is (i42, studied on the development set; docs/retrieval.md)
MIN_RECALL_AT_1 = {"endings": 0.9, "typos": 0.9, "paraphrase": 0.9}
# The default since session 8 (+ the sentence encoder), as first measured here: paraphrase 14
# of 16 (88 %: one question fewer than kiwi+synonyms), endings 14 of 15, typos 14 of 15. On the
# two blind held-out sets (65 paraphrase questions) the same change took paraphrase from 88 and
# 76 % to 91 and 91 % (test_meaning_heldout*.py), so the 0.9 is asserted there.
DEFAULT_MIN_AT_1 = {"paraphrase": 14, "endings": 14, "typos": 14}


async def test_recall_per_category_for_each_configuration(
        tmp_path, kiwi: KiwiAnalyzer, encoder: LocalEmbedder, capsys: Any) -> None:  # noqa: ANN001
    results = await measure_configurations(tmp_path, kiwi, encoder, [m for m, _ in MEMORIES],
                                           DISTRACTORS + noise(80), CASES)
    with capsys.disabled():
        print("\n" + table(f"meaning eval: {len(CASES)} questions (precision and abstention:"
                           " the built-in answerer)", CATEGORIES, results))
        for name, (_, misses) in results.items():
            for miss in misses:
                print(f"  miss ({name}): {miss}")
    tally = results["kiwi+synonyms"][0]
    for category, floor in MIN_RECALL_AT_1.items():
        assert tally[category].at1 / tally[category].asked >= floor, category
    tally = results[DEFAULT][0]
    for category, low in DEFAULT_MIN_AT_1.items():
        assert tally[category].at1 >= low, (category, tally[category])
