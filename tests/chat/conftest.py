"""Fixtures of the embedded ChatService tests: a fake LLM, a settable clock, an open service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest

from mchat_actors import mapping
from mchat_actors.chat.embedded import EmbeddedChatService, open_embedded_chat_service
from mchat_actors.chat.protocol import ChatRoom, ChatUser, SendResult
from mchat_actors.store import open_store

from .chat_fakes import FakeClock


@attrs.frozen
class World:
    """Two rooms and three users: kim and lee in quality, park alone in secret."""

    svc: EmbeddedChatService
    clock: FakeClock
    quality: ChatRoom
    secret: ChatRoom
    kim: ChatUser
    lee: ChatUser
    park: ChatUser

    async def say(self, room: ChatRoom, user: ChatUser, text: str, *, post_id: str | None = None,
                  respond: bool = True, **kwargs: object) -> SendResult:
        """Post ``text`` as ``@ai <text>`` with ``text`` as the prompt."""
        content = f"@ai {text}" if respond else text
        return await self.svc.send_message(room.id, user.id, content, post_id=post_id,
                                           respond=respond, prompt=text if respond else None,
                                           **kwargs)

    async def dm(self, user: ChatUser) -> ChatRoom:
        """``user``'s direct-message room with the bot (the bot is no room member)."""
        room = await self.svc.create_room(name=f"dm-{user.name}", kind="direct")
        await self.svc.add_room_member(room.id, user.id)
        return room


async def map_channels(db_path: str, team: str, *rooms: ChatRoom) -> None:
    """Record ``rooms`` as channels of Mattermost team ``team`` in the runtime's channel mapping
    (as the mapper does on first sight), which is where the audience rules read teams from."""
    async with open_store(db_path) as store:
        for room in rooms:
            await store.run(mapping.insert_channel, channel_id=f"ch-{room.id}", team_id=team,
                            name=room.name, display_name=room.name,
                            channel_type="O" if room.kind == "channel" else "P", room_id=room.id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path) -> str:  # noqa: ANN001
    return str(tmp_path / "chat.db")


async def make_world(svc: EmbeddedChatService, clock: FakeClock) -> World:
    quality = await svc.create_room(name="quality", kind="channel")
    secret = await svc.create_room(name="secret", kind="private")
    kim = await svc.create_user(name="kim", email="kim@example.com")
    lee = await svc.create_user(name="lee", email="lee@example.com")
    park = await svc.create_user(name="park", email="park@example.com")
    for room, user in ((quality, kim), (quality, lee), (secret, park)):
        await svc.add_room_member(room.id, user.id)
    return World(svc, clock, quality, secret, kim, lee, park)


@pytest.fixture
async def world(db_path: str, clock: FakeClock) -> AsyncIterator[World]:
    async with open_embedded_chat_service(db_path, clock=clock) as svc:
        yield await make_world(svc, clock)
