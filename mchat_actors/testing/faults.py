"""Fault windows of the fake server, measured on ``trio.current_time()``.

Each knob opens a window ``[now, now + seconds)``; a new call replaces the previous window of
the same knob (``seconds=0`` ends it).
"""

from __future__ import annotations

import math

import attrs
import trio

WEBSOCKET_PATH = "/api/v4/websocket"


def _now() -> float:
    return trio.current_time()


@attrs.define
class Faults:
    refuse_ws_until: float = -math.inf
    refuse_conn_until: float = -math.inf
    fail_until: float = -math.inf
    fail_status: int = 503
    fail_prefix: str = "/api/v4/"
    stall_until: float = -math.inf
    latency_s: float = 0.0

    def refuse_websockets(self, seconds: float) -> None:
        self.refuse_ws_until = _now() + seconds

    def refuse_connections(self, seconds: float) -> None:
        self.refuse_conn_until = _now() + seconds

    def fail_requests(
        self, seconds: float, status: int = 503, path_prefix: str = "/api/v4/"
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"fail status must be 4xx or 5xx, not {status}")
        self.fail_until = _now() + seconds
        self.fail_status = status
        self.fail_prefix = path_prefix

    def stall(self, seconds: float) -> None:
        self.stall_until = _now() + seconds

    def set_latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self.latency_s = seconds

    @property
    def refusing_connections(self) -> bool:
        return _now() < self.refuse_conn_until

    @property
    def refusing_websockets(self) -> bool:
        return _now() < self.refuse_ws_until

    @property
    def stalled(self) -> bool:
        return _now() < self.stall_until

    def failing(self, path: str) -> int | None:
        """The status to answer ``path`` with, or ``None``.

        The WebSocket upgrade fails only when the prefix names it (``/api/v4/websocket``);
        the default ``/api/v4/`` leaves it alone (``refuse_websockets`` is for that).
        """
        if _now() >= self.fail_until or not path.startswith(self.fail_prefix):
            return None
        if path.rstrip("/") == WEBSOCKET_PATH and not self.fail_prefix.startswith(WEBSOCKET_PATH):
            return None
        return self.fail_status

    async def wait_unstalled(self) -> None:
        """Return once no stall window is open (at once when none is)."""
        # The window may be extended while we sleep, hence the loop.
        while (until := self.stall_until) > _now():  # noqa: ASYNC110
            await trio.sleep_until(until)
