"""The typo look-up's cost at search time: questions holding a word the index lacks.

    python -m bench.bench_typo_lookup --db /tmp/k.db     # a database bench_search_ab built

``bench_search_ab``'s questions are words of the corpus, so the search's typo look-up (a word
the index does not hold: the index words a jamo or two away, ``chat.search._with_typos``) is
seldom run there. Here every question holds one: an index word with the vowel of its first
syllable swapped for one Korean confuses with it (배선 -> 베선), beside another index word.
Each question is searched with the look-up of those vowel variants (``morph.vowel_variants``,
i44) and without it (the look-up of the words beginning with the first syllable only, as
before), alternating, on the same connection; prints p50 / p99 of each and how often the
misspelt word's memory came first. Asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from mchat_actors.chat import search
from mchat_actors.chat.morph import KiwiAnalyzer, vowel_variants
from mchat_actors.chat.schema import connect


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="each question asked this often")
    args = parser.parse_args()
    analyzer = KiwiAnalyzer.load()
    conn = connect(args.db, analyzer)
    rooms = [r[0] for r in conn.execute("SELECT id FROM chat_rooms")]
    vocab = [r[0] for r in conn.execute("SELECT term FROM memories_vocab")]
    held = set(vocab)
    rng = random.Random(9)
    typos = [(v, w) for w in vocab if len(w) >= 2 and all("가" <= ch <= "힣" for ch in w)
             for v in vowel_variants(w)[:1] if v not in held]
    words = [w for w in vocab if len(w) >= 2]
    questions = [(typo, f"{typo} {rng.choice(words)}") for typo, _ in
                 rng.sample(typos, min(args.questions, len(typos)))]
    meant = dict(typos)
    times: dict[str, list[float]] = {"with vowel variants": [], "without": []}
    found = dict.fromkeys(times, 0)
    for typo, question in questions * args.rounds:
        for label in rng.sample(list(times), 2):
            search.__dict__["vowel_variants"] = vowel_variants if label == "with vowel variants" \
                else (lambda term: [])
            started = time.perf_counter()
            hits = search.search_memories(conn, question, rooms=rooms, owner=None,
                                          current_room=None, now_ms=0, limit=3)
            times[label].append((time.perf_counter() - started) * 1000)
            found[label] += bool(hits) and meant[typo] in (hits[0].content or "")
    print(f"{len(questions)} questions with a first-syllable vowel typo, asked {args.rounds}"
          f" times each; {len(vocab)} index words, {len(rooms)} rooms")
    for label, samples in times.items():
        print(f"  {label:<20} search() p50 {statistics.median(samples):6.2f} ms"
              f"  p99 {percentile(samples, 0.99):6.2f} ms"
              f"  (a memory holding the meant word first: {found[label]} of {len(samples)})")


if __name__ == "__main__":
    main()
