"""Figures from a run's outcome: percentiles, rates per second, fairness."""

from __future__ import annotations

import math
import random
import statistics
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


def bootstrap_diff(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], q: float, *,
                   n: int = 2000, level: float = 0.95,
                   seed: int = 12) -> tuple[float, float, float] | None:
    """``pct(b, q) - pct(a, q)`` over the pooled blocks, with a two-level bootstrap interval.

    ``a`` and ``b`` are the blocks of each condition (lists of samples). Each resample draws
    the blocks of a condition with replacement, then the samples within each drawn block with
    replacement, so that what differs between blocks of one condition (the machine's load
    drifting) widens the interval as much as what differs within them. Returns (difference,
    low, high), or None when a condition has no samples.
    """
    quiet = [list(x) for x in a if x]
    noisy = [list(x) for x in b if x]
    if not quiet or not noisy:
        return None
    point = pct([v for x in noisy for v in x], q)
    base = pct([v for x in quiet for v in x], q)
    assert point is not None and base is not None
    rng = random.Random(seed)

    def draw(blocks: list[list[float]]) -> list[float]:
        out: list[float] = []
        for _ in blocks:
            block = blocks[rng.randrange(len(blocks))]
            out.extend(block[rng.randrange(len(block))] for _ in block)
        return out

    diffs = sorted(pct(draw(noisy), q) - pct(draw(quiet), q)  # type: ignore[operator]
                   for _ in range(n))
    tail = (1 - level) / 2
    low = diffs[max(0, math.floor(tail * n))]
    high = diffs[min(n - 1, math.ceil((1 - tail) * n) - 1)]
    return point - base, low, high


def median_ci(values: Sequence[float], level: float = 0.95
              ) -> tuple[float, float, float] | None:
    """The median of ``values`` and a distribution-free interval for it (binomial order
    statistics: no assumption on the values' distribution, only that they are independent):
    ``(median, low, high)``, None with fewer than 6 values (no interval at 95 % then)."""
    xs = sorted(values)
    n = len(xs)
    if n < 6:
        return None
    tail = (1 - level) / 2
    k, below = 0, 0.0  # the largest k with P(Binomial(n, 1/2) < k) <= tail
    while True:
        below_next = below + math.comb(n, k) / 2 ** n
        if below_next > tail:
            break
        below, k = below_next, k + 1
    k = max(k, 1)
    return statistics.median(xs), xs[k - 1], xs[n - k]
