"""RemoteChatService against the fake Agent API (and fake OpenAI) over real sockets."""

from __future__ import annotations

import functools
import logging
import socket
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from mchat_actors.chat.embedded import EmbeddedChatService, open_embedded_chat_service
from mchat_actors.chat.llm import open_llm
from mchat_actors.chat.protocol import (
    LLM,
    ChatRoom,
    ChatService,
    ChatUser,
    SendResult,
    StoredMessage,
)
from mchat_actors.chat.remote import HELP_TEXT, RemoteChatService, open_remote_chat_service
from mchat_actors.config import ChatConfig
from mchat_actors.errors import ChatServiceError, ChatServiceRejected, ConfigError
from mchat_actors.messages import AgentUserId, RoomId
from mchat_actors.testing.fake_agent_api import FakeAgentAPI
from mchat_actors.testing.fake_openai import FakeOpenAI, Status

KEY = "agent-key-SECRET-42"
AGENT = "agent-1"


def _cfg(url: str, **changes: Any) -> ChatConfig:
    base = ChatConfig(backend="remote", backend_url=url, backend_api_key=KEY,
                      backend_agent_id=AGENT, backend_rate_per_min=60.0)
    return attrs.evolve(base, **changes)


@attrs.frozen
class Env:
    fake: FakeAgentAPI
    svc: RemoteChatService
    local: EmbeddedChatService
    room: ChatRoom
    other_room: ChatRoom
    kim: ChatUser
    lee: ChatUser

    async def say(self, text: str, *, post_id: str | None = None, respond: bool = True,
                  user: ChatUser | None = None, **kwargs: Any) -> SendResult:
        """Post ``@ai <text>`` (or plain ``text``) in the room as kim."""
        content = f"@ai {text}" if respond else text
        return await self.svc.send_message(
            self.room.id, (user or self.kim).id, content, post_id=post_id, respond=respond,
            prompt=text if respond else None, **kwargs)

    def stored(self, data_type: str) -> list[Any]:
        return [d for d in self.fake.data if d.data_type == data_type]


@attrs.define
class Spy:
    """Forwards to a ChatService and records the names of the methods called."""

    inner: Any
    calls: list[str] = attrs.Factory(list)

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.inner, name)


class ThreadFreeLocal:
    """A minimal in-memory local ChatService without worker threads.

    The embedded service runs SQLite in a worker thread, and ``autojump_clock`` jumps while a
    thread runs; the timing tests use this instead so mock time moves only when we wait.
    """

    def __init__(self) -> None:
        self.posts: dict[str, StoredMessage] = {}
        self.count = 0

    async def create_room(self, *, name: str, kind: str) -> ChatRoom:
        self.count += 1
        return ChatRoom(id=RoomId(f"room{self.count}"), name=name, kind=kind)

    async def create_user(self, *, name: str, email: str | None) -> ChatUser:
        self.count += 1
        return ChatUser(id=AgentUserId(f"user{self.count}"), name=name, email=email)

    async def add_room_member(self, room: RoomId, user: AgentUserId) -> None:
        await trio.lowlevel.checkpoint()

    async def send_message(self, room: RoomId, user: AgentUserId, content: str, *,
                           post_id: str | None = None, **kwargs: Any) -> SendResult:
        await trio.lowlevel.checkpoint()
        self.count += 1
        if post_id is not None and post_id in self.posts:
            return SendResult(user_message=attrs.evolve(self.posts[post_id], is_new=False))
        message = StoredMessage(id=str(self.count), room_id=room, user_id=user, content=content,
                                mchat_post_id=post_id, created_at_ms=0)
        if post_id is not None:
            self.posts[post_id] = message
        return SendResult(user_message=message)


@asynccontextmanager
async def _local_store(db_path: str, *, threads: bool) -> AsyncIterator[Any]:
    if not threads:
        yield ThreadFreeLocal()
        return
    async with open_embedded_chat_service(db_path) as local:
        yield local


async def _open_env(db_path: str, *, rate_per_min: int = 60, cfg_rate: float = 60.0,
                    llm: LLM | None = None, local_wrapper: Any = None,
                    threads: bool = True) -> Any:
    fake = FakeAgentAPI(api_key=KEY, agent_ids=(AGENT,), rate_per_min=rate_per_min)
    async with fake, _local_store(db_path, threads=threads) as local:
        inner: ChatService = local_wrapper(local) if local_wrapper else local
        cfg = _cfg(fake.url, backend_rate_per_min=cfg_rate)
        async with open_remote_chat_service(cfg, local=inner, llm=llm) as svc:
            room = await svc.create_room(name="quality", kind="channel")
            other = await svc.create_room(name="secret", kind="private")
            kim = await svc.create_user(name="kim", email="kim@example.com")
            lee = await svc.create_user(name="lee", email="lee@example.com")
            for member in (kim, lee):
                await svc.add_room_member(room.id, member.id)
            yield Env(fake, svc, local, room, other, kim, lee)


@pytest.fixture
async def env(db_path: str) -> AsyncIterator[Env]:
    async for e in _open_env(db_path):
        yield e


async def test_message_is_stored_locally_and_posted_with_its_fields(env: Env) -> None:
    """A plain message goes to the local store and to POST data as a masked "message"."""
    result = await env.say("배포는 금요일, 문의 010-1234-5678", post_id="p1", root_id="r0",
                           respond=False)
    assert result.user_message.is_new and result.assistant_message is None
    assert result.user_message.mchat_post_id == "p1"
    [item] = env.stored("message")
    assert item.content == "배포는 금요일, 문의 [PHONE]"
    assert item.external_user_id == env.kim.id
    assert item.metadata["room_id"] == env.room.id
    assert item.metadata["post_id"] == "p1" and item.metadata["root_id"] == "r0"
    [request] = env.fake.requests
    assert request.key_ok and request.path == f"/api/v1/agents/{AGENT}/data"


async def test_duplicate_post_id_is_not_sent_again(env: Env) -> None:
    """The same post id twice reaches the agent once; a re-delivery still gets its answer."""
    first = await env.say("/remember 회의는 3시", post_id="p1")
    again = await env.say("/remember 회의는 3시", post_id="p1")
    assert first.assistant_message and again.assistant_message == first.assistant_message
    assert not again.user_message.is_new and again.extracted_memories == ()
    assert len(env.stored("message")) == 1 and len(env.stored("memory")) == 1
    assert len(env.fake.requests) == 2


async def test_remember_posts_a_masked_room_memory(env: Env) -> None:
    """/remember sends data_type "memory" with room metadata, masked, and reports it."""
    result = await env.say("/remember 담당자 kim@example.com, X부품 불량률 12%", post_id="p2",
                           permalink="http://mm/pl/p2")
    [memory] = env.stored("memory")
    assert memory.content == "담당자 [EMAIL], X부품 불량률 12%"
    assert memory.external_user_id == env.kim.id
    assert memory.metadata == {"scope": "room", "room_id": env.room.id, "post_id": "p2",
                               "permalink": "http://mm/pl/p2"}
    assert result.assistant_message == "기억했습니다: 담당자 [EMAIL], X부품 불량률 12%"
    [record] = result.extracted_memories
    assert record.id == memory.id and record.room_id == env.room.id
    assert "kim@example.com" not in str(env.fake.data)


async def test_question_is_answered_from_remote_memories(env: Env) -> None:
    """A remote memory "X부품 불량률 12%" answers "X부품 불량률 몇 %야?" (built-in answerer)."""
    env.fake.seed_memory(AGENT, "X부품 불량률 12%")
    result = await env.say("X부품 불량률 몇 %야?", post_id="q1", user=env.lee)
    assert result.assistant_message is not None and "12%" in result.assistant_message
    search = env.fake.requests[-1]
    assert search.path.endswith("/memories/search")
    assert search.json == {"query": "X부품 불량률 몇 %야?", "limit": 24,
                           "external_user_id": env.lee.id}


async def test_question_through_the_llm_sees_only_masked_visible_memories(db_path: str) -> None:
    """With an LLM the prompt holds this room's memory, not another room's or a secret."""
    async with FakeOpenAI(api_key="sk-llm") as openai:
        llm_cfg = ChatConfig(llm_base_url=openai.url, llm_api_key="sk-llm", llm_model="m")
        async with open_llm(llm_cfg) as llm:
            async for env in _open_env(db_path, llm=llm):
                env.fake.seed_memory(AGENT, "X부품 불량률 12%",
                                     metadata={"room_id": env.room.id})
                env.fake.seed_memory(AGENT, "X부품 불량률 99% (비밀 방)",
                                     metadata={"room_id": env.other_room.id})
                env.fake.seed_memory(AGENT, "X부품 불량률 메모: lee 개인", external_user_id="lee",
                                     metadata={"scope": "personal"})
                result = await env.say("X부품 불량률 몇 %야? 내 메일 kim@example.com")
    assert result.assistant_message is not None and "12%" in result.assistant_message
    prompt = str(openai.requests[-1].json["messages"])
    assert "12%" in prompt and "99%" not in prompt and "lee 개인" not in prompt
    assert "kim@example.com" not in prompt


async def test_search_is_ephemeral_and_ranked(env: Env) -> None:
    """/search lists the matching memories, best first, only to the asker."""
    env.fake.seed_memory(AGENT, "배포 담당은 lee")
    env.fake.seed_memory(AGENT, "배포 일정은 금요일")
    env.fake.seed_memory(AGENT, "점심 메뉴는 김밥")
    result = await env.say("/search 배포 일정")
    assert result.ephemeral
    text = result.assistant_message or ""
    assert text.startswith("'배포 일정' 검색 결과 2건:")
    assert text.index("금요일") < text.index("담당은 lee")
    assert "김밥" not in text


async def test_memory_lists_and_forget_and_help_answer_plainly(env: Env) -> None:
    """/memory lists the room's memories; /forget says it is unsupported; /help answers."""
    await env.say("/remember 회의실은 3층")
    listed = await env.say("/memory")
    assert "회의실은 3층" in (listed.assistant_message or "")
    forget = await env.say("/forget 회의실")
    assert "지원하지 않습니다" in (forget.assistant_message or "")
    assert len(env.stored("memory")) == 1
    assert (await env.say("/help")).assistant_message == HELP_TEXT


async def test_summary_uses_the_local_store(env: Env) -> None:
    """요약 summarises the locally stored messages through the local service."""
    await env.say("X부품 불량 이슈: 공급사 변경으로 불량률 12% 결정", respond=False)
    reactions: list[str] = []

    async def react(emoji: str) -> None:
        reactions.append(emoji)

    result = await env.say("요약 3시간", react=react)
    assert "12%" in (result.assistant_message or "")
    assert reactions == ["hourglass_flowing_sand", "white_check_mark"]


async def test_delegates_users_rooms_members_and_edits_to_local(db_path: str) -> None:
    """Users, rooms, members, edits and deletes go to the local service, not the agent."""
    async for env in _open_env(db_path, local_wrapper=Spy):
        spy = env.svc._local  # noqa: SLF001 - the Spy the test passed in
        assert await env.svc.find_user_by_email("KIM@example.com") == env.kim
        await env.svc.remove_room_member(env.room.id, env.lee.id)
        await env.svc.edit_message(post_id="p1", content="x")
        await env.svc.delete_message(post_id="p1")
        assert env.fake.requests == []
    assert spy.calls == ["create_room", "create_room", "create_user", "create_user",
                         "add_room_member", "add_room_member", "find_user_by_email",
                         "remove_room_member", "edit_message", "delete_message"]


async def test_respects_the_rate_limit_in_every_window(
    db_path: str, autojump_clock: trio.testing.MockClock
) -> None:
    """A burst of 75 messages at 30/min never puts more than 30 in any 60 s window."""
    async for env in _open_env(db_path, rate_per_min=30, cfg_rate=30.0, threads=False):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for i in range(75):
                say = functools.partial(env.say, f"메시지 {i}", post_id=f"b{i}", respond=False)
                nursery.start_soon(say)
        elapsed = trio.current_time() - start
    times = env.fake.accepted_times()
    assert len(times) == 75 and len(env.stored("message")) == 75
    assert all(r.status == 201 for r in env.fake.requests)  # never a 429
    assert max(sum(1 for t in times if t0 <= t < t0 + 60.0) for t0 in times) <= 30
    assert 120.0 <= elapsed < 150.0


async def test_waits_out_a_429_and_succeeds(
    db_path: str, autojump_clock: trio.testing.MockClock
) -> None:
    """429 with Retry-After: 20 blocks the client 20 s, then the message is stored."""
    async for env in _open_env(db_path, threads=False):
        env.fake.script(Status(429, retry_after_s=20))
        start = trio.current_time()
        await env.say("안녕하세요", respond=False)
        assert 20.0 <= trio.current_time() - start < 21.0
    assert [r.status for r in env.fake.requests] == [429, 201]
    assert len(env.stored("message")) == 1


async def test_adapts_to_a_stricter_server_limit(
    db_path: str, autojump_clock: trio.testing.MockClock
) -> None:
    """Configured at 120/min against a 10/min server: 429s are waited out, nothing is lost."""
    async for env in _open_env(db_path, rate_per_min=10, cfg_rate=120.0, threads=False):
        for i in range(14):
            await env.say(f"메시지 {i}", post_id=f"s{i}", respond=False)
    assert len(env.stored("message")) == 14
    assert [r.status for r in env.fake.requests].count(429) >= 1


async def test_retries_5xx_then_gives_up(
    db_path: str, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """500, 502, success is stored; four 503s raise ChatServiceError without the key."""
    caplog.set_level(logging.DEBUG)
    async for env in _open_env(db_path, threads=False):
        env.fake.script(Status(500), Status(502))
        start = trio.current_time()
        await env.say("첫 번째", respond=False)
        assert 1.5 <= trio.current_time() - start < 2.0
        assert len(env.stored("message")) == 1
        env.fake.script(*[Status(503)] * 4)
        with pytest.raises(ChatServiceError) as info:
            await env.say("두 번째", respond=False)
        rendered = "".join(traceback.format_exception(info.value))
        assert KEY not in rendered + repr(env.svc) + caplog.text
    assert [r.status for r in env.fake.requests] == [500, 502, 201, 503, 503, 503, 503]


async def test_wrong_key_and_unknown_agent_are_rejected(
    db_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """401 and 404 raise ChatServiceRejected at once; the key is in no error, log or repr."""
    caplog.set_level(logging.DEBUG)
    async with FakeAgentAPI(api_key="the-right-key", agent_ids=(AGENT,)) as fake, \
            open_embedded_chat_service(db_path) as local:
        room = await local.create_room(name="r", kind="channel")
        user = await local.create_user(name="u", email=None)
        for cfg in (_cfg(fake.url), _cfg(fake.url, backend_api_key="the-right-key",
                                         backend_agent_id="nobody")):
            async with open_remote_chat_service(cfg, local=local, llm=None) as svc:
                with pytest.raises(ChatServiceRejected) as info:
                    await svc.send_message(room.id, user.id, "hi", post_id=cfg.backend_agent_id)
                rendered = "".join(traceback.format_exception(info.value))
                for secret in (KEY, "the-right-key"):
                    assert secret not in rendered + repr(svc) + caplog.text
    assert [r.status for r in fake.requests] == [401, 404]


async def test_missing_backend_settings_are_a_config_error(env: Env) -> None:
    """open_remote_chat_service refuses a config without URL, key or agent id."""
    with pytest.raises(ConfigError):
        async with open_remote_chat_service(ChatConfig(backend="remote"), local=env.local,
                                            llm=None):
            pass


async def test_summary_without_a_summarizing_local_says_so(env: Env) -> None:
    """A local service without summarize_room gets a plain "needs the embedded backend"."""

    @attrs.define
    class Plain:
        inner: Any

        async def send_message(self, *args: Any, **kwargs: Any) -> SendResult:
            return await self.inner.send_message(*args, **kwargs)

    svc = RemoteChatService(local=Plain(env.local), llm=None, api=env.svc._api)  # noqa: SLF001
    result = await svc.send_message(env.room.id, env.kim.id, "@ai 요약", respond=True,
                                    prompt="요약")
    assert "embedded" in (result.assistant_message or "")


async def test_unreachable_backend_is_an_error_after_retries(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Connection refused is retried 3 times, then ChatServiceError without the key."""
    caplog.set_level(logging.DEBUG)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    local = ThreadFreeLocal()
    room = await local.create_room(name="r", kind="channel")
    user = await local.create_user(name="u", email=None)
    async with open_remote_chat_service(_cfg(f"http://127.0.0.1:{port}"), local=local,
                                        llm=None) as svc:
        with pytest.raises(ChatServiceError) as info:
            await svc.send_message(room.id, user.id, "hi")
    assert "ConnectError" in str(info.value)
    assert KEY not in "".join(traceback.format_exception(info.value)) + caplog.text
