"""Both remote backends end to end: the whole service (``app.run``) between the fake Mattermost
and the AI Memory Agent twin, over real sockets. Remember then ask, search, forget, a 429 with
Retry-After, and a process killed while the agent holds a request, then started again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from mchat_actors.testing import FakeMattermost
from mchat_actors.testing.fake_agent_api import FakeAgentAPI, Fault
from mchat_actors.testing.fake_agent_state import AI_USER_ID, AgentWorld
from tests.scenarios.harness import bot_posts, replies_to, running_bot, wait_until

KEY = "agent-key-e2e-SECRET"
BOT_EMAIL, BOT_PASSWORD = "mchat-bot@agent.example", "bot-pw-SECRET"
MODES = ("remote", "agent-chat")


def backend_env(mode: str, fake: FakeAgentAPI) -> dict[str, str]:
    if mode == "remote":
        return {"CHAT_BACKEND": "remote", "CHAT_BACKEND_URL": fake.url,
                "CHAT_BACKEND_API_KEY": KEY, "CHAT_BACKEND_AGENT_ID": "agent-1"}
    return {"CHAT_BACKEND": "agent-chat", "CHAT_BACKEND_URL": fake.url,
            "CHAT_AGENT_SERVICE_EMAIL": BOT_EMAIL, "CHAT_AGENT_SERVICE_PASSWORD": BOT_PASSWORD}


@asynccontextmanager
async def twin() -> AsyncIterator[FakeAgentAPI]:
    world = AgentWorld()
    world.add_user("mchat bot", BOT_EMAIL, password=BOT_PASSWORD)
    async with FakeAgentAPI(api_key=KEY, world=world) as fake:
        yield fake


async def ask(mm: FakeMattermost, user: str, text: str, channel: str = "quality",
              ) -> str:
    post = await mm.post_as(user, channel, text)
    await wait_until(lambda: replies_to(mm, str(post["id"])), timeout=15)
    [reply] = replies_to(mm, str(post["id"]))
    return str(reply["message"])


def agent_texts(fake: FakeAgentAPI) -> list[str]:
    """What reached the agent: memory items (remote) or user messages (agent-chat)."""
    return ([d.content for d in fake.world.data]
            + [m.content for m in fake.world.messages if m.user_id != AI_USER_ID])


@pytest.mark.parametrize("mode", MODES)
async def test_remember_then_ask_search_and_forget(tmp_path: Any, mode: str) -> None:
    async with twin() as fake, FakeMattermost() as mm, \
            running_bot(mm, str(tmp_path / "b.db"), **backend_env(mode, fake)):
        saved = await ask(mm, "kim", "@ai /remember X부품 불량률 12%")
        assert "X부품 불량률 12%" in saved
        answer = await ask(mm, "lee", "@ai 요즘 X부품 불량 얼마나 나와?")
        assert "12%" in answer
        # /search in a channel is for the asker only: by DM here (the fake's bot may not
        # post ephemerally), with a one-line note in the thread
        dm = await mm.dm_channel("lee", "mchat-bot")
        search = await mm.post_as("lee", "quality", "@ai /search 불량률")
        await wait_until(lambda: any("X부품 불량률 12%" in p["message"]
                                     for p in mm.posts(dm.id) if p["user_id"] == mm.bot.id),
                         timeout=15)
        def in_thread() -> list[str]:
            return [p["message"] for p in mm.posts("quality") if p["user_id"] == mm.bot.id
                    and p.get("root_id") == search["id"]]
        await wait_until(in_thread, timeout=15)
        assert not any("12%" in m for m in in_thread())
        gone = await ask(mm, "kim", "@ai /forget X부품 불량률")
        assert "삭제" in gone
        assert fake.world.memories == {}
        after = await ask(mm, "lee", "@ai X부품 불량률 몇 %야?")
        assert "12%" not in after


@pytest.mark.parametrize("mode", MODES)
async def test_other_channels_do_not_see_the_memory(tmp_path: Any, mode: str) -> None:
    async with twin() as fake, FakeMattermost() as mm, \
            running_bot(mm, str(tmp_path / "b.db"), **backend_env(mode, fake)):
        # a private channel's memory (a public one's is team-wide since #8's audience rules)
        await ask(mm, "kim", "@ai /remember 신제품 출시일은 3월 2일", channel="defects")
        elsewhere = await ask(mm, "kim", "@ai 신제품 출시일이 언제였지?", channel="town-square")
        assert "3월 2일" not in elsewhere


@pytest.mark.parametrize("mode", MODES)
async def test_a_429_with_retry_after_is_waited_out(tmp_path: Any, mode: str) -> None:
    async with twin() as fake, FakeMattermost() as mm, \
            running_bot(mm, str(tmp_path / "b.db"), **backend_env(mode, fake)):
        fake.script(Fault(status=429, retry_after_s=1,
                          path="/memories/search" if mode == "remote" else "/messages"))
        start = trio.current_time()
        answer = await ask(mm, "lee", "@ai X부품 불량률 몇 %야?")
        assert trio.current_time() - start >= 1.0
        assert "죄송" not in answer
    assert [r.status for r in fake.requests].count(429) == 1


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
async def test_killed_while_the_agent_holds_a_request_then_restarted(tmp_path: Any,
                                                                     mode: str) -> None:
    """The agent applies /remember but its answer never arrives: the process dies. After a
    start the post comes back with the backfill; it is applied once and answered once."""
    db = str(tmp_path / "b.db")
    path = "/data" if mode == "remote" else "/messages"
    async with twin() as fake, FakeMattermost() as mm:
        fake.script(Fault(status=200, after=True, delay_s=3600, path=path))
        with trio.CancelScope() as crash:
            async with running_bot(mm, db, **backend_env(mode, fake)):
                post = await mm.post_as("kim", "quality", "@ai /remember 설비 점검은 목요일")
                await wait_until(lambda: any("설비 점검은 목요일" in t for t in agent_texts(fake)),
                                 timeout=15)
                crash.cancel()
        assert replies_to(mm, str(post["id"])) == []
        async with running_bot(mm, db, **backend_env(mode, fake)):
            await wait_until(lambda: replies_to(mm, str(post["id"])), timeout=15)
            answer = await ask(mm, "lee", "@ai 설비 점검 무슨 요일이야?")
        [reply] = replies_to(mm, str(post["id"]))
        assert "설비 점검은 목요일" in str(reply["message"])
        assert "목요일" in answer
        assert agent_texts(fake).count("설비 점검은 목요일" if mode == "remote"
                                       else "/remember 설비 점검은 목요일") == 1
        assert len(fake.world.memories) == 1
        assert not any("죄송" in str(p["message"]) for p in bot_posts(mm))


async def test_remote_plain_posts_join_the_runtimes_request_and_never_reach_the_agent(
        tmp_path: Any) -> None:
    """With the remote backend a plain post is stored only in the local store, which shares the
    runtime's: a lane's plain posts are stored in ONE request with their seen marks and cursor
    (a batch), every one of them lands in ``chat_messages`` once, none reaches the agent, and a
    question among them is still answered by the agent, in order after them."""
    import sqlite3

    async with twin() as fake, FakeMattermost() as mm, \
            running_bot(mm, str(tmp_path / "b.db"), **backend_env("remote", fake)) as rt:
        await ask(mm, "kim", "@ai /remember X부품 불량률 12%")
        texts = [f"평범한 대화 {i}번째" for i in range(40)]
        for text in texts:
            await mm.post_as("lee", "quality", text)
        answer = await ask(mm, "lee", "@ai X부품 불량률 얼마야?")
        assert "12%" in answer
        await wait_until(lambda: rt.dispatcher_stats.batched_posts >= len(texts), timeout=15)
        assert rt.dispatcher_stats.batches >= 1
        conn = sqlite3.connect(str(tmp_path / "b.db"))
        try:
            rows = [r[0] for r in conn.execute(
                "SELECT content FROM chat_messages WHERE content LIKE '평범한 대화%'"
                " ORDER BY id")]
        finally:
            conn.close()
        assert rows == texts  # each once, in order
        assert not any("평범한 대화" in t for t in agent_texts(fake))
