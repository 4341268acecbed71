"""Figures from a run's outcome: percentiles, rates per second, fairness."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence


def pct(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def jain(values: Sequence[float]) -> float | None:
    """Jain's fairness index: 1.0 when all equal, 1/n when one gets everything."""
    if not values or not any(values):
        return None
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


def per_second(times_s: Iterable[float], start_s: float) -> list[int]:
    """Counts per whole second since ``start_s`` (index 0 = the first second)."""
    counts = Counter(int(t - start_s) for t in times_s if t >= start_s)
    if not counts:
        return []
    return [counts.get(i, 0) for i in range(max(counts) + 1)]


def max_in_window(times_s: Sequence[float], window_s: float = 1.0) -> int:
    """The most events in any sliding window of ``window_s``."""
    ordered = sorted(times_s)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return round(ours / theirs, 2)
