"""The server's rate limiter: GCRA as in ``throttled`` (§5 of the protocol doc).

Emission interval ``T = 1/per_s``, burst tolerance ``T * (burst + 1)``; a fresh key may fire
``burst + 1`` requests at once. Keys are the auth token, else the client IP (the fake's
choice of ``VaryByUser``). Times come from ``trio.current_time()``, in integer nanoseconds so
the arithmetic matches the Go code exactly.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import attrs

MAX_KEYS = 10_000
_NS = 1_000_000_000


@attrs.frozen
class RateDecision:
    limited: bool
    headers: tuple[tuple[str, str], ...]


@attrs.define
class RateLimiter:
    per_s: float = 0.0
    burst: int = 100
    _tat: OrderedDict[str, int] = attrs.field(factory=OrderedDict)

    @property
    def enabled(self) -> bool:
        return self.per_s > 0

    def configure(self, per_s: float, burst: int) -> None:
        if per_s < 0 or burst < 0:
            raise ValueError("rate limit and burst must be >= 0")
        self.per_s = per_s
        self.burst = burst
        self._tat.clear()

    def check(self, key: str, now_s: float) -> RateDecision:
        """Count one request for ``key`` at ``now_s``; the headers go on the response."""
        interval = round(_NS / self.per_s)
        tolerance = interval * (self.burst + 1)
        now = round(now_s * _NS)
        tat = self._tat.get(key, now)
        new_tat = max(now, tat) + interval
        allow_at = new_tat - tolerance
        retry_after = -1
        if now < allow_at:
            limited = True
            if interval <= tolerance:
                retry_after = allow_at - now
            ttl = tat - now
        else:
            limited = False
            ttl = new_tat - now
            self._tat[key] = new_tat
            self._tat.move_to_end(key)
            while len(self._tat) > MAX_KEYS:
                self._tat.popitem(last=False)
        remaining = 0
        left = tolerance - ttl
        if left > -interval:
            remaining = left // interval
        headers = [
            ("X-Ratelimit-Limit", str(self.burst + 1)),
            ("X-Ratelimit-Remaining", str(max(remaining, 0))),
            ("X-Ratelimit-Reset", str(math.ceil(max(ttl, 0) / _NS))),
        ]
        if retry_after >= 0:
            headers.append(("Retry-After", str(math.ceil(retry_after / _NS))))
        return RateDecision(limited, tuple(headers))
