"""Two bot accounts that both answer ``@ai`` in one channel: the conversation stays bounded.

``otherbot`` is a second bot account (its posts carry ``props.from_bot``) scripted by the test:
it answers every post that mentions ``@ai`` or comes from our bot with ``@ai ...`` of its own,
so without guards the two would answer each other forever.
"""

from __future__ import annotations

import httpx
import pytest
import trio

from mchat_actors.testing import FakeMattermost
from mchat_actors.testing.seed import default_seed
from tests.scenarios.harness import bot_posts, running_bot, wait_until


def two_bot_seed() -> dict:
    seed = default_seed()
    seed["users"].append({"username": "otherbot", "email": "otherbot@example.com",
                          "is_bot": True})
    return seed


def script_other_bot(mm: FakeMattermost, limit: int = 200) -> list[str]:
    """otherbot answers @ai mentions and every post of our bot, in the same channel."""
    other = mm.user("otherbot")
    said: list[str] = []

    async def answer(created) -> None:
        post = created.post
        if post["user_id"] == other.id or len(said) >= limit:
            return
        text = str(post["message"])
        if "@ai" in text.lower() or post["user_id"] == mm.bot.id:
            said.append(str(post["id"]))
            await mm.post_as("otherbot", created.channel.name, f"@ai 제 생각은요: {text[:40]}")

    mm.add_post_listener(answer)
    return said


def other_posts(mm: FakeMattermost, channel: str) -> list:
    other = mm.user("otherbot").id
    return [p for p in mm.posts(channel) if p["user_id"] == other]


async def settle(count, quiet_s: float = 1.0, timeout: float = 20.0) -> int:
    """Wait until ``count()`` stops changing for ``quiet_s``; return it."""
    with trio.fail_after(timeout):
        last = count()
        while True:
            await trio.sleep(quiet_s)
            now = count()
            if now == last:
                return now
            last = now


async def test_another_bot_is_stored_but_never_answered(tmp_path):
    async with FakeMattermost(seed=two_bot_seed()) as mm:
        said = script_other_bot(mm)
        async with running_bot(mm, str(tmp_path / "bot.db"), MCHAT_ADMIN_TOKEN="adm-1") as rt:
            await wait_until(lambda: rt.reconnect_stats.state.mode == "websocket")
            await mm.post_as("kim", "town-square", "@ai 안녕하세요, 오늘 회의 몇 시죠?")
            mine = await settle(lambda: len(bot_posts(mm, "town-square")))
            theirs = len(other_posts(mm, "town-square"))
            assert mine == 1  # kim's question only; otherbot's @ai posts get no answer
            assert theirs == 2  # one to kim, one to our answer; then silence
            assert len(said) == 2
            await wait_until(lambda: rt.handler.stats.posts["bot_not_answered"] == 2)
            # stored all the same: every otherbot post is a chat message
            async with httpx.AsyncClient() as http:
                status = (await http.get(rt.http_url + "/api/v1/mchat/status",
                                         headers={"Authorization": "Bearer adm-1"})).json()
                metrics = (await http.get(rt.http_url + "/metrics")).text
            assert status["safety"]["loop_guard"]["bot_posts_unanswered"] == 2
            assert "mchat_loop_guard_bot_posts_unanswered_total 2.0" in metrics
            stored = rt.store.db.execute(
                "SELECT count(*) FROM mchat_posts WHERE status = 'bot_not_answered'").fetchone()
            assert stored[0] == 2


async def test_an_allowed_bot_loop_is_cut_by_the_per_channel_cap(tmp_path):
    async with FakeMattermost(seed=two_bot_seed()) as mm:
        script_other_bot(mm)
        async with running_bot(mm, str(tmp_path / "bot.db"), MCHAT_ANSWER_BOTS="@OtherBot",
                               MCHAT_MAX_ANSWERS_PER_MIN="4", MCHAT_ADMIN_TOKEN="adm-1") as rt:
            await wait_until(lambda: rt.reconnect_stats.state.mode == "websocket")
            await mm.post_as("kim", "town-square", "@ai 시작해 볼까요?")
            mine = await settle(lambda: len(bot_posts(mm, "town-square")))
            theirs = len(other_posts(mm, "town-square"))
            assert mine == 4  # the cap, not forever
            assert theirs == 5  # kim's post + each of our 4 answers
            # otherbot's 5 posts + kim's: 4 answered, the other 2 stored and capped
            guard = rt.handler.guard
            assert guard is not None and guard.stats.total_capped() == 2
            channel = mm.channel("town-square").id
            assert guard.stats.capped[channel] == 2
            async with httpx.AsyncClient() as http:
                status = (await http.get(rt.http_url + "/api/v1/mchat/status",
                                         headers={"Authorization": "Bearer adm-1"})).json()
            assert status["safety"]["loop_guard"]["answers_capped_by_channel"] == {channel: 2}
            # other channels are not affected by this channel's cap
            post = await mm.post_as("kim", "quality", "@ai 여기도 답해 주세요")
            await wait_until(lambda: any(p.get("root_id") == post["id"]
                                         for p in bot_posts(mm, "quality")))


@pytest.mark.slow
async def test_two_of_our_bots_in_one_channel_answer_a_person_once_each(tmp_path):
    """Two mchat-actors services on two bot accounts, both answering @ai in town-square: each
    answers the person once; neither answers the other (marker + from_bot), however long."""
    seed = default_seed()
    seed["users"].append({"username": "bot-two", "is_bot": True, "token": "tok-bot-two-1"})
    async with FakeMattermost(seed=seed) as mm:
        two = mm.user("bot-two")
        async with running_bot(mm, str(tmp_path / "one.db")) as one_rt, running_bot(
                mm, str(tmp_path / "two.db"), MCHAT_TOKEN="tok-bot-two-1") as two_rt:
            for rt in (one_rt, two_rt):
                await wait_until(lambda rt=rt: rt.reconnect_stats.state.mode == "websocket")
            await mm.post_as("kim", "town-square", "@ai 둘 다 대답해 줄 수 있어?")
            total = await settle(lambda: len(mm.posts("town-square")), quiet_s=1.5)
        by_one = [p for p in mm.posts("town-square") if p["user_id"] == mm.bot.id]
        by_two = [p for p in mm.posts("town-square") if p["user_id"] == two.id]
    assert len(by_one) == 1 and len(by_two) == 1
    assert total == 2 + sum(1 for p in mm.posts("town-square")
                            if p["user_id"] not in (mm.bot.id, two.id))
