"""The loop guard's rules: automated authors by name, the per-channel sliding window."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mchat_actors.config import Config
from mchat_actors.loopguard import WINDOW_S, LoopGuard
from mchat_actors.messages import ChannelId, MattermostUserId, Post, PostId


def post(**kw) -> Post:
    return Post(id=PostId("p1"), channel_id=ChannelId("c1"), user_id=MattermostUserId("u1"),
                message="@ai hi", **kw)


def test_automated_posts_are_bots_and_webhooks():
    assert not LoopGuard.is_automated(post())
    assert LoopGuard.is_automated(post(from_bot=True))
    assert LoopGuard.is_automated(post(from_webhook=True))


def test_only_named_bots_are_answered_and_refusals_are_counted():
    guard = LoopGuard.create(("@CI-Bot", "helper"), 5)
    assert guard.bot_allowed("ci-bot") and guard.bot_allowed("@Helper")
    assert not guard.bot_allowed("otherbot") and not guard.bot_allowed(None)
    assert guard.stats.bot_posts_unanswered == 2


def test_the_cap_is_per_channel_and_slides():
    guard = LoopGuard.create((), 3)
    assert [guard.take("a", t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert guard.take("b", 3)  # another channel is independent
    assert not guard.take("a", WINDOW_S - 0.01)
    assert guard.take("a", WINDOW_S)  # the answer at t=0 left the window
    assert guard.stats.capped == {"a": 2}


@given(st.lists(st.floats(min_value=0, max_value=600, allow_nan=False), max_size=200),
       st.integers(min_value=1, max_value=10))
def test_no_window_of_60_s_holds_more_answers_than_the_cap(times, cap):
    guard = LoopGuard.create((), cap)
    granted = [t for t in sorted(times) if guard.take("c", t)]
    for i, start in enumerate(granted):
        inside = [t for t in granted[i:] if t - start < WINDOW_S]
        assert len(inside) <= cap
    assert len(granted) + guard.stats.total_capped() == len(times)


def test_config_reads_answer_bots_and_the_cap():
    cfg = Config.from_env({"MCHAT_URL": "http://x", "MCHAT_TOKEN": "t",
                           "MCHAT_ANSWER_BOTS": "@CI-Bot, helper", "MCHAT_MAX_ANSWERS_PER_MIN": "7"})
    assert cfg.mattermost.answer_bots == ("ci-bot", "helper")
    assert cfg.mattermost.max_answers_per_min == 7
