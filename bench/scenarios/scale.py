"""scale: 1 000 and 10 000 channels with a little traffic each: memory, start-up, sync cost.

A fake seeded with N public channels (30 users and the bot in each; 8 with --quick).
Start-up is from spawning the bot to its first answer (a question in ``c0`` asked every 2 s
until answered, waiting at most 60 s + 0.15 s per channel); the bot's REST requests until then
are its start-up sync cost. Then one plain post goes to every channel (the bot meets each
channel: a channel actor, and for mchat-actors the channel and member mapping), and a last
question in the last channel; after that is answered (or a bounded wait) the RSS grown since
start-up, divided by N, is the memory per channel.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import trio

from ..harness import open_run
from ..load import outcome
from ..procs import BenchError
from . import Column, pace

NAME = "scale"
COLUMNS = [
    Column("startup_s", "start-up s"),
    Column("startup_requests", "start-up requests"),
    Column("rss_idle_mib", "RSS idle MiB"),
    Column("rss_after_mib", "RSS after MiB"),
    Column("kib_per_channel", "KiB per channel", target="<= 10 KiB", ratio=True),
    Column("traffic_requests", "requests for the traffic"),
    Column("requests_per_channel", "req per channel"),
    Column("last_answer_s", "last answer s"),
]
SYSTEMS_QUICK = ("mchat-actors",)


def variants(quick: bool) -> list[int]:
    """20 with --quick, else 1 000 and 10 000 (or BENCH_SCALE_CHANNELS, comma-separated)."""
    if quick:
        return [20]
    chosen = os.environ.get("BENCH_SCALE_CHANNELS", "1000,10000")
    return [int(n) for n in chosen.split(",") if n.strip()]


async def run_system(system: str, workdir: Path, quick: bool) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    wait_s = 15.0 if quick else 180.0
    for n in variants(quick):
        async with open_run(system, workdir, label=f"scale {n}", delay_s=0.0, n_channels=n,
                            n_users=8 if quick else 30) as run:
            assert run.bot is not None
            try:
                startup: float | None = await run.wait_ready(
                    timeout_s=60.0 if quick else 60.0 + 0.15 * n)
            except BenchError as exc:  # reported as "no answer within the bound", not fatal
                print(f"    {system}: {str(exc).splitlines()[0]}", flush=True)
                startup = None
            ready_at = time.time()
            await trio.sleep(0.5 if quick else 2.0)
            rss_idle = run.bot.rss_kib()
            names = run.channels()

            async def plain(i: int, names: list[str] = names) -> None:
                await run.users.post(names[i], f"채널 {i} 근황 공유 (hello {i})", question=False)

            await pace(plain, 200.0, n / 200.0, limit=32)
            before = run.counted_replies()
            asked_at = time.time()
            await run.users.post(names[-1], "@ai 마지막 채널 질문 last", question=True)
            answered = await run.wait_replies(before + 1, timeout_s=wait_s, quiet_s=wait_s)
            last_answer = round(time.time() - asked_at, 2) if answered else None
            await trio.sleep(0.5 if quick else 2.0)
            rss_after = run.bot.rss_kib()
            result = await outcome(run.fake)
        reqs = result.bot_requests
        spawn = run.spawned_at
        startup_reqs = sum(1 for r in reqs if spawn <= float(r["wall_time"]) <= ready_at)
        traffic_reqs = sum(1 for r in reqs if float(r["wall_time"]) > ready_at)
        out[f"{n} channels"] = {
            "channels": n, "startup_s": None if startup is None else round(startup, 2),
            "startup_requests": startup_reqs,
            "rss_idle_mib": round(rss_idle / 1024, 1), "rss_after_mib": round(rss_after / 1024, 1),
            "kib_per_channel": round(max(0, rss_after - rss_idle) / n, 2),
            "traffic_requests": traffic_reqs,
            "requests_per_channel": round((startup_reqs + traffic_reqs) / n, 2),
            "last_answer_s": last_answer,
        }
    return out
