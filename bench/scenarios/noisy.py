"""noisy: one channel whose ChatService takes 30 s; how far it moves the other channels' p99.

Questions go round-robin over every channel at 5/s (ChatService 200 ms): one in ten to ``c0``,
the rest over the others, the same load all run long. The run alternates quiet and noisy blocks,
quiet first and last (Q N Q N Q N Q N Q): at the start of each noisy block one question in
``c0`` takes as long as the block (30 s; 2 s with --quick), so ``c0``'s next questions queue
behind it; a quiet block has no slow question. Questions asked in the first ``GUARD_S`` of a
block are left out of both conditions (``c0``'s queue drains at the start of the quiet block
after a noisy one). Alternating puts the machine's drifting load on both conditions alike (one
quiet phase then one noisy phase put it all on the difference: -108 ms in the first run).

Figures: the others' p50 and p99 in each condition (pooled over its blocks), the difference
noisy - quiet, and its 95 % interval from a two-level bootstrap (blocks, then answers within a
block: ``metrics.bootstrap_diff``). And a paired figure, which a drifting machine moves less:
each noisy block's p99 against the pooled p99 of the quiet blocks on either side of it
(``moved_p99_per_block_ms`` in the JSON), their median over the noisy blocks, and a
distribution-free 95 % interval for that median (``metrics.median_ci``; 6 noisy blocks at
least: ``BENCH_NOISY_BLOCKS``, 12 for the figures in docs/benchmarks.md).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from ..harness import open_run
from ..load import Answer, outcome
from ..metrics import bootstrap_diff, median_ci, ms, pct
from . import Column, pace, question_text

NAME = "noisy"
COLUMNS = [
    Column("others_p50_quiet_ms", "others p50 quiet ms"),
    Column("others_p99_quiet_ms", "others p99 quiet ms"),
    Column("others_p99_noisy_ms", "others p99 noisy ms", ratio=True),
    Column("moved_p50_ms", "p50 moved ms"),
    Column("moved_p50_ci_ms", "p50 moved 95% CI ms"),
    Column("moved_p99_ms", "p99 moved ms", target="< 10 ms", ratio=True),
    Column("moved_p99_ci_ms", "p99 moved 95% CI ms"),
    Column("paired_p99_ms", "p99 moved, median of pairs ms", target="< 10 ms (interval)"),
    Column("paired_p99_ci_ms", "its 95% CI ms"),
    Column("answers_quiet_noisy", "answers quiet/noisy"),
    Column("others_unanswered", "others unanswered"),
    Column("slow_latency_s", "slow answer s"),
]
SYSTEMS_QUICK = ("mchat-actors",)
RATE_PER_S = 5.0
DELAY_S = 0.2
C0_EVERY = 10  # one question in ten goes to the noisy channel, in both conditions
NOISY_BLOCKS = 4  # Q N Q N Q N Q N Q; BENCH_NOISY_BLOCKS=N for a longer run (more answers)
QUICK_NOISY_BLOCKS = 2  # Q N Q N Q
GUARD_S = 5.0


def _ci(diff: tuple[float, float, float] | None) -> str | None:
    if diff is None:
        return None
    return f"{diff[1] * 1000:+.0f} .. {diff[2] * 1000:+.0f}"


def _blocks() -> int:
    raw = os.environ.get("BENCH_NOISY_BLOCKS", "")
    if not raw:
        return NOISY_BLOCKS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"BENCH_NOISY_BLOCKS must be a whole number >= 1, not {raw!r}")
    return int(raw)


async def run_system(system: str, workdir: Path, quick: bool) -> dict[str, dict[str, object]]:
    slow_s = 2.0 if quick else 30.0
    quiet_s = 2.0 if quick else 20.0
    guard_s = 0.5 if quick else GUARD_S
    noisy_blocks = QUICK_NOISY_BLOCKS if quick else _blocks()
    kinds = ["quiet", "noisy"] * noisy_blocks + ["quiet"]
    blocks: list[tuple[str, float, float]] = []  # (kind, start, end) in wall-clock seconds
    async with open_run(system, workdir, label="noisy", delay_s=DELAY_S,
                        n_channels=4 if quick else 10) as run:
        await run.warm_up()
        others = run.channels()[1:]
        asked = 0
        for kind in kinds:
            start = time.time()
            if kind == "noisy":
                await run.users.post("c0", question_text(asked, f" [delay={slow_s:g}]"),
                                     question=True)
            base = asked

            async def ask(i: int, base: int = base) -> None:
                n = base + i
                if n % C0_EVERY == C0_EVERY - 1:
                    await run.users.post("c0", question_text(n), question=True)
                else:
                    await run.users.post(others[n % len(others)], question_text(n),
                                         question=True)

            asked += await pace(ask, RATE_PER_S, slow_s if kind == "noisy" else quiet_s)
            blocks.append((kind, start, time.time()))
        await run.wait_replies(run.expected(), timeout_s=slow_s + 15, quiet_s=slow_s + 5)
        result = await outcome(run.fake, since_ms=run.load_from_ms)
    c0 = run.fake.channels["c0"]
    per_block: list[list[float]] = [[] for _ in blocks]
    slow: list[Answer] = []
    unanswered = 0
    for a in result.answers:
        if a.trigger["channel_id"] == c0:
            if "[delay=" in str(a.trigger["message"]):
                slow.append(a)
            continue
        if not a.replies:
            unanswered += 1
        at = int(str(a.trigger["create_at"])) / 1000
        for j, (_kind, start, end) in enumerate(blocks):
            if start + guard_s <= at < end and a.latency_s is not None:
                per_block[j].append(a.latency_s)
    quiet = [per_block[j] for j, b in enumerate(blocks) if b[0] == "quiet"]
    noisy = [per_block[j] for j, b in enumerate(blocks) if b[0] == "noisy"]
    q = [x for block in quiet for x in block]
    n = [x for block in noisy for x in block]
    d50 = bootstrap_diff(quiet, noisy, .5)
    d99 = bootstrap_diff(quiet, noisy, .99)
    pairs = []  # each noisy block against the quiet blocks just before and after it
    for j, (kind, _s, _e) in enumerate(blocks):
        if kind == "noisy":
            around = per_block[j - 1] + per_block[j + 1]
            p99n, p99q = pct(per_block[j], .99), pct(around, .99)
            pairs.append(ms(p99n - p99q) if p99n is not None and p99q is not None else None)
    known = [p for p in pairs if p is not None]
    paired = median_ci(known)
    slow_lat = [a.latency_s for a in slow if a.latency_s is not None]
    return {f"{slow_s:g}s": {
        "others_p50_quiet_ms": ms(pct(q, .5)), "others_p99_quiet_ms": ms(pct(q, .99)),
        "others_p50_noisy_ms": ms(pct(n, .5)), "others_p99_noisy_ms": ms(pct(n, .99)),
        "moved_p50_ms": ms(d50[0]) if d50 else None, "moved_p50_ci_ms": _ci(d50),
        "moved_p99_ms": ms(d99[0]) if d99 else None, "moved_p99_ci_ms": _ci(d99),
        "moved_p99_per_block_ms": pairs,
        "paired_p99_ms": statistics.median(known) if known else None,
        "paired_p99_ci_ms": (f"{paired[1]:+.0f} .. {paired[2]:+.0f}" if paired else
                             f"none: {len(known)} pairs (6 needed)"),
        "answers_quiet_noisy": f"{len(q)}/{len(n)}",
        "others_unanswered": unanswered,
        "slow_latency_s": round(max(slow_lat), 2) if slow_lat else None,
        "blocks": [{"kind": k, "s": round(e - s, 1), "answers": len(per_block[j]),
                    "p50_ms": ms(pct(per_block[j], .5)), "p99_ms": ms(pct(per_block[j], .99))}
                   for j, (k, s, e) in enumerate(blocks)],
        "guard_s": guard_s, "noisy_blocks": noisy_blocks,
        "series": {"quiet_ms": [round(x * 1000, 1) for x in q],
                   "noisy_ms": [round(x * 1000, 1) for x in n]},
    }}
