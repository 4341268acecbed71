"""Under a backlog the bot never exceeds MCHAT_RATE_LIMIT, and never hits a same-sized limiter."""

from __future__ import annotations

import pytest
import trio

from mchat_actors.testing import FakeMattermost
from tests.fakes import FakeChat
from tests.scenarios.harness import replies_to, running_bot, wait_until


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_window_counter():
    assert max_in_any_window([0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert max_in_any_window([0, 1, 2]) == 1


@pytest.mark.slow
async def test_backlog_respects_the_rate_limit_and_gets_no_429(tmp_path):
    """30 questions in 3 channels at once: <= 10 bot requests in every 1-s window, no 429."""
    chat = FakeChat()
    async with FakeMattermost() as mm:
        mm.set_rate_limit(10, burst=1)
        async with running_bot(mm, str(tmp_path / "b.db"), chat=chat, MCHAT_RATE_LIMIT="10",
                               MCHAT_WS_PING_INTERVAL="30") as rt:
            await wait_until(lambda: rt.reconnect_stats.state.mode == "websocket")
            ids = []
            for i in range(10):
                for channel in ("town-square", "quality", "defects"):
                    ids.append((await mm.post_as("kim", channel, f"@ai 질문 {i}"))["id"])
            await wait_until(lambda: all(replies_to(mm, p) for p in ids), timeout=30)
            await trio.sleep(0.2)
    bot = [r for r in mm.request_log if r.user_id == mm.bot.id]
    assert len(bot) >= 30
    assert [r for r in bot if r.status == 429] == []
    assert max_in_any_window([r.time for r in bot]) <= 10
    for pid in ids:
        assert len(replies_to(mm, pid)) == 1
