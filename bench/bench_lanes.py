"""Memory of idle channel lanes in the real dispatcher, beside the least a trio actor costs.

    python -m bench.bench_lanes                  # 10 000 channels
    python -m bench.bench_lanes --channels 1000

A cross-check of the scale scenario's "KiB per idle actor" (which is the whole process's RSS
per channel: the lane and everything else a met and mapped channel leaves behind). Here only
the lane: ``dispatcher.run`` with its default ``QueueConfig`` (mailbox 64, idle lanes reaped
after 300 s), a real SQLite retry queue on disk, ``is_question`` set as in the runtime (so
each lane's request class is live) and a handler that does nothing. One post to each of N
channels starts N lanes; once all are handled and their serializers wait on empty mailboxes
(idle, not reaped), the figures are taken:

- RSS grown per lane (``VmRSS``, after ``gc.collect``), in a first pass without tracing;
- Python memory allocated per lane (``tracemalloc``: what the N lanes still hold), in a
  second pass in the same process, and its top allocation sites;
- the same two for the baseline in the same run: per channel one trio task blocked on its
  own memory channel of the same size (the least a channel actor on trio can be).

Exit status 1 if a pass did not see every lane start and go idle within its bound.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mchat_actors.actors import dispatcher  # noqa: E402
from mchat_actors.config import QueueConfig  # noqa: E402
from mchat_actors.messages import (  # noqa: E402
    ChannelId,
    InboundEvent,
    MattermostUserId,
    Post,
    PostCreated,
    PostId,
)
from mchat_actors.retry_queue import SqliteRetryQueue  # noqa: E402
from mchat_actors.store import Store, open_store  # noqa: E402

BOUND_S = 120.0
# (N, measure) -> (channels live when measured, every one started and went idle)
Pass = Callable[[int, Callable[[], Awaitable[None]]], Awaitable[tuple[int, bool]]]


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def post(i: int) -> PostCreated:
    return PostCreated(post=Post(id=PostId(f"p{i:026d}"), channel_id=ChannelId(f"c{i:025d}"),
                                 user_id=MattermostUserId("u" * 26), message=f"hello {i}"))


async def no_catch_up(cid: str, since_ms: int) -> AsyncIterator[Sequence[InboundEvent]]:
    raise AssertionError(f"unexpected catch-up of {cid}: a mailbox of 64 took one post")
    yield []  # pragma: no cover


async def dispatcher_pass(n: int, measure: Callable[[], Awaitable[None]], *, db: Path
                          ) -> tuple[int, bool]:
    """N lanes of the real dispatcher, each handed one post, all idle when ``measure`` runs."""
    async with open_store(db) as store, trio.open_nursery() as nursery:
        return await _lanes(nursery, n, measure, store)


async def _lanes(nursery: trio.Nursery, n: int, measure: Callable[[], Awaitable[None]],
                 store: Store) -> tuple[int, bool]:
    handled = 0

    async def handle(event: InboundEvent, *, request_class: object) -> None:
        nonlocal handled
        await trio.lowlevel.checkpoint()
        handled += 1

    stats, lanes = dispatcher.DispatcherStats(), dispatcher.Lanes()
    send, inbox = trio.open_memory_channel[InboundEvent](QueueConfig().events)
    await nursery.start(lambda task_status: dispatcher.run(
        QueueConfig(), inbox=inbox, handle=handle, stats=stats,
        retry_queue=SqliteRetryQueue(store), catch_up=no_catch_up, lanes=lanes,
        is_question=lambda event: False, task_status=task_status))
    for i in range(n):
        await send.send(post(i))
    with trio.move_on_after(BOUND_S):
        # "every lane idle" has no event: polled
        while handled < n or any(lane.busy for lane in lanes.by_channel.values()):  # noqa: ASYNC110
            await trio.sleep(0.05)
    ok = handled == n and len(lanes) == n and stats.lanes_reaped == 0
    await measure()
    await send.aclose()  # the dispatcher drains and returns
    return len(lanes), ok


async def baseline_pass(n: int, measure: Callable[[], Awaitable[None]]) -> tuple[int, bool]:
    """Per channel one task blocked on its own memory channel (mailbox 64), one event taken."""
    async with trio.open_nursery() as nursery:
        return await _tasks(nursery, n, measure)


async def _tasks(nursery: trio.Nursery, n: int, measure: Callable[[], Awaitable[None]]
                 ) -> tuple[int, bool]:
    sends: dict[str, trio.MemorySendChannel[InboundEvent]] = {}
    taken = 0
    all_taken = trio.Event()

    async def actor(receive: trio.MemoryReceiveChannel[InboundEvent]) -> None:
        nonlocal taken
        async with receive:
            while True:  # holding no event once taken, like an idle lane
                try:
                    await receive.receive()
                except trio.EndOfChannel:
                    return
                taken += 1
                if taken == n:
                    all_taken.set()

    for i in range(n):
        event = post(i)
        send, receive = trio.open_memory_channel[InboundEvent](QueueConfig().channel_mailbox)
        sends[event.post.channel_id] = send
        nursery.start_soon(actor, receive)
        send.send_nowait(event)
    with trio.move_on_after(BOUND_S):
        await all_taken.wait()
    await measure()
    for send in sends.values():
        send.close()
    return len(sends), taken == n


async def measured(run_pass: Pass, n: int, *, traced: bool) -> dict[str, object]:
    """One pass; RSS (``traced`` False) or tracemalloc (True) grown per channel."""
    figures: dict[str, object] = {}
    gc.collect()
    if traced:
        tracemalloc.start(8)
        before_snap = tracemalloc.take_snapshot()
    rss_before = rss_kib()

    async def measure() -> None:
        gc.collect()
        if traced:
            snap = tracemalloc.take_snapshot()
            stats = snap.compare_to(before_snap, "lineno")
            grown = sum(s.size_diff for s in stats)
            figures["traced_kib_per_channel"] = round(grown / 1024 / n, 3)
            figures["top"] = [(str(s.traceback[0]).replace(str(Path.cwd()) + "/", ""),
                               round(s.size_diff / n)) for s in stats[:6]]
        else:
            figures["rss_kib_per_channel"] = round((rss_kib() - rss_before) / n, 3)

    live, ok = await run_pass(n, measure)
    if traced:
        tracemalloc.stop()
    figures.update(live=live, ok=ok)
    return figures


PASSES = ("baseline", "lanes")
TITLES = {"baseline": "baseline: task + channel", "lanes": "dispatcher lanes"}


async def one_pass(name: str, n: int) -> dict[str, object]:
    """The RSS pass, then the traced one, of ``name`` (in a fresh process: RSS grown in a
    process that already freed memory would reuse it)."""
    with tempfile.TemporaryDirectory(prefix="bench-lanes-") as tmp:
        counter = iter(range(2))

        async def lanes(n: int, measure: Callable[[], Awaitable[None]]) -> tuple[int, bool]:
            return await dispatcher_pass(n, measure, db=Path(tmp) / f"d{next(counter)}.db")

        run_pass: Pass = lanes if name == "lanes" else baseline_pass
        rss = await measured(run_pass, n, traced=False)
        traced = await measured(run_pass, n, traced=True)
    return {**rss, **traced, "ok": bool(rss["ok"]) and bool(traced["ok"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--pass", dest="one", choices=PASSES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # the child: one pass, its figures as JSON on stdout
        print(json.dumps(trio.run(one_pass, args.one, args.channels)))
        return 0
    results: dict[str, dict[str, Any]] = {}
    for name in PASSES:
        child = subprocess.run([sys.executable, "-m", "bench.bench_lanes", "--pass", name,
                                "--channels", str(args.channels)], capture_output=True,
                               text=True, check=False, cwd=Path(__file__).resolve().parent.parent)
        if child.returncode:
            print(f"{name}: failed:\n{child.stdout}{child.stderr}", file=sys.stderr)
            return 1
        results[name] = json.loads(child.stdout.splitlines()[-1])
    print(f"{args.channels} idle channels (python {sys.version.split()[0]}, one process each)")
    print(f"{'':28}{'live':>8}{'RSS KiB/channel':>18}{'traced KiB/channel':>21}")
    for name, r in results.items():
        print(f"{TITLES[name]:28}{r['live']:>8}{r['rss_kib_per_channel']:>18.2f}"
              f"{r['traced_kib_per_channel']:>21.2f}{'' if r['ok'] else '  NOT ALL IDLE'}")
    print("dispatcher lanes, top allocation sites still held (bytes per channel):")
    for where, size in results["lanes"]["top"]:
        print(f"  {size:>6}  {where}")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
