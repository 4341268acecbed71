"""A Prometheus-style latency histogram, kept by whoever measures (no module-level state)."""

from __future__ import annotations

import bisect

import attrs

# Mattermost waits 30 s for an integration; we answer within 4.5 s (webhooks) or 2.5 s (slash).
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 4.5, 5.0, 10.0,
                     30.0)


@attrs.define
class LatencyHistogram:
    """Per-bucket counts (``bisect_left``: a value equal to a bound counts in it), a sum and
    a count."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS_S
    counts: list[int] = attrs.field()
    sum_s: float = 0.0
    count: int = 0

    @counts.default
    def _zeros(self) -> list[int]:
        return [0] * (len(self.bounds) + 1)  # the last slot is +Inf

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.sum_s += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``(upper bound, cumulative count)`` pairs ending with ``+Inf``."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, n in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out
