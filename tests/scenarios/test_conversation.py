"""The service end to end against the fake Mattermost: triggers, threads, DMs, filters."""

from __future__ import annotations

import pytest
import trio

from mchat_actors.errors import MattermostAuthError
from mchat_actors.testing import FakeMattermost
from mchat_actors import app
from tests.fakes import FakeChat, answer_for
from tests.scenarios.harness import bot_config, bot_posts, replies_to, running_bot, wait_until


async def test_mention_gets_exactly_one_threaded_reply(tmp_path):
    """`@ai` in a channel gets one reply whose root is the triggering post."""
    chat = FakeChat()
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db"), chat=chat):
        post = await mm.post_as("kim", "town-square", "@ai 오늘 X부품 불량률 몇 %야?")
        await wait_until(lambda: replies_to(mm, post["id"]))
        await trio.sleep(0.3)
        [reply] = replies_to(mm, post["id"])
        assert reply["root_id"] == post["id"]
        assert answer_for("오늘 X부품 불량률 몇 %야?") in reply["message"]
        assert len(chat.messages) == 1  # the bot's own reply was not stored as a user message


async def test_reply_in_a_thread_uses_the_thread_root(tmp_path):
    chat = FakeChat()
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db"), chat=chat):
        root = await mm.post_as("lee", "quality", "배포 일정 공유합니다")
        ask = await mm.post_as("kim", "quality", "@AI 언제야?", root_id=root["id"])
        await wait_until(lambda: replies_to(mm, ask["id"]))
        assert replies_to(mm, ask["id"])[0]["root_id"] == root["id"]
        assert replies_to(mm, root["id"]) == []


async def test_channel_reply_mode_posts_at_top_level(tmp_path):
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db"), chat=FakeChat(),
                                                   MCHAT_REPLY_MODE="channel"):
        ask = await mm.post_as("kim", "quality", "@ai hello")
        await wait_until(lambda: replies_to(mm, ask["id"]))
        assert replies_to(mm, ask["id"])[0]["root_id"] == ""


async def test_dm_posts_are_answered_and_plain_channel_posts_only_stored(tmp_path):
    chat = FakeChat()
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db"), chat=chat):
        dm = await mm.dm_channel("lee", "mchat-bot")
        plain = await mm.post_as("kim", "town-square", "그냥 잡담")
        asked = await mm.post_as("lee", dm.id, "안녕하세요")
        await wait_until(lambda: replies_to(mm, asked["id"]))
        await wait_until(lambda: plain["id"] in chat.messages)
        assert replies_to(mm, plain["id"]) == []


async def test_commands_with_and_without_mention(tmp_path):
    chat = FakeChat()
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db"), chat=chat):
        a = await mm.post_as("kim", "town-square", "/remember X부품 불량률 12%")
        b = await mm.post_as("kim", "town-square", "@ai /search 불량률")
        await wait_until(lambda: replies_to(mm, a["id"]) and replies_to(mm, b["id"]))
        assert "/remember X부품 불량률 12%" in replies_to(mm, a["id"])[0]["message"]
        assert "/search 불량률" in replies_to(mm, b["id"])[0]["message"]


async def test_bot_name_setting_adds_a_trigger(tmp_path):
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db"), chat=FakeChat(),
                                                   MCHAT_BOT_NAME="품질봇"):
        p = await mm.post_as("kim", "town-square", "@품질봇 도와줘")
        await wait_until(lambda: replies_to(mm, p["id"]))


async def test_chat_failure_gets_one_apology_not_silence(tmp_path):
    """A ChatService that cannot answer (but stores) gives exactly one short apology; the
    post is stored; the service keeps running."""
    chat = FakeChat(fail_answer_rooms={"Town Square"})
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db"), chat=chat) as rt:
        p = await mm.post_as("kim", "town-square", "@ai 질문")
        await wait_until(lambda: replies_to(mm, p["id"]))
        assert "죄송합니다" in replies_to(mm, p["id"])[0]["message"]
        assert p["id"] in chat.messages
        q = await mm.post_as("kim", "quality", "@ai 질문")
        await wait_until(lambda: replies_to(mm, q["id"]))
        assert rt.invoker.stats.failures >= 1


@pytest.mark.slow
async def test_chat_outage_parks_posts_until_they_are_stored_and_answered_once(tmp_path):
    """While the ChatService cannot store anything, posts are parked in the durable retry
    queue (old code recorded them as handled, "chat_failed", and never stored them); when it
    is back every post is stored in order and the question gets one (late) answer."""
    chat = FakeChat(fail_rooms={"Town Square"})
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db"), chat=chat) as rt:
        q = await mm.post_as("kim", "town-square", "@ai 불량률 알려줘")
        plain = [await mm.post_as("lee", "town-square", f"기록 {i}") for i in range(3)]
        other = await mm.post_as("kim", "quality", "@ai 다른 채널")
        await wait_until(lambda: replies_to(mm, other["id"]))  # other channels flow
        await wait_until(lambda: rt.dispatcher_stats.parked >= 4, timeout=15)
        assert q["id"] not in chat.messages and not replies_to(mm, q["id"])
        chat.fail_rooms.clear()
        await wait_until(lambda: replies_to(mm, q["id"]) and all(
            p["id"] in chat.messages for p in plain), timeout=20)
        await trio.sleep(0.5)
        assert len(replies_to(mm, q["id"])) == 1
        assert "죄송합니다" not in replies_to(mm, q["id"])[0]["message"]
        order = [pid for _, pid in chat.calls if pid in {q["id"], *(p["id"] for p in plain)}]
        firsts = list(dict.fromkeys(reversed(order)))[::-1]  # last call of each, in order
        assert firsts == [q["id"], *(p["id"] for p in plain)]


async def test_edits_and_deletes_reach_the_chat_service(tmp_path):
    chat = FakeChat()
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db"), chat=chat):
        p = await mm.post_as("kim", "town-square", "원래 문장")
        await wait_until(lambda: p["id"] in chat.messages)
        await mm.edit_post(p["id"], "고친 문장")
        await mm.delete_post(p["id"])
        await wait_until(lambda: chat.deletes == [p["id"]])
        assert chat.edits == [(p["id"], "고친 문장")]


async def test_sync_off_channel_is_not_stored(tmp_path):
    chat = FakeChat()
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db"), chat=chat) as rt:
        cid = mm.channel("quality").id
        await rt.mapper.channel(cid)
        await rt.mapper.set_sync(cid, False)
        p = await mm.post_as("kim", "quality", "@ai 무시될 질문")
        marker = await mm.post_as("kim", "town-square", "@ai 이건 답해")
        await wait_until(lambda: replies_to(mm, marker["id"]))
        await trio.sleep(0.2)
        assert p["id"] not in chat.messages and replies_to(mm, p["id"]) == []


async def test_rejected_token_is_fatal_with_a_clear_error(tmp_path):
    async with FakeMattermost() as mm:
        config = bot_config(mm, str(tmp_path / "b.db"), MCHAT_TOKEN="wrong-token")
        with pytest.raises(MattermostAuthError):
            await app.run(config, chat=FakeChat())


async def test_mapping_survives_restart(tmp_path):
    """A second run on the same database reuses the rooms and users of the first."""
    chat = FakeChat()
    db = str(tmp_path / "b.db")
    async with FakeMattermost() as mm:
        async with running_bot(mm, db, chat=chat):
            p = await mm.post_as("kim", "town-square", "@ai 하나")
            await wait_until(lambda: replies_to(mm, p["id"]))
        rooms, users = len(chat.rooms), len(chat.users)
        async with running_bot(mm, db, chat=chat):
            q = await mm.post_as("kim", "town-square", "@ai 둘")
            await wait_until(lambda: replies_to(mm, q["id"]))
        assert (len(chat.rooms), len(chat.users)) == (rooms, users)


async def test_auto_join_joins_every_public_channel_of_a_team(tmp_path):
    async with FakeMattermost() as mm:
        await mm.create_channel("new-public", "O", members=["kim"])
        async with running_bot(mm, str(tmp_path / "b.db"), chat=FakeChat(),
                               MCHAT_AUTO_JOIN="qa/*"):
            p = await mm.post_as("kim", "new-public", "@ai 여기도 답해?")
            await wait_until(lambda: replies_to(mm, p["id"]))


@pytest.mark.slow
async def test_a_hung_chat_call_in_one_channel_does_not_delay_others(tmp_path):
    """Town Square's ChatService call hangs 30 s; questions in other channels are answered."""
    chat = FakeChat(hang_rooms={"Town Square": 30.0})
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db"), chat=chat):
        stuck = await mm.post_as("kim", "town-square", "@ai 느린 질문")
        start = trio.current_time()
        others = [await mm.post_as("kim", ch, f"@ai 질문 {ch}") for ch in ("quality", "defects")]
        await wait_until(lambda: all(replies_to(mm, p["id"]) for p in others), timeout=10)
        assert trio.current_time() - start < 10
        assert replies_to(mm, stuck["id"]) == []


async def test_scheduled_summary_is_posted_once_per_period(tmp_path):
    """MCHAT_SUMMARY_EVERY_HOURS posts each talking channel's summary (embedded ChatService)."""
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db"),
                                                   MCHAT_SUMMARY_EVERY_HOURS="0.0006"):
        for text in ("X부품 불량률 12%로 올랐습니다", "공급사 A에 재검사 요청했어요"):
            await mm.post_as("kim", "quality", text)

        def summaries():
            return [p for p in mm.posts("quality") if p["user_id"] == mm.bot.id
                    and str((p.get("props") or {}).get("mchat_reply_key", "")).startswith(
                        "summary:")]

        await wait_until(lambda: summaries(), timeout=15)
        assert "불량률" in summaries()[0]["message"] or "공급사" in summaries()[0]["message"]
        assert [p for p in mm.posts("town-square") if p["user_id"] == mm.bot.id] == []


async def test_a_hung_edit_times_out_and_the_channel_goes_on(tmp_path):
    """Edits go through the invoker's timeout: a hanging edit does not hold the channel."""
    class HangingEdits(FakeChat):
        async def edit_message(self, *, post_id, content):
            await trio.sleep_forever()

    chat = HangingEdits()
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db"), chat=chat,
                                                   CHAT_TIMEOUT="1") as rt:
        p = await mm.post_as("kim", "town-square", "원래 문장")
        await wait_until(lambda: p["id"] in chat.messages)
        await mm.edit_post(p["id"], "고친 문장")
        after = await mm.post_as("kim", "town-square", "@ai 다음 질문")
        await wait_until(lambda: replies_to(mm, after["id"]), timeout=10)
        assert rt.invoker.stats.failures == 1
