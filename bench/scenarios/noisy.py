"""noisy: one channel whose ChatService takes 30 s; the other channels' p99 with and without it.

Questions go round-robin over the other channels at 5/s (ChatService 200 ms). Phase "quiet":
no slow question. Phase "noisy": at its start one question in ``c0`` takes 30 s (5 s with
--quick), and ``c0`` keeps being asked (its questions queue behind the slow one, in order).
Both phases in the same run and process; the figure is how far the slow channel moved the
others' p99.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..harness import open_run
from ..load import Answer, outcome
from ..metrics import ms, pct
from . import Column, pace, question_text

NAME = "noisy"
COLUMNS = [
    Column("others_p50_quiet_ms", "others p50 quiet ms"),
    Column("others_p99_quiet_ms", "others p99 quiet ms"),
    Column("others_p99_noisy_ms", "others p99 noisy ms", ratio=True),
    Column("moved_p99_ms", "p99 moved ms", target="< 10 ms", ratio=True),
    Column("others_unanswered", "others unanswered"),
    Column("slow_latency_s", "slow answer s"),
]
SYSTEMS_QUICK = ("mchat-actors",)
RATE_PER_S = 5.0
DELAY_S = 0.2


async def run_system(system: str, workdir: Path, quick: bool) -> dict[str, dict[str, object]]:
    slow_s = 3.0 if quick else 30.0
    phase_s = 2.0 if quick else 15.0
    async with open_run(system, workdir, label="noisy", delay_s=DELAY_S,
                        n_channels=4 if quick else 10) as run:
        await run.warm_up()
        others = run.channels()[1:]

        async def ask(i: int) -> None:
            await run.users.post(others[i % len(others)], question_text(i), question=True)

        await pace(ask, RATE_PER_S, phase_s)
        noisy_from = time.time()
        await run.users.post("c0", question_text(0, f" [delay={slow_s:g}]"), question=True)

        async def ask_noisy(i: int) -> None:
            if i % 5 == 4:
                await run.users.post("c0", question_text(i), question=True)
            else:
                await ask(i)

        await pace(ask_noisy, RATE_PER_S, phase_s)
        await run.wait_replies(run.expected(), timeout_s=slow_s + 10,
                               quiet_s=slow_s + 5)
        result = await outcome(run.fake, since_ms=run.load_from_ms)
    c0 = run.fake.channels["c0"]
    quiet: list[Answer] = []
    noisy: list[Answer] = []
    slow: list[Answer] = []
    for a in result.answers:
        if a.trigger["channel_id"] == c0:
            if "[delay=" in str(a.trigger["message"]):
                slow.append(a)
        elif int(a.trigger["create_at"]) / 1000 < noisy_from:
            quiet.append(a)
        else:
            noisy.append(a)
    q = [a.latency_s for a in quiet if a.latency_s is not None]
    n = [a.latency_s for a in noisy if a.latency_s is not None]
    p99q, p99n = pct(q, .99), pct(n, .99)
    return {"30s" if not quick else f"{slow_s:g}s": {
        "others_p50_quiet_ms": ms(pct(q, .5)), "others_p99_quiet_ms": ms(p99q),
        "others_p99_noisy_ms": ms(p99n),
        "moved_p99_ms": ms(p99n - p99q) if p99n is not None and p99q is not None else None,
        "others_unanswered": sum(1 for a in quiet + noisy if not a.replies),
        "slow_latency_s": slow[0].latency_s if slow and slow[0].latency_s else None,
        "series": {"quiet_ms": [round(x * 1000, 1) for x in q],
                   "noisy_ms": [round(x * 1000, 1) for x in n]},
    }}
