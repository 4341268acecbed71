"""Benchmark of retrieval with Kiwi beside today's words-only analyzer, in the same run.

    python -m bench.bench_retrieval              # 100 000 memories, 300 searches per analyzer
    python -m bench.bench_retrieval --small      # 5 000 memories, 100 searches
    python -m bench.bench_retrieval --corpus uniform

For each analyzer (``words``: the analyzer before Kiwi, ``mchat_actors.testing.words_analyzer``;
``kiwi``: the service's default, Kiwi + glossary + CoNg similarity): memories indexed per second
(bulk load through the index, as an upgrade re-index does), ``search()`` and ``/search`` through
``send_message`` p50/p99. Then Kiwi's model load time and the memory it adds (resident set).
The corpus is ``bench.bench_chat.Corpus``. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_chat import Corpus, bulk_load, percentile, time_searches  # noqa: E402
from mchat_actors.chat.analysis import Analyzer  # noqa: E402
from mchat_actors.chat.embedded import open_embedded_chat_service  # noqa: E402
from mchat_actors.chat.morph import KiwiAnalyzer  # noqa: E402
from mchat_actors.testing.words_analyzer import WordsAnalyzer  # noqa: E402


def rss_mib() -> float:
    """This process's resident set now (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import resource

    return pages * resource.getpagesize() / 2**20


async def run(name: str, analyzer: Analyzer, kind: str, memories: int, searches: int) -> None:
    corpus = Corpus(kind, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        async with open_embedded_chat_service(str(Path(tmp) / "bench.db"),
                                              analyzer=analyzer) as svc:
            rooms = [(await svc.create_room(name=f"room{i}", kind="private")).id
                     for i in range(20)]
            users = [(await svc.create_user(name=f"user{i}", email=f"u{i}@example.com")).id
                     for i in range(50)]
            asker = users[0]
            for room in rooms[:5]:
                await svc.add_room_member(room, asker)
            start = time.perf_counter()
            await svc.db(bulk_load, corpus, rooms, users, memories)
            load_s = time.perf_counter() - start
            print(f"{name:<6} {kind}: indexed {memories} memories in {load_s:.1f} s "
                  f"({memories / load_s:,.0f}/s)")
            for label, end_to_end in (("search()", False), ("/search", True)):
                samples = await time_searches(svc, corpus, rooms[0], asker, searches,
                                              end_to_end=end_to_end)
                print(f"{name:<6} {kind}: {label:<9} n={searches}  "
                      f"p50 {statistics.median(samples):6.2f} ms  "
                      f"p99 {percentile(samples, 0.99):6.2f} ms  max {max(samples):6.2f} ms")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="5 000 memories, 100 searches")
    parser.add_argument("--corpus", choices=("zipf", "uniform"), default="zipf")
    args = parser.parse_args()
    memories, searches = (5_000, 100) if args.small else (100_000, 300)
    before = rss_mib()
    start = time.perf_counter()
    kiwi = KiwiAnalyzer.load()
    load_s = time.perf_counter() - start
    print(f"kiwi model: loaded in {load_s:.2f} s, resident set +{rss_mib() - before:.0f} MiB "
          f"({kiwi.index_version})")
    for name, analyzer in (("words", WordsAnalyzer()), ("kiwi", kiwi)):
        trio.run(run, name, analyzer, args.corpus, memories, searches)


if __name__ == "__main__":
    cli()
