"""/search latency with Kiwi: this tree beside a baseline commit, on one database, in one run.

    python -m bench.bench_search_ab --baseline 077adf9            # 100 000 memories
    python -m bench.bench_search_ab --baseline 077adf9 --small    # 5 000 memories
    python -m bench.bench_search_ab --baseline 077adf9 --db /tmp/k.db   # build once, reuse

Builds one database of ``bench_chat``'s Zipf corpus indexed with Kiwi (this tree's code), then
times ``search()`` and ``/search`` through ``send_message`` (``--searches`` each) with the code
of this tree and of ``--baseline`` (extracted with ``git archive`` into a temporary directory),
each in its own process, alternating for ``--rounds`` rounds so that the machine's load falls
on both alike (the baseline on a copy of the database, which it re-indexes once when its index
version differs). Every round of a tree asks the same questions; each ``/search`` post has a new
id. The memories ``search()`` returned are compared question by question (first round).
Prints each round and the pooled p50/p99 of the wall time and of the process's CPU time per
search (on this shared machine the wall time's tail follows the other tenants' load; the
CPU time is the work a search costs). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def build(path: str, memories: int) -> None:
    """The database, with this tree's code (run in a child process)."""
    import trio

    sys.path.insert(0, str(ROOT))
    from bench.bench_chat import Corpus, bulk_load
    from mchat_actors.chat.embedded import open_embedded_chat_service
    from mchat_actors.chat.morph import KiwiAnalyzer

    async def main() -> tuple[str, str]:
        kiwi = KiwiAnalyzer.load()
        async with open_embedded_chat_service(path, analyzer=kiwi) as svc:
            rooms = [(await svc.create_room(name=f"room{i}", kind="private")).id
                     for i in range(20)]
            users = [(await svc.create_user(name=f"user{i}", email=f"u{i}@example.com")).id
                     for i in range(50)]
            for room in rooms[:5]:
                await svc.add_room_member(room, users[0])  # type: ignore[arg-type]
            start = time.perf_counter()
            await svc.db(bulk_load, Corpus("zipf", seed=1), rooms, users, memories)
            print(f"indexed {memories} memories with Kiwi in {time.perf_counter() - start:.1f} s",
                  flush=True)
        return rooms[0], users[0]

    room, user = trio.run(main)
    Path(path + ".json").write_text(json.dumps({"room": room, "user": user}))


def measure(path: str, tree: str, searches: int, tag: str) -> None:
    """Time the searches with the code of ``tree`` (run in a child process); prints JSON."""
    sys.path.insert(0, tree)
    import trio

    from bench.bench_chat import Corpus
    from mchat_actors.chat.embedded import open_embedded_chat_service
    from mchat_actors.chat.morph import KiwiAnalyzer

    meta = json.loads(Path(path + ".json").read_text())
    room, user = meta["room"], meta["user"]

    async def main() -> dict[str, Any]:
        kiwi = KiwiAnalyzer.load()
        out: dict[str, list[float]] = {"search()": [], "/search": [],
                                       "search() cpu": [], "/search cpu": []}
        ids: list[list[str]] = []
        async with open_embedded_chat_service(path, analyzer=kiwi) as svc:
            for label in ("search()", "/search"):
                corpus = Corpus("zipf", seed=2)
                for i, query in enumerate([corpus.question() for _ in range(searches)]):
                    start, cpu = time.perf_counter(), time.process_time()
                    if label == "/search":
                        await svc.send_message(room, user, f"@ai /search {query}",
                                               post_id=f"{tag}-{i}", respond=True,
                                               prompt=f"/search {query}")
                    else:
                        found = await svc.search(room, user, query)
                        ids.append([m.id for m in found])
                    out[label].append((time.perf_counter() - start) * 1000)
                    out[f"{label} cpu"].append((time.process_time() - cpu) * 1000)
        return {**out, "ids": ids}

    print(json.dumps(trio.run(main)))


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the commit to compare with")
    parser.add_argument("--small", action="store_true", help="5 000 memories")
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", help="build the database here once and reuse it")
    parser.add_argument("--_build", help=argparse.SUPPRESS)
    parser.add_argument("--_measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    memories = 5_000 if args.small else 100_000
    if args._build:
        build(args._build, memories)
        return
    if args._measure:
        measure(args._measure[0], args._measure[1], args.searches, args._measure[2])
        return
    me = [sys.executable, str(Path(__file__).resolve()), "--baseline", args.baseline,
          "--searches", str(args.searches)] + (["--small"] if args.small else [])
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        db = args.db or str(Path(tmp) / "bench.db")
        if not Path(db + ".json").exists():
            subprocess.run([*me, "--_build", db], check=True)
        trees = {f"baseline {args.baseline}": str(base), "this tree": str(ROOT)}
        # The baseline searches its own copy: when the two trees index differently
        # (``INDEX_TERMS_VERSION``), each would rebuild a shared index on every open.
        dbs = {str(ROOT): db, str(base): db + ".baseline"}
        if not Path(dbs[str(base)]).exists():
            for suffix in ("", "-wal", "-shm", ".json"):
                if Path(db + suffix).exists():
                    shutil.copyfile(db + suffix, dbs[str(base)] + suffix)
        pooled: dict[tuple[str, str], list[float]] = {}
        found: dict[str, list[list[str]]] = {}
        for r in range(args.rounds):
            for name, tree in trees.items():
                tag = f"r{r}-{'b' if tree != str(ROOT) else 't'}-{os.getpid()}"
                out = subprocess.run([*me, "--_measure", dbs[tree], tree, tag], check=True,
                                     capture_output=True, text=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                found.setdefault(name, result.pop("ids"))
                for label, samples in result.items():
                    pooled.setdefault((name, label), []).extend(samples)
                    print(f"round {r + 1} {name:<20} {label:<13} p50 "
                          f"{statistics.median(samples):6.2f} ms  p99 "
                          f"{percentile(samples, 0.99):6.2f} ms", flush=True)
        base_ids, our_ids = found.values()
        same = sum(a == b for a, b in zip(base_ids, our_ids, strict=True))
        print(f"search() results (ids, in order) identical for {same} of {len(base_ids)} "
              "questions")
        print(f"pooled over {args.rounds} rounds ({memories} memories, {args.searches} "
              "searches a round and kind):")
        for (name, label), samples in pooled.items():
            print(f"  {name:<20} {label:<13} n={len(samples)}  p50 "
                  f"{statistics.median(samples):6.2f} ms  p99 {percentile(samples, 0.99):6.2f} ms"
                  f"  max {max(samples):6.2f} ms")


if __name__ == "__main__":
    cli()
