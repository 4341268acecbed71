"""The latency mchat-actors itself adds to live answers, read from its own /metrics.

``mchat_answer_added_seconds`` is a histogram the sender keeps: per live answer, from the
question's WebSocket frame reaching the bot's process to its reply's POST written to the
server's socket (the fake's handling of that POST is not the bot's), less the ChatService's
time. Two scrapes (before and after a load) give that load's answers alone
(the warm-up's are subtracted); quantiles are interpolated within buckets, as Prometheus'
``histogram_quantile`` does, and ``share_le_5ms`` is exact at that bucket's bound.
"""

from __future__ import annotations

import socket

import httpx
from prometheus_client.parser import text_string_to_metric_families

NAME = "mchat_answer_added_seconds"
Buckets = dict[float, float]  # upper bound (s) -> cumulative count


def free_port() -> int:
    """A port free on 127.0.0.1 now (for the bot's HTTP listener, so the bench can scrape it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def scrape(url: str) -> Buckets:
    """The histogram's cumulative buckets at ``url`` (the bot's /metrics); {} when absent."""
    return (await scrape_all(url))[0]


async def scrape_all(url: str) -> tuple[Buckets, dict[str, float]]:
    """The histogram's buckets, and the ChatService calls' recent quantiles as the bot's
    invoker sees them (``mchat_chat_latency_recent_seconds``: "0.5", "0.99", in seconds)."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        text = (await client.get(url)).text
    out: Buckets = {}
    chat: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if family.name == NAME and sample.name == f"{NAME}_bucket":
                out[float(sample.labels["le"])] = sample.value
            elif sample.name == "mchat_chat_latency_recent_seconds":
                chat[sample.labels["quantile"]] = sample.value
    return out, chat


def delta(before: Buckets, after: Buckets) -> Buckets:
    return {le: after[le] - before.get(le, 0.0) for le in sorted(after)}


def quantile(buckets: Buckets, q: float) -> float | None:
    """The ``q`` quantile (s), interpolated linearly inside its bucket; None without answers."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if le == float("inf"):
                return lower  # beyond the last finite bound: that bound is all we know
            inside = count - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, count
    return lower


def summary(buckets: Buckets) -> dict[str, float | None]:
    total = buckets.get(float("inf"), 0.0)
    at_5ms = buckets.get(0.005)
    return {
        "answers": total,
        "p50_ms": _ms(quantile(buckets, .5)), "p99_ms": _ms(quantile(buckets, .99)),
        "share_le_5ms": round(at_5ms / total, 4) if total and at_5ms is not None else None,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
