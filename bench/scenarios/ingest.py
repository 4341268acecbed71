"""ingest: plain posts at rising rates; the highest rate a bot keeps up with, vs the raw decoder.

Plain posts (stored by mchat-actors, ignored by the peers) go round-robin over 20 channels at
each step's rate, while 2 probe questions a second (ChatService 0 ms) time the bot: a step is
kept up with when every probe of it is answered within 1 s (no backlog growing behind the
posts). Steps rise until one is not kept up with, or the load generator (one process, httpx)
posts less than 90 % of the step's rate: then the figure is bounded by the load generator,
and says so. ``raw`` (bench/peers/raw.py) only reads and
decodes the WebSocket, and answers probes at once: the decode limit, in the same run.
"""

from __future__ import annotations

import time
from pathlib import Path

import trio

from ..harness import open_run
from ..load import outcome
from ..metrics import ms, pct
from . import Column, pace

NAME = "ingest"
SYSTEMS = ("mchat-actors", "raw", "serial", "driver", "mmpy")
SYSTEMS_QUICK = ("mchat-actors", "raw")
COLUMNS = [
    Column("highest_kept_up_per_s", "highest kept up /s", ratio=True),
    Column("achieved_per_s", "posted /s"),
    Column("probe_p50_ms", "probe p50 ms"),
    Column("probe_max_ms", "probe max ms"),
    Column("kept_up", "kept up"),
    Column("load_generator_max_per_s", "load gen max /s"),
]
PROBES_PER_S = 2.0
KEPT_UP_S = 1.0


def steps(quick: bool) -> tuple[list[float], float]:
    if quick:
        return [50.0, 200.0], 1.5
    return [25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0], 6.0


async def run_system(system: str, workdir: Path, quick: bool) -> dict[str, dict[str, object]]:
    rates, step_s = steps(quick)
    out: dict[str, dict[str, object]] = {}
    async with open_run(system, workdir, label="ingest", delay_s=0.0,
                        n_channels=5 if quick else 20, n_users=30 if quick else 200) as run:
        await run.warm_up()
        channels = run.channels()
        windows: list[tuple[float, float, float, int]] = []
        best = 0.0
        for rate in rates:
            before = len(run.users.sent)
            t0 = time.time()

            async def plain(i: int, ch: list[str] = channels) -> None:
                await run.users.post(ch[i % len(ch)], f"메시지 {i}: 라인 점검 결과 공유합니다 "
                                     f"(plain post {i})", question=False)

            async def probe(i: int, ch: list[str] = channels) -> None:
                await run.users.post(ch[i % len(ch)], f"@ai probe {i}", question=True)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pace, probe, PROBES_PER_S, step_s)
                await pace(plain, rate, step_s, limit=128)
            t1 = time.time()
            windows.append((rate, t0, t1, len(run.users.sent) - before))
            await run.wait_replies(run.expected(), timeout_s=KEPT_UP_S + 2,
                                   quiet_s=KEPT_UP_S + 2)
            result = await outcome(run.fake, since_ms=int(t0 * 1000))
            probes = [a for a in result.answers if int(a.trigger["create_at"]) < t1 * 1000]
            lat = [a.latency_s for a in probes if a.latency_s is not None]
            kept = bool(probes) and len(lat) == len(probes) and max(lat) <= KEPT_UP_S
            achieved = (len(run.users.sent) - before) / (t1 - t0)
            # the load generator (one process) could not post at the step's rate: the bot was
            # not asked for more, so no higher step is tried
            short = achieved < 0.9 * rate
            out[f"{rate:g}/s"] = {
                "rate": rate, "achieved_per_s": round(achieved, 1),
                "probe_p50_ms": ms(pct(lat, .5)), "probe_max_ms": ms(pct(lat, 1)),
                "kept_up": ("yes" if kept else "no") + (" (load gen short)" if short else ""),
                "probes": len(probes), "probes_answered": len(lat),
            }
            if kept:
                best = max(best, achieved)
            if not kept or short:
                break
            if run.bot is not None and not run.bot.alive():
                break
    out["max"] = {"highest_kept_up_per_s": round(best, 1),
                  "load_generator_max_per_s": max(
                      (float(v["achieved_per_s"]) for v in out.values()), default=0.0)}
    return out
