"""Every message that travels between actors.

Messages are frozen attrs classes with tuple fields. Events are past-tense facts
(``PostCreated``), requests are imperative nouns (``SendReply``). Mattermost ids and agent ids
get distinct ``NewType``s so the two id spaces cannot be swapped by accident.

Raw JSON becomes a message only in the adapters (``mchat_actors.mattermost.events``) through
named constructors such as ``Post.from_api``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NewType

import attrs

from .mattermost.hygiene import clean_answer

if TYPE_CHECKING:
    from .outbox import OutboxRow

ChannelId = NewType("ChannelId", str)  # Mattermost channel id
MattermostUserId = NewType("MattermostUserId", str)
PostId = NewType("PostId", str)
RoomId = NewType("RoomId", str)  # agent (ChatService) room id
AgentUserId = NewType("AgentUserId", str)  # agent (ChatService) user id



@attrs.frozen(kw_only=True)
class Post:
    """The parts of a Mattermost post the runtime uses."""

    id: PostId
    channel_id: ChannelId
    user_id: MattermostUserId
    message: str
    root_id: PostId | None = None
    type: str = ""
    create_at: int = 0
    update_at: int = 0
    edit_at: int = 0
    delete_at: int = 0
    from_bot: bool = False
    from_webhook: bool = False
    reply_key: str | None = None  # props.mchat_reply_key on posts we made
    file_ids: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Post:
        """Build from a Post JSON object (REST or the decoded ``data.post`` of an event).

        Raises:
            KeyError, TypeError, ValueError: the object is not a post; adapters turn these
            into ``MalformedEvent``.
        """
        props = data.get("props") or {}
        if not isinstance(props, Mapping):
            props = {}
        post_id = data["id"]
        channel_id = data["channel_id"]
        if not isinstance(post_id, str) or not isinstance(channel_id, str) or not post_id:
            raise ValueError("post id and channel_id must be non-empty strings")
        return cls(
            id=PostId(post_id),
            channel_id=ChannelId(channel_id),
            user_id=MattermostUserId(str(data.get("user_id") or "")),
            message=str(data.get("message") or ""),
            root_id=PostId(data["root_id"]) if data.get("root_id") else None,
            type=str(data.get("type") or ""),
            create_at=int(data.get("create_at") or 0),
            update_at=int(data.get("update_at") or 0),
            edit_at=int(data.get("edit_at") or 0),
            delete_at=int(data.get("delete_at") or 0),
            from_bot=str(props.get("from_bot", "")).lower() == "true",
            from_webhook=str(props.get("from_webhook", "")).lower() == "true",
            reply_key=str(props["mchat_reply_key"]) if props.get("mchat_reply_key") else None,
            file_ids=tuple(str(f) for f in (data.get("file_ids") or ())),
        )

    @property
    def is_system(self) -> bool:
        return self.type.startswith("system_")

    @property
    def thread_root(self) -> PostId:
        """The id a threaded reply must carry as ``root_id``."""
        return self.root_id or self.id


# ---------------------------------------------------------------- inbound events
# Producers: connection (websocket), reconnect (poll, backfill), http (webhook, slash).
# Consumer: dispatcher, which routes each to its channel's serializer.


@attrs.frozen(kw_only=True)
class PostCreated:
    post: Post
    channel_type: str = ""  # O, P, D, G ("" when unknown: the mapper looks it up)
    channel_name: str = ""
    team_id: str = ""
    sender_name: str = ""
    source: str = "websocket"  # websocket | poll | backfill | webhook (recorded in mchat_posts)
    # trio time when its WebSocket frame reached this process (None from poll, backfill,
    # webhook): the start of the latency the runtime adds to an answer (``AnswerClock``)
    received_at: float | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class PostEdited:
    post: Post
    source: str = "websocket"


@attrs.frozen(kw_only=True)
class PostDeleted:
    post: Post
    source: str = "websocket"


@attrs.frozen(kw_only=True)
class MemberJoined:
    channel_id: ChannelId
    user_id: MattermostUserId
    team_id: str = ""


@attrs.frozen(kw_only=True)
class MemberLeft:
    channel_id: ChannelId
    user_id: MattermostUserId


@attrs.frozen(kw_only=True)
class ChannelCreated:
    channel_id: ChannelId
    team_id: str = ""


@attrs.frozen(kw_only=True)
class ChannelDeleted:
    channel_id: ChannelId


InboundEvent = (
    PostCreated | PostEdited | PostDeleted | MemberJoined | MemberLeft | ChannelCreated
    | ChannelDeleted
)


def channel_of(event: InboundEvent) -> ChannelId:
    """The channel whose serializer handles ``event`` (so edits follow their post)."""
    match event:
        case PostCreated(post=post) | PostEdited(post=post) | PostDeleted(post=post):
            return post.channel_id
        case MemberJoined(channel_id=cid) | MemberLeft(channel_id=cid):
            return cid
        case ChannelCreated(channel_id=cid) | ChannelDeleted(channel_id=cid):
            return cid
    raise AssertionError(f"unhandled event {event!r}")  # pragma: no cover


# ---------------------------------------------------------------- connection state
# Producer: reconnect supervisor. Consumers: health/metrics (through statistics()).


@attrs.frozen(kw_only=True)
class ConnectionState:
    mode: str  # "websocket" | "polling" | "connecting" | "stopped"
    connection_id: str | None = None
    since: float = 0.0  # trio.current_time() of the change


# ---------------------------------------------------------------- outbound requests
# Producers: serializers (through the invoker), http. Consumer: the sender.


@attrs.frozen(kw_only=True)
class SendReply:
    """Post ``message`` in ``channel_id`` (as a reply to ``root_id`` when set).

    ``reply_key`` is stable for one logical reply (e.g. ``<trigger post id>:0``): the outbox is
    unique on it, and it travels in ``props.mchat_reply_key`` so a resend can find the post.

    ``committed``: the outbox rows this reply already is, as the handler's transaction committed
    them (results flow forward from the commit): the sender queues them as they are, with no
    store round trip. Empty: the sender writes the reply to the outbox itself.
    """

    channel_id: ChannelId
    message: str = attrs.field(converter=clean_answer)  # output hygiene, see mattermost.hygiene
    reply_key: str
    root_id: PostId | None = None
    trigger_post_id: PostId | None = None
    committed: tuple[OutboxRow, ...] = attrs.field(default=(), eq=False, repr=False)


@attrs.frozen(kw_only=True)
class SendEphemeral:
    """Show ``message`` to ``user_id`` only, in ``channel_id`` (``POST /posts/ephemeral``).

    For answers only their asker may read (``/search`` results in a channel). When the bot may
    not post ephemerally (403) or the post fails, the message goes to the asker's DM with the
    bot through the outbox (``<reply_key>:dm``) and a one-line ``note`` is posted in the thread
    (``<reply_key>:note``).
    """

    channel_id: ChannelId
    user_id: MattermostUserId
    message: str = attrs.field(converter=clean_answer)  # output hygiene, as SendReply
    reply_key: str
    note: str
    root_id: PostId | None = None
    trigger_post_id: PostId | None = None


@attrs.frozen(kw_only=True)
class AddReaction:
    """Best-effort reaction on a post (the summary's hourglass and check mark)."""

    post_id: PostId
    emoji_name: str
    remove: bool = False


OutboundRequest = SendReply | SendEphemeral | AddReaction
