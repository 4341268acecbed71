from __future__ import annotations

import random
from functools import partial

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from mchat_actors.errors import MattermostAuthError, SupervisionError
from mchat_actors.supervision import RestartPolicy, SupervisorStats, backoff_delay, supervise


@given(st.integers(min_value=1, max_value=200), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_jittered_and_capped(attempt, seed):
    """Full jitter stays within [0, min(cap, base * 2**(n-1))]."""
    d = backoff_delay(attempt, initial_s=1.0, max_s=60.0, rng=random.Random(seed))
    assert 0.0 <= d <= min(60.0, 2.0 ** (attempt - 1))


def test_backoff_ceilings_are_non_decreasing():
    ceilings = [backoff_delay(n, initial_s=1, max_s=60, rng=_Max()) for n in range(1, 12)]
    assert ceilings == sorted(ceilings) and ceilings[-1] == 60 and ceilings[0] == 1


class _Max(random.Random):
    def uniform(self, a, b):
        return b


async def test_crashing_actor_is_restarted_then_finishes(autojump_clock):
    """A child that crashes twice and then returns is restarted twice and supervision ends."""
    calls = []
    stats = SupervisorStats()

    async def child():
        calls.append(trio.current_time())
        if len(calls) < 3:
            raise RuntimeError("boom")

    await supervise("child", child, RestartPolicy(max_restarts=5), stats=stats)
    assert len(calls) == 3 and stats.restarts == {"child": 2}


async def test_restart_intensity_exceeded_stops_with_clear_error(autojump_clock):
    """More crashes than max_restarts within the window raise SupervisionError."""
    async def child():
        raise ValueError("always")

    with pytest.raises(SupervisionError, match="'child' crashed 4 times"):
        await supervise("child", child, RestartPolicy(max_restarts=3, within_s=60))


async def test_slow_crashes_outside_the_window_are_forgiven(autojump_clock):
    """Crashes spread wider than within_s never exceed the intensity."""
    n = 0

    async def child():
        nonlocal n
        n += 1
        if n > 10:
            return
        await trio.sleep(100)
        raise ValueError("rare")

    await supervise("child", child, RestartPolicy(max_restarts=2, within_s=60))
    assert n == 11


async def test_fatal_errors_are_not_retried(autojump_clock):
    calls = 0

    async def child():
        nonlocal calls
        calls += 1
        raise MattermostAuthError("token rejected")

    with pytest.raises(MattermostAuthError):
        await supervise("child", child, RestartPolicy())
    assert calls == 1


async def test_a_fatal_error_inside_an_exception_group_is_not_restarted(autojump_clock):
    """The sender raises MattermostAuthError inside its nursery, so the supervisor sees an
    ExceptionGroup; old code restarted it 5 times and the service exited 4 instead of 3."""
    calls = []

    async def child():
        calls.append(1)
        async with trio.open_nursery() as n:
            async def reject():
                raise MattermostAuthError("401")
            n.start_soon(reject)
            n.start_soon(trio.sleep_forever)

    with pytest.raises(MattermostAuthError):
        await supervise("sender", child, RestartPolicy(max_restarts=5, within_s=60))
    assert calls == [1]


def test_collapse_prefers_the_fatal_leaf_over_other_errors():
    from mchat_actors._groups import collapse_groups
    from mchat_actors.supervision import FATAL

    with pytest.raises(MattermostAuthError):
        with collapse_groups(fatal=FATAL):
            raise ExceptionGroup("x", [RuntimeError("other"),
                                       ExceptionGroup("y", [MattermostAuthError("401")])])


async def test_started_under_nursery_start_once_the_child_first_started(autojump_clock):
    """``nursery.start(supervise, ...)`` returns when the child first reports started; a crash
    before that is restarted (not reported), and a restart after it is not waited for."""


    runs: list[str] = []

    async def child(task_status=trio.TASK_STATUS_IGNORED):
        runs.append("run")
        if len(runs) == 1:
            raise RuntimeError("crash before started")
        task_status.started()
        if len(runs) == 2:
            await trio.sleep(1)
            raise RuntimeError("crash after started")
        await trio.sleep_forever()

    async with trio.open_nursery() as n:
        await n.start(partial(supervise, "child", child, RestartPolicy(backoff_max_s=0.1)))
        assert runs == ["run", "run"]
        await trio.sleep(5)
        assert runs == ["run", "run", "run"]
        n.cancel_scope.cancel()
