"""backlog: questions at twice the request budget; how much of the budget is used, and how fairly.

Questions go round-robin over 10 channels at 20/s (MCHAT_RATE_LIMIT=10, the fake's limiter at
10/s with a burst of 10) for a fixed time; the run then waits for the answers (bounded). The
bot's REST requests come from the fake's request log: achieved requests/s from its first reply
to its last, 429s, the most in any 1 s; fairness is Jain's index of replies per channel up to
the moment the first channel has all its answers; order violations are adjacent questions of
one channel answered the other way round. The 1 s variant gives the answer-throughput ratio.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..harness import open_run
from ..load import Outcome, outcome
from ..metrics import jain, max_in_window, per_second
from . import Column, pace, question_text

NAME = "backlog"
LIMIT = 10.0
COLUMNS = [
    Column("questions", "questions"),
    Column("answered", "answered"),
    Column("answers_per_s", "answers/s", target=">= 10x serial (1s)", ratio=True),
    Column("requests_per_s", "req/s"),
    Column("budget_pct", "% of budget", target=">= 99 %", ratio=True),
    Column("http_429", "429s", target="0"),
    Column("max_req_1s", "max req in 1 s"),
    Column("replies_per_request", "replies/req"),
    Column("jain", "Jain"),
    Column("reordered", "reordered", target="0"),
    Column("lost_at_end", "unanswered"),
    Column("duplicated", "duplicated", target="0"),
]
SYSTEMS_QUICK = ("mchat-actors",)


def variants(quick: bool) -> list[tuple[str, float]]:
    return [("200ms", 0.2)] if quick else [("200ms", 0.2), ("1s", 1.0)]


async def run_system(system: str, workdir: Path, quick: bool) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    channels_n = 4 if quick else 10
    duration = 2.0 if quick else 20.0
    for variant, delay in variants(quick):
        async with open_run(system, workdir, label=f"backlog {variant}", delay_s=delay,
                            n_channels=channels_n) as run:
            await run.warm_up()
            channels = run.channels()
            started = time.time()

            async def ask(i: int, ch: list[str] = channels) -> None:
                await run.users.post(ch[i % len(ch)], question_text(i), question=True)

            asked = await pace(ask, 2 * LIMIT, duration)
            drain = asked / LIMIT + (3.0 if quick else 20.0)
            await run.wait_replies(run.expected(), timeout_s=drain,
                                   quiet_s=max(6.0, 4 * delay))
            result = await outcome(run.fake, since_ms=run.load_from_ms)
        out[variant] = figures(result, started, delay)
    return out


def figures(result: Outcome, started: float, delay: float) -> dict[str, object]:
    answered = [a for a in result.answers if a.replies]
    first_reply = [int(a.replies[0]["create_at"]) / 1000 for a in answered]
    reqs = [r for r in result.bot_requests if float(r["wall_time"]) >= started]
    times = [float(r["wall_time"]) for r in reqs]
    posts = sorted(float(r["wall_time"]) for r in reqs
                   if r["method"] == "POST" and r["path"] == "/api/v4/posts")
    rate = None
    if len(posts) > 1 and posts[-1] > posts[0]:
        in_window = sum(1 for t in times if posts[0] <= t <= posts[-1])
        rate = (in_window - 1) / (posts[-1] - posts[0])
    first_q = min((int(a.trigger["create_at"]) for a in result.answers), default=0) / 1000
    span = (max(first_reply) - first_q) if first_reply else 0.0
    return {
        "delay_s": delay, "questions": len(result.answers), "answered": len(answered),
        "answers_per_s": round(len(answered) / span, 2) if span > 0 else 0.0,
        "requests_per_s": None if rate is None else round(rate, 2),
        "budget_pct": None if rate is None else round(100 * rate / LIMIT, 1),
        "http_429": sum(1 for r in reqs if r["status"] == 429),
        "max_req_1s": max_in_window(times) if times else 0,
        "replies_per_request": round(len(posts) / len(reqs), 3) if reqs else None,
        "jain": _fairness(result),
        "reordered": result.reordered, "lost_at_end": result.lost,
        "duplicated": result.duplicated,
        "series": {"requests_per_s": per_second(times, started),
                   "http_429_per_s": per_second(
                       [float(r["wall_time"]) for r in reqs if r["status"] == 429], started),
                   "limit": LIMIT},
    }


def _fairness(result: Outcome) -> float | None:
    """Jain's index of replies per channel until the first channel had all its answers."""
    by_channel: dict[str, list[int]] = {}
    for a in result.answers:
        by_channel.setdefault(str(a.trigger["channel_id"]), []).append(
            int(a.replies[0]["create_at"]) if a.replies else 1 << 62)
    if len(by_channel) < 2:
        return None
    cut = min(max(times) for times in by_channel.values())
    value = jain([sum(1 for t in times if t <= cut) for times in by_channel.values()])
    return None if value is None else round(value, 3)
