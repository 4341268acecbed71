"""Benchmark of retrieval with Kiwi beside today's words-only analyzer, in the same run.

    python -m bench.bench_retrieval              # 100 000 memories, 300 searches per analyzer
    python -m bench.bench_retrieval --small      # 5 000 memories, 100 searches
    python -m bench.bench_retrieval --corpus uniform

For each configuration (``words``: the analyzer before Kiwi,
``mchat_actors.testing.words_analyzer``; ``kiwi``: Kiwi + glossary + CoNg similarity, the
default before session 8; ``kiwi+enc``: the default, plus the sentence encoder in the wheel,
``chat.local_embeddings``): memories indexed per second (bulk load through the index, as an
upgrade re-index does), for ``kiwi+enc`` memories embedded per second (as the background
embedder does after an upgrade), ``search()`` and ``/search`` through ``send_message``
p50/p99. First each model's load time and the memory it adds (resident set).
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
from mchat_actors.chat.embeddings import BATCH, Embedder, pending, store  # noqa: E402
from mchat_actors.chat.local_embeddings import LocalEmbedder  # noqa: E402
from mchat_actors.chat.morph import KiwiAnalyzer  # noqa: E402
from mchat_actors.testing.words_analyzer import WordsAnalyzer  # noqa: E402


def rss_mib() -> float:
    """This process's resident set now (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import resource

    return pages * resource.getpagesize() / 2**20


async def run(name: str, analyzer: Analyzer, kind: str, memories: int, searches: int,
              encoder: LocalEmbedder | None = None) -> None:
    corpus = Corpus(kind, seed=1)
    # the service's own embedder task is not started (idle for a day): the bench embeds the
    # memories itself below, timed, as that task would (a read for the missing, a batch, a write)
    embeddings: Embedder | None = (encoder.with_intervals(idle_s=86_400.0)
                                   if encoder is not None else None)
    with tempfile.TemporaryDirectory() as tmp:
        async with open_embedded_chat_service(str(Path(tmp) / "bench.db"),
                                              analyzer=analyzer, embeddings=embeddings) as svc:
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
            print(f"{name:<8} {kind}: indexed {memories} memories in {load_s:.1f} s "
                  f"({memories / load_s:,.0f}/s)")
            if embeddings is not None:
                start = time.perf_counter()
                after = 0
                while items := await svc.read(pending, embeddings.model, BATCH, after):
                    vectors = await embeddings.embed([text for _, text in items])
                    await svc.db(store, embeddings.model,
                                 [(mid, v) for (mid, _), v in zip(items, vectors, strict=True)])
                    after = items[-1][0]
                embed_s = time.perf_counter() - start
                print(f"{name:<8} {kind}: embedded {memories} memories in {embed_s:.1f} s "
                      f"({memories / embed_s:,.0f}/s, batches of {BATCH})")
            for label, end_to_end in (("search()", False), ("/search", True)):
                samples = await time_searches(svc, corpus, rooms[0], asker, searches,
                                              end_to_end=end_to_end)
                print(f"{name:<8} {kind}: {label:<9} n={searches}  "
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
    before = rss_mib()
    start = time.perf_counter()
    encoder = LocalEmbedder.load()
    load_s = time.perf_counter() - start
    print(f"sentence encoder: loaded in {load_s:.2f} s, resident set "
          f"+{rss_mib() - before:.0f} MiB ({encoder.model})")
    for name, analyzer, enc in (("words", WordsAnalyzer(), None), ("kiwi", kiwi, None),
                                ("kiwi+enc", kiwi, encoder)):
        trio.run(run, name, analyzer, args.corpus, memories, searches, enc)


if __name__ == "__main__":
    cli()
