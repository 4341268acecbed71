"""Restart policy (OTP one_for_one with a restart intensity) and backoff with full jitter.

``supervise(name, fn, policy)`` runs ``fn()`` and restarts it when it raises, waiting a jittered,
capped backoff between attempts. More than ``policy.max_restarts`` crashes within
``policy.within_s`` seconds raises ``SupervisionError`` (the service then stops with a clear
error instead of spinning). Fatal errors (a rejected token, bad configuration) are never retried,
also when they arrive inside an exception group (raised in a nursery of the actor).
``fn`` returning normally ends supervision (a transient child that finished its work).
Under ``nursery.start`` the supervisor is started once ``fn`` first reports started.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable

import attrs
import trio

from ._groups import first_leaf
from .errors import ConfigError, MattermostAuthError, SupervisionError

logger = logging.getLogger(__name__)

FATAL: tuple[type[BaseException], ...] = (MattermostAuthError, ConfigError)


@attrs.frozen(kw_only=True)
class RestartPolicy:
    max_restarts: int = 5
    within_s: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


def backoff_delay(attempt: int, *, initial_s: float, max_s: float,
                  rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(max_s, initial_s * 2**(attempt-1))] for attempt >= 1."""
    if attempt <= 0:
        return 0.0
    ceiling = min(max_s, initial_s * 2.0 ** min(attempt - 1, 62))
    return (rng or random).uniform(0.0, ceiling)


@attrs.define
class SupervisorStats:
    restarts: dict[str, int] = attrs.Factory(dict)
    last_error: dict[str, str] = attrs.Factory(dict)


async def supervise(
    name: str,
    fn: Callable[[], Awaitable[object]],
    policy: RestartPolicy,
    *,
    stats: SupervisorStats | None = None,
    rng: random.Random | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``fn`` under ``policy``. See the module docstring.

    Started with ``nursery.start``, ``fn`` is started the same way (it takes a
    ``task_status``) and the supervisor reports started when ``fn`` first has: a restart is
    not waited for.

    Raises:
        SupervisionError: restart intensity exceeded (chained to the last crash).
        MattermostAuthError, ConfigError: immediately, never retried.
    """
    crashes: deque[float] = deque()
    reported = task_status is trio.TASK_STATUS_IGNORED
    while True:
        try:
            if reported:
                await fn()
                return
            async with trio.open_nursery() as nursery:
                await nursery.start(fn)
                reported = True
                task_status.started()
            return
        except FATAL:
            raise
        except Exception as exc:  # the supervisor's error boundary: log, count, restart
            fatal = first_leaf(exc, FATAL)  # raised inside the actor's nursery: a group
            if fatal is not None:
                raise fatal from exc
            now = trio.current_time()
            crashes.append(now)
            while crashes and now - crashes[0] > policy.within_s:
                crashes.popleft()
            if stats is not None:
                stats.restarts[name] = stats.restarts.get(name, 0) + 1
                stats.last_error[name] = type(exc).__name__
            if len(crashes) > policy.max_restarts:
                logger.error("supervisor: %s crashed %d times within %g s; stopping",
                             name, len(crashes), policy.within_s)
                raise SupervisionError(name, len(crashes), policy.within_s) from exc
            delay = backoff_delay(len(crashes), initial_s=policy.backoff_initial_s,
                                  max_s=policy.backoff_max_s, rng=rng)
            logger.exception("supervisor: %s crashed; restart %d in %.2f s", name,
                             len(crashes), delay)
            await trio.sleep(delay)
