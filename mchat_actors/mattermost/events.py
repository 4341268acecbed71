"""Mattermost WebSocket frames -> typed values. Pure: no I/O, no state.

``parse_frame`` turns one text frame into a ``Hello``, an ``ActionReply``, an ``Ignored`` (an
event type the runtime does not act on, kept for counting) or an ``InboundEvent`` from
``messages``. Anything it cannot understand raises ``MalformedEvent``; the connection logs, counts
and skips it. ``data.post`` and friends are JSON *strings* on the wire and are decoded twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import orjson

from ..errors import MalformedEvent
from ..messages import (
    ChannelCreated,
    ChannelDeleted,
    ChannelId,
    InboundEvent,
    MattermostUserId,
    MemberJoined,
    MemberLeft,
    Post,
    PostCreated,
    PostDeleted,
    PostEdited,
)


@attrs.frozen(kw_only=True)
class Hello:
    seq: int
    connection_id: str
    server_version: str = ""


@attrs.frozen(kw_only=True)
class ActionReply:
    seq_reply: int | None
    status: str
    data: Mapping[str, Any] | None = None
    error_id: str = ""


@attrs.frozen(kw_only=True)
class Ignored:
    seq: int | None
    event: str


@attrs.frozen(kw_only=True)
class Event:
    """A parsed event with its connection sequence number."""

    seq: int | None
    event: str
    value: InboundEvent


Frame = Hello | ActionReply | Ignored | Event


def parse_frame(text: str | bytes, *, my_user_id: str = "",
                received_at: float | None = None) -> Frame:
    """Parse one WebSocket text frame; a ``PostCreated`` carries ``received_at`` (the trio
    time its frame arrived).

    Raises:
        MalformedEvent: invalid JSON, wrong shapes, or an event whose payload is broken.
    """
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent(f"frame is not JSON: {exc}") from exc
    if not isinstance(msg, dict):
        raise MalformedEvent(f"frame is a JSON {type(msg).__name__}, not an object")
    if "event" not in msg:
        if "status" in msg:
            error = msg.get("error") or {}
            return ActionReply(
                seq_reply=_opt_int(msg.get("seq_reply")),
                status=str(msg["status"]),
                data=msg.get("data") if isinstance(msg.get("data"), dict) else None,
                error_id=str(error.get("id", "")) if isinstance(error, dict) else "",
            )
        raise MalformedEvent("frame has neither 'event' nor 'status'")
    name = msg["event"]
    if not isinstance(name, str):
        raise MalformedEvent("'event' is not a string")
    seq = _opt_int(msg.get("seq"))
    data = msg.get("data")
    data = {} if data is None else data
    broadcast = msg.get("broadcast")
    broadcast = {} if broadcast is None else broadcast
    if not isinstance(data, dict) or not isinstance(broadcast, dict):
        raise MalformedEvent(f"{name}: data/broadcast is not an object")
    try:
        if name == "hello":
            return Hello(seq=seq or 0, connection_id=str(data.get("connection_id") or ""),
                         server_version=str(data.get("server_version") or ""))
        value = _event(name, data, broadcast, my_user_id, received_at)
    except (KeyError, TypeError, ValueError, OverflowError, orjson.JSONDecodeError) as exc:
        raise MalformedEvent(f"{name}: bad payload ({type(exc).__name__}: {exc})") from exc
    if value is None:
        return Ignored(seq=seq, event=name)
    return Event(seq=seq, event=name, value=value)


def _event(name: str, data: dict[str, Any], broadcast: dict[str, Any],
           my_user_id: str, received_at: float | None = None) -> InboundEvent | None:
    match name:
        case "posted":
            post = Post.from_api(_decode_twice(data["post"]))
            return PostCreated(
                post=post,
                channel_type=str(data.get("channel_type") or ""),
                channel_name=str(data.get("channel_name") or ""),
                team_id=str(data.get("team_id") or ""),
                sender_name=str(data.get("sender_name") or ""),
                received_at=received_at,
            )
        case "post_edited":
            return PostEdited(post=Post.from_api(_decode_twice(data["post"])))
        case "post_deleted":
            return PostDeleted(post=Post.from_api(_decode_twice(data["post"])))
        case "user_added":
            user_id = data.get("user_id")
            if not user_id and isinstance(data.get("user"), dict):
                user_id = data["user"].get("id")
            channel = broadcast.get("channel_id") or data.get("channel_id")
            if not user_id or not channel:
                raise ValueError("user_added without user or channel")
            return MemberJoined(channel_id=ChannelId(channel), user_id=MattermostUserId(user_id),
                                team_id=str(data.get("team_id") or ""))
        case "user_removed":
            # copy (a): to the channel's remaining members, data.user_id = removed user;
            # copy (b): to the removed user only, data.channel_id.
            if data.get("channel_id"):
                removed = broadcast.get("user_id") or my_user_id
                return MemberLeft(channel_id=ChannelId(data["channel_id"]),
                                  user_id=MattermostUserId(removed))
            channel = broadcast.get("channel_id")
            if not channel or not data.get("user_id"):
                raise ValueError("user_removed without user or channel")
            return MemberLeft(channel_id=ChannelId(channel),
                              user_id=MattermostUserId(data["user_id"]))
        case "channel_created":
            return ChannelCreated(channel_id=ChannelId(data["channel_id"]),
                                  team_id=str(data.get("team_id") or ""))
        case "direct_added" | "group_added":
            channel = broadcast.get("channel_id")
            return ChannelCreated(channel_id=ChannelId(channel)) if channel else None
        case "channel_deleted":
            return ChannelDeleted(channel_id=ChannelId(data["channel_id"]))
    return None


def _decode_twice(value: Any) -> dict[str, Any]:
    obj = orjson.loads(value) if isinstance(value, (str, bytes)) else value
    if not isinstance(obj, dict):
        raise TypeError("post is not an object")
    return obj


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEvent(f"sequence number is not an integer: {value!r}")
    return value


def posts_from_list(post_list: Any,
                    on_bad: Callable[[str], None] | None = None) -> list[Post]:
    """The posts named in a PostList's ``order``, oldest first.

    ``posts`` may hold extra entries (thread roots fetched for context) that are not in
    ``order``; those are not new and are skipped. A single broken entry is skipped and reported
    to ``on_bad`` (the others on the page are kept: one bad post must not hide its neighbours).

    Raises:
        MalformedEvent: the answer is not a PostList at all (not an object, or ``order`` /
            ``posts`` of the wrong type).
    """
    if not isinstance(post_list, Mapping):
        raise MalformedEvent(f"bad PostList: a JSON {type(post_list).__name__}")
    order = post_list.get("order") or []
    posts = post_list.get("posts") or {}
    if not isinstance(order, list) or not isinstance(posts, Mapping):
        raise MalformedEvent("bad PostList: order is not a list or posts not an object")
    items: list[Post] = []
    for pid in order:
        if not isinstance(pid, str) or pid not in posts:
            continue
        raw = posts[pid]
        try:
            if not isinstance(raw, Mapping):
                raise TypeError("post is not an object")
            items.append(Post.from_api(raw))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            if on_bad is not None:
                on_bad(f"post {pid[:32]!r}: {type(exc).__name__}")
    items.sort(key=lambda p: (p.create_at, p.id))
    return items
