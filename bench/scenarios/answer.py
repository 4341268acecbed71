"""answer: questions at half the request budget, ChatService of fixed delay (200 ms and 1 s).

Questions go round-robin over 10 channels at 5/s (half of MCHAT_RATE_LIMIT=10) for a fixed
time, then the run waits for the answers (bounded). Latency is the reply's server time minus
the question's; "added" subtracts the ChatService's delay: what the bot adds end to end, with the
fake server's side of it (its broadcast to the bot, its handling of the reply's POST) and the
agent's HTTP round trip beyond its delay. For mchat-actors, "runtime-added" is read from the
bot's own /metrics (``bench.bot_metrics``): from the question's frame reaching its process to
its reply's POST written to the fake's socket, less the ChatService's time; the load's answers only.
"""

from __future__ import annotations

import time
from pathlib import Path

from .. import bot_metrics
from ..harness import open_run
from ..load import outcome
from ..metrics import ms, pct
from . import Column, pace, question_text

NAME = "answer"
COLUMNS = [
    Column("questions", "questions"),
    Column("answered", "answered"),
    Column("answers_per_s", "answers/s", ratio=True),
    Column("p50_ms", "p50 ms"),
    Column("p99_ms", "p99 ms", ratio=True),
    Column("max_ms", "max ms"),
    Column("added_p50_ms", "added p50 ms"),
    Column("added_p99_ms", "added p99 ms", ratio=True),
    Column("runtime_added_p50_ms", "runtime-added p50 ms"),
    Column("runtime_added_p99_ms", "runtime-added p99 ms", target="<= 5 ms (200 ms variant)"),
    Column("runtime_added_le_5ms", "runtime-added <= 5 ms"),
]
RATE_PER_S = 5.0
CHANNELS = 10


SYSTEMS_QUICK = ("mchat-actors", "serial")


def variants(quick: bool) -> list[tuple[str, float]]:
    return [("200ms", 0.2)] if quick else [("200ms", 0.2), ("1s", 1.0)]


async def run_system(system: str, workdir: Path, quick: bool) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    duration = 2.0 if quick else 30.0
    for variant, delay in variants(quick):
        port = bot_metrics.free_port() if system == "mchat-actors" else None
        extra = {"MCHAT_HTTP_LISTEN": f"127.0.0.1:{port}"} if port else None
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        inside: dict[str, float | None] = {}
        async with open_run(system, workdir, label=f"answer {variant}", delay_s=delay,
                            n_channels=5 if quick else CHANNELS, bot_extra_env=extra) as run:
            await run.warm_up()
            channels = run.channels()
            before = await bot_metrics.scrape(metrics_url) if port else {}
            started = time.time()

            async def ask(i: int, ch: list[str] = channels) -> None:
                await run.users.post(ch[i % len(ch)], question_text(i), question=True)

            await pace(ask, RATE_PER_S, duration)
            drain = 3.0 if quick else 30.0
            await run.wait_replies(run.expected(), timeout_s=drain,
                                   quiet_s=drain)
            result = await outcome(run.fake, since_ms=run.load_from_ms)
            if port:
                after, chat = await bot_metrics.scrape_all(metrics_url)
                inside = bot_metrics.summary(bot_metrics.delta(before, after))
                # the ChatService's time as the invoker sees it, beyond the agent's delay: our
                # remote adapter's HTTP client and local checks, the agent's own overhead
                for q in ("0.5", "0.99"):
                    if q in chat:
                        inside[f"chat_beyond_delay_p{q[2:]}_ms"] = round(
                            (chat[q] - delay) * 1000, 2)
        lat = [a.latency_s for a in result.answers if a.latency_s is not None]
        first_q = min((int(a.trigger["create_at"]) for a in result.answers), default=0) / 1000
        last_r = max((int(a.replies[0]["create_at"]) for a in result.answers if a.replies),
                     default=0) / 1000
        span = last_r - first_q
        out[variant] = {
            "delay_s": delay, "duration_s": round(time.time() - started, 1),
            "questions": len(result.answers), "answered": len(lat),
            "answers_per_s": round(len(lat) / span, 2) if lat and span > 0 else 0.0,
            "p50_ms": ms(pct(lat, .5)), "p99_ms": ms(pct(lat, .99)), "max_ms": ms(pct(lat, 1)),
            "added_p50_ms": ms(_sub(pct(lat, .5), delay)),
            "added_p99_ms": ms(_sub(pct(lat, .99), delay)),
            "runtime_added_p50_ms": inside.get("p50_ms"),
            "runtime_added_p99_ms": inside.get("p99_ms"),
            "runtime_added_le_5ms": inside.get("share_le_5ms"),
            "runtime_added_answers": inside.get("answers"),
            "chat_beyond_delay_p50_ms": inside.get("chat_beyond_delay_p5_ms"),
            "chat_beyond_delay_p99_ms": inside.get("chat_beyond_delay_p99_ms"),
            "lost_at_end": result.lost, "duplicated": result.duplicated,
            "series": {"latency_ms": [round(x * 1000, 1) for x in lat]},
        }
    return out


def _sub(value: float | None, delay: float) -> float | None:
    return None if value is None else value - delay


__all__ = ["COLUMNS", "NAME", "run_system"]
