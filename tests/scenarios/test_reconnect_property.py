"""Property: whatever the schedule of posts and faults, nothing is lost, duplicated or reordered.

Hypothesis draws a stream of posts over several channels interleaved with faults (clean and
abrupt drops, impossible resumes, refused WebSocket upgrades, REST 5xx windows). The whole
service runs against the fake Mattermost on real sockets, with fast timings on the real clock
(the timing logic itself — backoff, supervision, rate limiting, lanes — has MockClock property
tests of its own). Afterwards: every post is stored exactly once, every trigger has exactly one
reply, and each channel's posts reached the ChatService in creation order.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mchat_actors.testing import FakeMattermost
from tests.fakes import FakeChat
from tests.scenarios.harness import replies_to, running_bot, wait_until

CHANNELS = ("town-square", "quality", "defects")
USERS = ("kim", "lee")

post_step = st.tuples(st.just("post"), st.sampled_from(CHANNELS), st.sampled_from(USERS),
                      st.booleans())
fault_step = st.tuples(st.just("fault"), st.sampled_from(
    ["drop", "drop_abrupt", "forget", "refuse_ws", "fail_5xx", "pause"]))
schedules = st.lists(st.one_of(post_step, post_step, fault_step), min_size=3, max_size=14)


async def apply_fault(mm: FakeMattermost, kind: str) -> None:
    match kind:
        case "drop":
            await mm.drop_websockets(abrupt=False)
        case "drop_abrupt":
            await mm.drop_websockets(abrupt=True)
        case "forget":
            await mm.drop_websockets()
            mm.forget_resume_state()
        case "refuse_ws":
            mm.refuse_websockets(0.6)
            await mm.drop_websockets()
        case "fail_5xx":
            mm.fail_requests(0.5, status=503)
        case "pause":
            await trio.sleep(0.2)


async def run_schedule(schedule, db_path: str) -> None:
    chat = FakeChat()
    posted: list[dict] = []
    triggers: list[str] = []
    async with FakeMattermost() as mm, running_bot(mm, db_path, chat=chat) as rt:
        await wait_until(lambda: rt.reconnect_stats.state.mode == "websocket")
        for step in schedule:
            if step[0] == "post":
                _, channel, user, trigger = step
                n = len(posted)
                text = f"@ai 질문 {n}" if trigger else f"메모 {n}"
                post = await mm.post_as(user, channel, text)
                posted.append(post)
                if trigger:
                    triggers.append(post["id"])
            else:
                await apply_fault(mm, step[1])
        await wait_until(lambda: all(p["id"] in chat.messages for p in posted)
                         and all(replies_to(mm, t) for t in triggers), timeout=40)
        await trio.sleep(0.5)  # let any duplicate show itself
        for pid in triggers:
            assert len(replies_to(mm, pid)) == 1, f"{pid}: {len(replies_to(mm, pid))} replies"
        calls = [pid for _, pid in chat.calls]
        for p in posted:
            assert calls.count(p["id"]) == 1, f"{p['id']} reached the ChatService {calls.count(p['id'])} times"
        for channel in CHANNELS:
            cid = mm.channel(channel).id
            expected = [p["id"] for p in posted if p["channel_id"] == cid]
            assert [pid for pid in calls if pid in set(expected)] == expected, channel


@pytest.mark.slow
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(schedule=schedules)
def test_no_loss_no_duplicate_no_reorder_under_faults(schedule):
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(run_schedule, schedule, str(Path(tmp) / "bot.db"))
