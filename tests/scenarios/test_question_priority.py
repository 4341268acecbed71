"""A question's REST reads go ahead of the background mapping of idle channels (issue #12's
scale scenario, small): many channels met at once, a question in the last one is answered
while the others are still being mapped, and the background mapping still finishes."""

from __future__ import annotations

import trio

from mchat_actors.testing import FakeMattermost
from tests.fakes import FakeChat
from tests.scenarios.harness import replies_to, running_bot, wait_until

CHANNELS = 40
RATE = "20"  # requests per second: the 40 channels' mapping (~2 reads each) takes ~4 s


async def test_question_in_the_last_channel_goes_before_background_mapping(tmp_path):
    """40 channels each get a plain post (their mapping, ~80 reads, waits in the 20/s budget),
    then a question in the last one: it is answered while most channels are still unmapped
    (before: its channel's reads queued behind all of them, first come first served)."""
    chat = FakeChat()
    async with FakeMattermost() as mm:
        names = [f"busy-{i:02d}" for i in range(CHANNELS)]
        for name in names:
            await mm.create_channel(name, members=["kim", "lee", mm.bot.id])
        async with running_bot(mm, str(tmp_path / "b.db"), chat=chat, MCHAT_RATE_LIMIT=RATE,
                               MCHAT_WS_PING_INTERVAL="30") as rt:
            await wait_until(lambda: rt.reconnect_stats.state.mode == "websocket")
            # the start-up backfill done (live events wait for it, to keep each channel's order)
            await wait_until(lambda: rt.sweeper.stats.last_sweep_at is not None, timeout=30)
            await wait_until(lambda: rt.bucket.statistics().waiting == 0)
            for name in names:
                await mm.post_as("lee", name, f"{name} 오늘 라인 점검 끝났어요")
            await trio.sleep(0.3)  # the lanes' background reads are queued
            asked_at = trio.current_time()
            question = await mm.post_as("kim", names[-1], "@ai 이 채널 점검 결과 어땠어?")
            await wait_until(lambda: replies_to(mm, str(question["id"])), timeout=20)
            answered_in = trio.current_time() - asked_at
            mapped_when_answered = rt.mapper.stats.rooms_created
            assert mapped_when_answered < CHANNELS * 3 // 4, mapped_when_answered
            assert answered_in < 2.0, answered_in  # ~80 background reads would take ~4 s
            await wait_until(lambda: rt.mapper.stats.rooms_created == CHANNELS, timeout=30)
            by_class = rt.bucket.statistics().acquired_by_priority
    assert by_class["question"] >= 2  # the question's channel and members
    assert len(replies_to(mm, str(question["id"]))) == 1
