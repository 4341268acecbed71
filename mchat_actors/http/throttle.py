"""Failed authentications are counted and throttled per source address.

Every refused admin bearer token, outgoing-webhook token or slash-command token counts against
the caller's address. After ``max_failures`` failures within ``window_s`` the address gets 429
(``Retry-After``) for every authenticated route until its failures leave the window, even with
a right token: guessing a token is slow, and the flood is visible (``mchat_auth_failures_total``,
``mchat_auth_throttled_total``, the status API). A successful authentication clears its
address. At most ``max_addresses`` addresses are tracked (the stalest dropped first).
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict, deque

import attrs
import trio

from .errors import ApiError


@attrs.define
class AuthThrottle:
    max_failures: int = 20
    window_s: float = 60.0
    max_addresses: int = 4096
    failures: Counter[str] = attrs.Factory(Counter)  # by kind: admin, outgoing, slash, metrics
    throttled: Counter[str] = attrs.Factory(Counter)
    _recent: OrderedDict[str, deque[float]] = attrs.Factory(OrderedDict)

    def check(self, address: str, kind: str) -> None:
        """Raise 429 when ``address`` is throttled (counted)."""
        window = self._window(address, trio.current_time())
        if window is not None and len(window) >= self.max_failures:
            self.throttled[kind] += 1
            retry = max(1, math.ceil(window[0] + self.window_s - trio.current_time()))
            raise ApiError(429, "too many failed authentications",
                           "this address is blocked for a while after repeated bad tokens",
                           {"Retry-After": str(retry)})

    def failed(self, address: str, kind: str) -> None:
        self.failures[kind] += 1
        now = trio.current_time()
        window = self._window(address, now)
        if window is None:
            window = self._recent[address] = deque()
            while len(self._recent) > self.max_addresses:
                self._recent.popitem(last=False)
        window.append(now)
        self._recent.move_to_end(address)

    def succeeded(self, address: str) -> None:
        self._recent.pop(address, None)

    def blocked_addresses(self) -> int:
        now = trio.current_time()
        return sum(1 for a in list(self._recent)
                   if len(self._window(a, now) or ()) >= self.max_failures)

    def _window(self, address: str, now: float) -> deque[float] | None:
        window = self._recent.get(address)
        if window is None:
            return None
        while window and now - window[0] >= self.window_s:
            window.popleft()
        if not window:
            del self._recent[address]
            return None
        return window
