"""The named scenarios of ``python -m bench run``; each module has NAME, COLUMNS, run_system."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import attrs
import trio

ORDER = ("answer", "backlog", "noisy", "storm", "ingest", "scale")
# run only when named (``python -m bench run replicas``): not in the default run nor in the
# ``--quick`` test suite (it starts PostgreSQL and up to 3 replicas per variant: minutes)
NAMED = ("replicas",)

QUESTIONS = (
    "@ai 오늘 X부품 불량률 몇 %야?",
    "@ai what was the yield on line 3 yesterday?",
    "@ai 지난주 회의에서 정한 출하 기준 알려줘",
    "@ai who owns the Y-bracket supplier issue?",
    "@ai 검사 장비 교정 주기가 어떻게 돼?",
)


@attrs.frozen
class Column:
    key: str
    header: str
    target: str | None = None
    ratio: bool = False  # print mchat-actors / peer for this figure


def question_text(i: int, extra: str = "") -> str:
    return f"{QUESTIONS[i % len(QUESTIONS)]} (#{i}){extra}"


async def pace(action: Callable[[int], Awaitable[None]], rate_per_s: float, duration_s: float,
               *, limit: int = 64) -> int:
    """Start ``action(i)`` ``rate_per_s`` times a second for ``duration_s``; wait for them all.

    At most ``limit`` run at once: when the target cannot take more, the rate drops (and the
    achieved rate is what the figures report).
    """
    limiter = trio.CapacityLimiter(limit)
    start = time.monotonic()
    n = int(rate_per_s * duration_s)

    async def one(i: int) -> None:
        try:
            await action(i)
        finally:
            limiter.release_on_behalf_of(i)

    async with trio.open_nursery() as nursery:
        for i in range(n):
            await trio.sleep_until(trio.current_time() + max(
                0.0, start + i / rate_per_s - time.monotonic()))
            await limiter.acquire_on_behalf_of(i)
            nursery.start_soon(one, i)
    return n


def load(name: str):  # noqa: ANN201 - a module
    import importlib

    return importlib.import_module(f"bench.scenarios.{name}")
