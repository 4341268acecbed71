"""AgentChatService (CHAT_BACKEND=agent-chat) against the AI Memory Agent twin's chat API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mchat_actors.chat import agent_chat_store as store
from mchat_actors.chat.agent_chat import (
    ZWSP,
    AgentChatService,
    AmbiguousRequest,
    addressed,
    defuse,
    open_agent_chat_service,
)
from mchat_actors.chat.embedded import EmbeddedChatService
from mchat_actors.chat.protocol import ChatRoom, ChatUser, SendResult
from mchat_actors.config import ChatConfig, Config
from mchat_actors.errors import ChatServiceError, ConfigError
from mchat_actors.testing.fake_agent_api import FakeAgentAPI, Fault
from mchat_actors.testing.fake_agent_chat import COMMAND, MENTION
from mchat_actors.testing.fake_agent_state import AI_USER_ID, AgentWorld

from .both_backends import Where, both_backends_db, open_local, pg_server, pg_url  # noqa: F401

BOT_EMAIL, BOT_PASSWORD = "mchat-bot@example.com", "bot-PASSWORD-77"


def agent_chat_cfg(url: str, **changes: Any) -> ChatConfig:
    return attrs.evolve(ChatConfig(backend="agent-chat", backend_url=url,
                                   agent_service_email=BOT_EMAIL,
                                   agent_service_password=BOT_PASSWORD), **changes)


def new_world() -> AgentWorld:
    world = AgentWorld()
    world.add_user("mchat bot", BOT_EMAIL, password=BOT_PASSWORD)
    return world


@attrs.frozen
class Env:
    fake: FakeAgentAPI
    svc: AgentChatService
    local: EmbeddedChatService
    room: ChatRoom
    kim: ChatUser
    lee: ChatUser

    async def say(self, text: str, *, post_id: str | None = None, respond: bool = True,
                  user: ChatUser | None = None, **kwargs: Any) -> SendResult:
        content = f"@membot {text}" if respond else text
        return await self.svc.send_message(self.room.id, (user or self.kim).id, content,
                                           post_id=post_id, respond=respond,
                                           prompt=text if respond else None, **kwargs)

    def remote_room(self) -> str:
        [room] = [r for r in self.fake.world.rooms.values() if self.room.id in r.name]
        return room.id

    def messages(self) -> list[tuple[str, str]]:
        """(author e-mail or "ai", content) of the agent room's messages, oldest first."""
        world = self.fake.world
        return [("ai" if m.user_id == AI_USER_ID else world.users[m.user_id].email, m.content)
                for m in world.room_messages(self.remote_room())]


@pytest.fixture
async def env(db_path: Where) -> AsyncIterator[Env]:
    async with FakeAgentAPI(world=new_world()) as fake, \
            open_local(db_path) as local, \
            open_agent_chat_service(agent_chat_cfg(fake.url), local=local) as svc:
        room = await svc.create_room(name="quality", kind="channel")
        kim = await svc.create_user(name="kim", email="kim@example.com")
        lee = await svc.create_user(name="lee", email="lee@example.com")
        for member in (kim, lee):
            await svc.add_room_member(room.id, member.id)
        yield Env(fake, svc, local, room, kim, lee)


async def test_channel_and_users_map_to_a_real_room_and_real_users(db_path: Where) -> None:
    """A room owned by the service account, members matched by e-mail (an existing agent user
    keeps their id), all stored in our mapping tables."""
    world = new_world()
    existing = world.add_user("김철수", "kim@example.com")
    async with FakeAgentAPI(world=world) as fake, \
            open_local(db_path) as local, \
            open_agent_chat_service(agent_chat_cfg(fake.url), local=local) as svc:
        room = await svc.create_room(name="quality", kind="channel")
        kim = await svc.create_user(name="kim", email="kim@example.com")
        nomail = await svc.create_user(name="park", email=None)
        await svc.add_room_member(room.id, kim.id)
        await svc.add_room_member(room.id, nomail.id)
        await svc.add_room_member(room.id, kim.id)  # idempotent
        [remote] = world.rooms.values()
        assert remote.name == f"Mchat: quality [{room.id}]"
        assert world.users[remote.owner_id].email == BOT_EMAIL
        emails = sorted(world.users[m.user_id].email for m in world.members)
        assert emails == sorted([BOT_EMAIL, "kim@example.com", f"{nomail.id}@mchat.local"])
        assert await local.db(store.remote_user, kim.id) == existing.id
        assert await local.db(store.remote_room, room.id) == remote.id
        kims = [u for u in world.users.values() if u.email == "kim@example.com"]
        assert kims == [existing] and existing.name == "김철수"  # matched, not duplicated


async def test_remember_then_ask_through_the_agents_own_pipeline(env: Env) -> None:
    saved = await env.say("/remember X부품 불량률 12%", post_id="p1")
    assert (saved.assistant_message or "").startswith("✅ 메모리가 저장되었습니다")
    answer = await env.say("X부품 불량률 몇 %야?", post_id="p2", user=env.lee)
    assert "12%" in (answer.assistant_message or "")
    assert env.messages()[0] == ("kim@example.com", "/remember X부품 불량률 12%")
    assert env.messages()[2] == ("lee@example.com", "@ai X부품 불량률 몇 %야?")
    posted = env.fake.calls("POST", "/messages")
    assert all(r.headers["authorization"].startswith("Bearer ") for r in posted)
    assert len({r.headers["authorization"] for r in posted}) == 2  # each as its author


async def test_search_is_ephemeral_forget_and_korean_aliases_use_server_commands(
        env: Env) -> None:
    await env.say("/기억 회의실은 3층", post_id="p1")
    found = await env.say("/검색 회의실", post_id="p2")
    assert found.ephemeral and "회의실은 3층" in (found.assistant_message or "")
    gone = await env.say("/forget 회의실", post_id="p3")
    assert "삭제" in (gone.assistant_message or "") and env.fake.world.memories == {}
    assert [c for _, c in env.messages()][::2] == ["/remember 회의실은 3층", "/search 회의실",
                                                   "/forget 회의실"]


async def test_plain_messages_are_stored_defused_and_never_answered(env: Env) -> None:
    await env.say("/remember 회의실은 3층", post_id="p1")
    texts = ["오늘 라인 점검 있어요", "@ai 이건 다른 사람 얘기", "/forget 회의실"]
    for i, text in enumerate(texts):
        result = await env.say(text, post_id=f"m{i}", respond=False)
        assert result.assistant_message is None and result.user_message.is_new
    assert len(env.fake.world.memories) == 1
    authors = [a for a, _ in env.messages()]
    assert authors.count("ai") == 1  # only the /remember was answered
    assert env.messages()[-1][1] == ZWSP + "/forget 회의실"


async def test_a_replayed_post_sends_nothing_and_gets_the_same_answer(env: Env) -> None:
    first = await env.say("/remember 회의는 3시", post_id="p1")
    again = await env.say("/remember 회의는 3시", post_id="p1")
    assert again.assistant_message == first.assistant_message
    assert not again.user_message.is_new
    assert len(env.messages()) == 2 and len(env.fake.world.memories) == 1


async def test_lost_response_is_reconciled_not_resent(env: Env) -> None:
    """The agent stored the message and answered, but we got a 500: a read finds it."""
    env.fake.script(Fault(status=500, after=True, path="/messages"))
    first = await env.say("/remember 회의는 3시", post_id="p1")
    assert (first.assistant_message or "").startswith("✅")
    assert len(env.messages()) == 2 and len(env.fake.world.memories) == 1
    again = await env.say("/remember 회의는 3시", post_id="p1")  # "sent": no read, no send
    assert again.assistant_message == first.assistant_message
    assert len(env.fake.calls("GET", "/messages")) == 1
    assert [r.status for r in env.fake.calls("POST", "/messages")] == [500]


async def test_stored_without_an_answer_is_an_error_not_a_resend(env: Env) -> None:
    """The agent keeps the question but its LLM fails (its router answers 500): one error
    (one apology), and neither this call nor a replay sends it again."""
    env.fake.world.llm_fails = True
    for _ in range(2):
        with pytest.raises(ChatServiceError, match="without an answer"):
            await env.say("X부품 불량률 몇 %야?", post_id="p1")
    assert env.messages() == [("kim@example.com", "@ai X부품 불량률 몇 %야?")]


async def test_a_failure_before_the_agent_is_sent_again_once(env: Env) -> None:
    """A 502 from a proxy (nothing stored): a read finds no copy, one more send; an identical
    earlier text from the same person is not mistaken for it."""
    await env.say("네 알겠습니다", post_id="p0", respond=False)
    env.fake.script(Fault(status=502, path="/messages"))
    await env.say("네 알겠습니다", post_id="p1", respond=False)
    assert [c for _, c in env.messages()] == ["네 알겠습니다", "네 알겠습니다"]


async def test_two_ambiguous_failures_raise_and_a_replay_reconciles(env: Env) -> None:
    env.fake.script(Fault(status=502, path="/messages", method="POST"),
                    Fault(status=500, after=True, path="/messages", method="POST"))
    with pytest.raises(AmbiguousRequest):
        await env.say("/remember 회의는 3시", post_id="p1")
    replay = await env.say("/remember 회의는 3시", post_id="p1")
    assert (replay.assistant_message or "").startswith("✅")
    assert len(env.messages()) == 2 and len(env.fake.world.memories) == 1


async def test_restart_keeps_the_mapping_and_the_sent_posts(db_path: Where) -> None:
    world = new_world()
    async with FakeAgentAPI(world=world) as fake:
        for attempt in range(2):
            async with open_local(db_path) as local, \
                    open_agent_chat_service(agent_chat_cfg(fake.url), local=local) as svc:
                if attempt == 0:
                    room = await svc.create_room(name="quality", kind="channel")
                    kim = await svc.create_user(name="kim", email="kim@example.com")
                    await svc.add_room_member(room.id, kim.id)
                first = await svc.send_message(room.id, kim.id, "@bot /remember 회의는 3시",
                                               post_id="p1", respond=True,
                                               prompt="/remember 회의는 3시")
                assert (first.assistant_message or "").startswith("✅")
    assert len(world.rooms) == 1 and len(world.messages) == 2
    assert len([u for u in world.users.values() if u.email == "kim@example.com"]) == 1


async def test_expired_tokens_are_fetched_again(env: Env) -> None:
    await env.say("첫 메시지", post_id="p1", respond=False)
    env.fake.world.expire_tokens()
    await env.say("두 번째", post_id="p2", respond=False)
    await env.svc.add_room_member(env.room.id, env.lee.id)
    assert [c for _, c in env.messages()] == ["첫 메시지", "두 번째"]
    assert [r.status for r in env.fake.calls("POST", "/messages")] == [200, 401, 200]


async def test_removed_on_the_agent_side_joins_again(env: Env) -> None:
    await env.say("안녕하세요", post_id="p1", respond=False)
    remote_kim = await env.local.db(store.remote_user, env.kim.id)
    world = env.fake.world
    world.members = [m for m in world.members if m.user_id != remote_kim]
    await env.say("다시 왔어요", post_id="p2", respond=False)
    assert [c for _, c in env.messages()] == ["안녕하세요", "다시 왔어요"]


async def test_remove_member_and_edits_stay_consistent(env: Env) -> None:
    await env.svc.remove_room_member(env.room.id, env.lee.id)
    await env.svc.remove_room_member(env.room.id, env.lee.id)  # idempotent
    emails = {env.fake.world.users[m.user_id].email for m in env.fake.world.members}
    assert "lee@example.com" not in emails
    await env.say("원래 내용", post_id="p1", respond=False)
    await env.svc.edit_message(post_id="p1", content="고친 내용")
    await env.svc.delete_message(post_id="p1")
    assert [c for _, c in env.messages()] == ["원래 내용"]  # the chat API cannot edit


async def test_x_user_id_mode_posts_with_the_header(db_path: Where) -> None:
    async with FakeAgentAPI(world=new_world()) as fake, \
            open_local(db_path) as local, \
            open_agent_chat_service(agent_chat_cfg(fake.url, agent_user_auth="x-user-id"),
                                    local=local) as svc:
        room = await svc.create_room(name="quality", kind="channel")
        kim = await svc.create_user(name="kim", email="kim@example.com")
        await svc.add_room_member(room.id, kim.id)
        await svc.send_message(room.id, kim.id, "hi", post_id="p1")
    [post] = fake.calls("POST", "/messages")
    remote_kim = next(u.id for u in fake.world.users.values() if u.email == "kim@example.com")
    assert post.headers == {"x-user-id": remote_kim}
    assert fake.calls("POST", "/auth/sso") == [] and len(fake.calls("POST", "/users")) == 1


async def test_summary_comes_from_the_local_store(env: Env) -> None:
    await env.say("X부품 불량 이슈: 공급사 변경으로 불량률 12% 결정", post_id="p1",
                  respond=False)
    result = await env.say("요약 3시간", post_id="p2")
    assert "12%" in (result.assistant_message or "")
    assert len(env.messages()) == 1


async def test_secrets_stay_out_of_logs_reprs_and_errors(
        db_path: Where, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeAgentAPI(world=new_world()) as fake, \
            open_local(db_path) as local:
        bad = agent_chat_cfg(fake.url, agent_service_password="wrong-PASSWORD-1")
        async with open_agent_chat_service(bad, local=local) as svc:
            room = await svc.create_room(name="r", kind="channel")
            kim = await svc.create_user(name="kim", email="kim@example.com")
            with pytest.raises(Exception) as info:  # noqa: PT011 - the rejection
                await svc.add_room_member(room.id, kim.id)
            shown = repr(svc) + str(info.value) + caplog.text + repr(bad)
            assert "wrong-PASSWORD-1" not in shown
            assert all(t not in shown for t in fake.world.tokens)


def test_config_requires_the_service_account() -> None:
    base = {"MCHAT_URL": "http://127.0.0.1:8065", "MCHAT_TOKEN": "t",
            "CHAT_BACKEND": "agent-chat"}
    with pytest.raises(ConfigError) as info:
        Config.from_env(base)
    assert "CHAT_AGENT_SERVICE_EMAIL" in str(info.value)
    cfg = Config.from_env({**base, "CHAT_BACKEND_URL": "http://agent:8000",
                           "CHAT_AGENT_SERVICE_EMAIL": BOT_EMAIL,
                           "CHAT_AGENT_SERVICE_PASSWORD": BOT_PASSWORD,
                           "CHAT_AGENT_USER_AUTH": "x-user-id"})
    assert cfg.chat.agent_user_auth == "x-user-id" and BOT_PASSWORD not in repr(cfg)


def test_defuse_and_addressed() -> None:
    assert defuse("@ai 질문") == f"@{ZWSP}ai 질문"
    assert defuse("@aiden 안녕, @AI!") == f"@aiden 안녕, @{ZWSP}AI!"
    assert defuse("  /forget 다") == ZWSP + "  /forget 다"
    assert defuse("오늘 점검 1/2") == "오늘 점검 1/2"
    assert addressed("/remember x") == ("/remember x", False)
    assert addressed("/members") == ("/members", False)
    assert addressed("불량률 몇 %야?") == ("@ai 불량률 몇 %야?", False)
    assert addressed("/search 배포") == ("/search 배포", True)
    assert addressed("/memories") == ("/memory", False)


async def test_open_refuses_a_missing_service_account(env: Env) -> None:
    with pytest.raises(ConfigError):
        async with open_agent_chat_service(ChatConfig(backend="agent-chat"), local=env.local):
            pass


@given(st.text(alphabet=st.sampled_from(list("@/ aiAIx가\n\t_0")), max_size=30) | st.text())
def test_defused_text_never_triggers_the_servers_parser(text: str) -> None:
    """Whatever people write, the real server's own patterns (src/chat/service.py) find no
    command and no ``@ai`` in what we send for a post not addressed to the bot."""
    sent = defuse(text)
    assert COMMAND.match(sent.strip()) is None
    assert "ai" not in MENTION.findall(sent.lower())
    assert sent.replace(ZWSP, "") == text.replace(ZWSP, "")


async def test_the_members_recheck_reaches_the_agents_room(env: Env) -> None:
    """A leave missed while disconnected: the re-check removes lee from the agent's room too
    (and adds who joined meanwhile)."""
    await env.say("안녕하세요", post_id="p1", respond=False)

    def emails() -> set[str]:
        return {env.fake.world.users[m.user_id].email for m in env.fake.world.members}

    assert "lee@example.com" in emails()
    assert await env.svc.set_room_members(env.room.id, [env.kim.id]) == (0, 1)
    assert "lee@example.com" not in emails() and "kim@example.com" in emails()
    assert await env.svc.set_room_members(env.room.id, [env.kim.id, env.lee.id]) == (1, 0)
    assert "lee@example.com" in emails()
