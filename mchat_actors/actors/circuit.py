"""The sender's circuit breaker for server-wide failures.

After a 5xx or network error on a post the sender asks ``server_answers()`` (one cheap
``GET /system/ping``). When that fails too the failure is server-wide and the circuit opens:
the sender holds every row (no per-row retries or deferrals are spent on an outage) and
probes the server after ``initial_s``, doubling up to ``max_s``; when a probe answers, the
circuit closes and the held rows go out at once, at the bucket's full rate, in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import trio

from ..errors import MattermostAuthError, MattermostError, MattermostUnavailable


@attrs.define
class Circuit:
    ping: Callable[[], Awaitable[object]]
    initial_s: float = 0.25
    max_s: float = 1.0
    timeout_s: float = 5.0
    probe_at: float | None = None  # open: trio time of the next probe
    failures: int = 0
    opens: int = 0
    probes: int = 0

    @property
    def is_open(self) -> bool:
        return self.probe_at is not None

    async def server_answers(self) -> bool:
        """True when the server answers at all (a 429 or 404 counts: it is there)."""
        self.probes += 1
        try:
            with trio.fail_after(self.timeout_s):
                await self.ping()
        except MattermostAuthError:
            raise
        except (MattermostUnavailable, trio.TooSlowError):
            return False
        except MattermostError:
            return True
        return True

    def open(self) -> bool:
        """Open (or keep open) after a failed probe; True when it was closed."""
        was_closed = self.probe_at is None
        self.opens += was_closed
        self.failures += 1
        delay = min(self.initial_s * 2 ** (self.failures - 1), self.max_s)
        self.probe_at = trio.current_time() + delay
        return was_closed

    async def probe(self) -> bool:
        """Probe now; True when the server answers (the circuit is then closed)."""
        if await self.server_answers():
            self.probe_at, self.failures = None, 0
            return True
        self.open()
        return False
