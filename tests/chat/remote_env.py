"""Shared set-up of the remote backend tests: the AI Memory Agent twin and a local store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from mchat_actors.chat.embedded import EmbeddedChatService, open_embedded_chat_service
from mchat_actors.chat.protocol import (
    LLM,
    ChatRoom,
    ChatService,
    ChatUser,
    SendResult,
    StoredMessage,
)
from mchat_actors.chat.remote import RemoteChatService, open_remote_chat_service
from mchat_actors.config import ChatConfig
from mchat_actors.messages import AgentUserId, RoomId
from mchat_actors.testing.fake_agent_api import AgentRequest, FakeAgentAPI

KEY = "agent-key-SECRET-42"
AGENT = "agent-1"


def remote_cfg(url: str, **changes: Any) -> ChatConfig:
    base = ChatConfig(backend="remote", backend_url=url, backend_api_key=KEY,
                      backend_agent_id=AGENT, backend_rate_per_min=60.0)
    return attrs.evolve(base, **changes)


@attrs.frozen
class Env:
    fake: FakeAgentAPI
    svc: RemoteChatService
    local: Any
    room: ChatRoom
    other_room: ChatRoom
    kim: ChatUser
    lee: ChatUser

    async def say(self, text: str, *, post_id: str | None = None, respond: bool = True,
                  user: ChatUser | None = None, room: ChatRoom | None = None,
                  **kwargs: Any) -> SendResult:
        """Post ``@ai <text>`` (or plain ``text``) in the room as kim."""
        content = f"@ai {text}" if respond else text
        return await self.svc.send_message(
            (room or self.room).id, (user or self.kim).id, content, post_id=post_id,
            respond=respond, prompt=text if respond else None, **kwargs)

    def agent_calls(self) -> list[AgentRequest]:
        return [r for r in self.fake.requests if r.path.startswith("/api/v1/agents/")]


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


async def open_env(db_path: str, *, rate_per_min: int = 60, cfg_rate: float = 60.0,
                   llm: LLM | None = None, local_wrapper: Any = None,
                   threads: bool = True) -> AsyncIterator[Env]:
    fake = FakeAgentAPI(api_key=KEY, agent_id=AGENT, rate_per_min=rate_per_min)
    async with fake, _local_store(db_path, threads=threads) as local:
        inner: ChatService = local_wrapper(local) if local_wrapper else local
        cfg = remote_cfg(fake.url, backend_rate_per_min=cfg_rate)
        async with open_remote_chat_service(cfg, local=inner, llm=llm) as svc:
            room = await svc.create_room(name="quality", kind="channel")
            other = await svc.create_room(name="secret", kind="private")
            kim = await svc.create_user(name="kim", email="kim@example.com")
            lee = await svc.create_user(name="lee", email="lee@example.com")
            for member in (kim, lee):
                await svc.add_room_member(room.id, member.id)
            yield Env(fake, svc, local, room, other, kim, lee)


__all__ = ["AGENT", "KEY", "EmbeddedChatService", "Env", "ThreadFreeLocal", "open_env",
           "remote_cfg"]
