"""What one actor needs of another, as Protocols and records: actors depend on these, never on
each other's modules (``app`` wires the real ones in at construction).

- ``MapperPort``: Mattermost channels and users to ChatService rooms and users (``actors.mapper``).
- ``InvokerPort``: the ChatService under a timeout and a concurrency limit (``actors.invoker``).
- ``ReplyWaiters``: an HTTP request waiting for a post's reply (``webhook_replies``).
- ``SweeperPort``: REST reads of what the WebSocket may have missed (``actors.sweeper``).
- ``Reactions``: the ChatService's progress marks on a post, as requests to the sender.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import attrs
import trio

from .chat.protocol import NewMessage, PreparedAnswer, ReactFn, SendResult
from .messages import (
    AddReaction,
    AgentUserId,
    ChannelId,
    MattermostUserId,
    OutboundRequest,
    Post,
    PostId,
    RoomId,
)
from .ratelimit import RequestClass


@attrs.frozen(kw_only=True)
class ChannelInfo:
    channel_id: ChannelId
    room_id: RoomId
    type: str
    name: str
    team_id: str
    sync_enabled: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ChannelInfo:
        return cls(channel_id=ChannelId(row["mchat_channel_id"]),
                   room_id=RoomId(row["agent_room_id"]), type=row["channel_type"],
                   name=row["mchat_channel_name"], team_id=row["mchat_team_id"],
                   sync_enabled=bool(row["sync_enabled"]))


@attrs.frozen(kw_only=True)
class Outcome:
    result: SendResult | None
    answer: str | None  # what to post (the assistant message or the apology)
    failed: bool = False
    error: str = ""  # the error's type name, for counting


HOURGLASS = "hourglass_flowing_sand"


@attrs.frozen
class Reactions:
    """How the ChatService marks a post it is working on (the summary's hourglass, then a check
    mark, which takes the hourglass away): ``AddReaction`` requests on the sender's channel.
    ``app`` gives it to the invoker at construction; the invoker hands ``for_post(id)`` to the
    service as its ``ReactFn``. ``replies`` is the sender's channel itself (not a clone: it
    closes when the dispatcher closes it)."""

    replies: trio.MemorySendChannel[OutboundRequest]

    def for_post(self, post_id: PostId) -> ReactFn:
        async def react(emoji: str) -> None:
            await self.react(post_id, emoji)

        return react

    async def react(self, post_id: PostId, emoji: str) -> None:
        if emoji == "white_check_mark":
            await self.replies.send(AddReaction(post_id=post_id, emoji_name=HOURGLASS,
                                                remove=True))
        await self.replies.send(AddReaction(post_id=post_id, emoji_name=emoji))


class MapperPort(Protocol):
    """``request_class``: the caller's lane's class in the shared REST budget (raised to
    ``ratelimit.Priority.QUESTION`` while the lane holds a question)."""

    async def channel(self, channel_id: ChannelId, *,
                      request_class: RequestClass | None = None) -> ChannelInfo: ...

    async def user(self, user_id: MattermostUserId, *,
                   request_class: RequestClass | None = None) -> AgentUserId: ...

    async def member_joined(self, channel_id: ChannelId, user_id: MattermostUserId) -> None: ...

    async def member_left(self, channel_id: ChannelId, user_id: MattermostUserId) -> None: ...


class InvokerPort(Protocol):
    async def send(self, post: Post, *, room: RoomId, user: AgentUserId, respond: bool,
                   prompt: str, permalink: str | None = None) -> Outcome:
        """Store ``post`` and answer it when ``respond`` (the service may mark the post with
        reactions meanwhile: ``Reactions``)."""
        ...

    async def prepare(self, post: Post, message: NewMessage, *, prompt: str,
                      seen: Callable[[object], bool], in_commit: bool = True
                      ) -> PreparedAnswer | Outcome | None:
        """The answer to a question with nothing stored yet (None: use ``send``; a failed
        ``Outcome`` when the service failed); ``in_commit``: or a unit that reads inside the
        commit (``PreparedAnswer.compose``)."""
        ...

    async def store_only(self, post: Post, *, room: RoomId, user: AgentUserId) -> bool: ...

    async def edit(self, post: Post) -> bool: ...

    async def delete(self, post: Post) -> bool: ...


class ReplyWaiters(Protocol):
    """Someone (the HTTP surface's outgoing-webhook request) may wait for a post's reply."""

    def claim(self, post_id: str) -> bool:
        """Reserve the waiter for a reply about to be committed; False: nobody waits."""
        ...

    def deliver(self, post_id: str, text: str) -> bool:
        """Hand the committed reply over; False: nobody waits (use the outbox)."""
        ...

    def no_reply(self, post_id: str) -> None:
        """The post was handled without a reply (or not committed): wake the waiter."""
        ...


class SweeperPort(Protocol):
    def connection_lost(self, *, since_ms: int | None = None) -> None:
        """Posts may be missing from ``since_ms`` on: the next sweeps read from there."""
        ...

    async def sweep(self, *, source: str,
                    done: Callable[[str], Awaitable[None]] | None = None) -> int:
        """Read every channel that moved and emit its new posts; how many were emitted.
        ``done(channel)``: awaited once a channel's posts are all emitted (or it had none)."""
        ...

    async def poll_forever(self, interval_s: float) -> None: ...
