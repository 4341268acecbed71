"""The fake server's app layer for posts and reactions: validation, storage, events, listeners.

REST handlers, the ``/_fake/`` control API and the Python API all create posts through
:meth:`FakeApp.create_post`, so every path validates, broadcasts and notifies listeners alike.

Post-created listeners (for webhooks, slash commands …) are ``async def listener(event:
PostCreated)`` callables in :attr:`FakeApp.post_listeners`. Each runs in the server's
background nursery *after* the ``posted`` broadcast, like the real server's asynchronous
webhook handling; an exception in one is logged and does not affect the request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs
import orjson
import trio

from .apperror import AppError, permission_denied, post_not_found
from .events import Broadcast, WsEvent
from .mentions import mentioned_user_ids
from .models import FakeChannel, FakeUser, is_valid_id, new_id
from .state import millis

if TYPE_CHECKING:
    from .hub import Hub
    from .state import FakeState

logger = logging.getLogger(__name__)

MAX_POST_RUNES = 16383
PENDING_POST_TTL_S = 30.0
_EMOJI_NAME = re.compile(r"[a-zA-Z0-9+_-]{1,64}")
_HASHTAG = re.compile(r"(?<![\w#])#([A-Za-z][\w.-]{1,}[\w])")


@attrs.frozen(kw_only=True)
class PostCreated:
    """What a post-created listener receives. ``post`` is a private copy of the Post JSON."""

    post: dict[str, object]
    channel: FakeChannel
    author: FakeUser
    trigger_webhooks: bool


PostListener = Callable[[PostCreated], Awaitable[None]]


@attrs.define(eq=False)
class FakeApp:
    state: FakeState
    hub: Hub
    post_listeners: list[PostListener] = attrs.field(factory=list)
    background: trio.Nursery | None = None
    _pending: dict[str, tuple[str, float]] = attrs.field(factory=dict)
    # Ephemeral posts sent (never stored as posts): for tests and the control API.
    ephemeral_posts: list[dict[str, object]] = attrs.field(factory=list)

    # -- ephemeral posts -----------------------------------------------------------------------

    def create_ephemeral_post(self, actor: FakeUser, user_id: str, channel_id: str,
                              message: str, root_id: str = "") -> dict[str, object]:
        """``POST /posts/ephemeral``: an ``ephemeral_message`` event to ``user_id`` only.

        Like the real server it needs ``create_post_ephemeral``, which only the system admin
        role has by default: a bot account without admin roles gets 403.
        """
        if not actor.is_admin:
            raise permission_denied()
        channel = self.state.channels.get(channel_id)
        if channel is None or self.state.users.get(user_id) is None:
            raise AppError(400, "api.context.invalid_param.app_error",
                           "Invalid post.channel_id or user_id parameter.")
        post: dict[str, object] = {
            "id": new_id(), "create_at": self.state.now_ms(), "update_at": 0, "edit_at": 0,
            "delete_at": 0, "is_pinned": False, "user_id": actor.id, "channel_id": channel_id,
            "root_id": root_id, "original_id": "", "message": message,
            "type": "system_ephemeral", "props": {}, "hashtags": "", "pending_post_id": "",
            "reply_count": 0, "last_reply_at": 0, "participants": None, "metadata": {},
        }
        self.ephemeral_posts.append({**post, "to_user_id": user_id})
        self.hub.publish(WsEvent(
            event="ephemeral_message", data={"post": orjson.dumps(post).decode()},
            broadcast=Broadcast(user_id=user_id, channel_id=channel_id),
        ))
        return post

    # -- posts ---------------------------------------------------------------------------------

    def create_post(
        self,
        author: FakeUser,
        channel_id: str,
        message: str,
        *,
        root_id: str = "",
        props: Mapping[str, object] | None = None,
        file_ids: Sequence[str] = (),
        pending_post_id: str = "",
        post_type: str = "",
        set_online: bool = True,
        system: bool = False,
        trigger_webhooks: bool = True,
    ) -> tuple[dict[str, object], bool]:
        """Create a post as ``author``; returns ``(post JSON, created)``.

        ``created`` is ``False`` when ``pending_post_id`` matched a post made in the last 30 s
        (that post is returned). ``system=True`` is for the server's own messages (join/leave):
        no membership check, ``system_*`` types allowed, no dedup, no webhooks.

        Raises:
            AppError: the real server's error for the same input.
        """
        channel = self.state.channels.get(channel_id) if is_valid_id(channel_id) else None
        if not system:
            if channel is None or not (
                self.state.is_member(channel.id, author.id) or author.is_admin
            ):
                raise permission_denied()
            if post_type.startswith("system_"):
                raise AppError(400, "api.context.invalid_param.app_error",
                               "Invalid post.type parameter.")
        assert channel is not None
        if channel.delete_at:
            raise AppError(400, "api.post.create_post.can_not_post_to_deleted.error",
                           "Can not post to deleted channel.")
        if pending_post_id and not system:
            found = self._deduplicate(pending_post_id)
            if found is not None:
                return found, False
        try:
            post = self._new_post(author, channel, message, root_id, props, file_ids,
                                  pending_post_id, post_type)
        except AppError:
            self._pending.pop(pending_post_id, None)
            raise
        if pending_post_id and not system:
            self._pending[pending_post_id] = (str(post["id"]), trio.current_time())
        self._store_post(post, channel)
        rendered = self.state.render_post(post)
        self.hub.publish(self._posted_event(rendered, channel, author, set_online))
        self._notify(PostCreated(post=rendered, channel=channel, author=author,
                                 trigger_webhooks=trigger_webhooks and not system))
        return self.state.render_post(post), True

    def edit_post(
        self, actor: FakeUser, post_id: str, patch: Mapping[str, object]
    ) -> dict[str, object]:
        """``PUT /posts/{id}/patch``: message, props (replaced), is_pinned, file_ids."""
        post = self.state.posts.get(post_id)
        if post is None or post["delete_at"]:
            raise permission_denied()
        if post["user_id"] != actor.id and not actor.is_admin:
            raise permission_denied()
        if str(post["type"]).startswith("system_"):
            raise AppError(400, "api.post.update_post.system_message.app_error",
                           "Unable to update system message.")
        changes = _validated_patch(patch)
        now = self.state.now_ms()
        if "message" in changes and changes["message"] != post["message"]:
            post["edit_at"] = now
        post.update(changes)
        post["update_at"] = now
        rendered = self.state.render_post(post)
        self.hub.publish(WsEvent(
            event="post_edited", data={"post": orjson.dumps(rendered).decode()},
            broadcast=Broadcast(channel_id=str(post["channel_id"])),
        ))
        return rendered

    def delete_post(self, actor: FakeUser, post_id: str) -> None:
        """Soft delete (replies of a root too); one ``post_deleted`` event."""
        post = self.state.post(post_id)
        channel = self.state.channels[str(post["channel_id"])]
        if post["user_id"] != actor.id and not actor.is_admin:
            raise permission_denied()
        if not self.state.is_member(channel.id, actor.id) and not actor.is_admin:
            raise permission_denied()
        before = self.state.render_post(post)
        now = self.state.now_ms()
        targets = [post_id] if post["root_id"] else self.state.thread_ids(post_id)
        for target_id in targets:
            target = self.state.posts[target_id]
            if not target["delete_at"]:
                target["delete_at"] = now
                target["update_at"] = now
                props = target["props"]
                assert isinstance(props, dict)
                target["props"] = {**props, "deleteBy": actor.id}
        self.hub.publish(WsEvent(
            event="post_deleted", data={"post": orjson.dumps(before).decode()},
            broadcast=Broadcast(channel_id=channel.id), admin_data={"delete_by": actor.id},
        ))

    # -- reactions -----------------------------------------------------------------------------

    def add_reaction(
        self, actor: FakeUser, user_id: str, post_id: str, emoji_name: str
    ) -> dict[str, object]:
        if user_id != actor.id:
            raise permission_denied()
        post = self.state.posts.get(post_id)
        if post is None or post["delete_at"]:
            raise permission_denied()
        if not self.state.is_member(str(post["channel_id"]), actor.id):
            raise permission_denied()
        if not _EMOJI_NAME.fullmatch(emoji_name):
            raise AppError(400, "model.reaction.is_valid.emoji_name.app_error",
                           "Invalid emoji name.")
        reactions = self.state.reactions.setdefault(post_id, {})
        existing = reactions.get((user_id, emoji_name))
        if existing is not None:
            return dict(existing)
        now = self.state.now_ms()
        reaction: dict[str, object] = {
            "user_id": user_id, "post_id": post_id, "emoji_name": emoji_name,
            "create_at": now, "update_at": now, "delete_at": 0, "remote_id": "",
            "channel_id": post["channel_id"],
        }
        reactions[(user_id, emoji_name)] = reaction
        post["has_reactions"] = True
        post["update_at"] = now
        self._publish_reaction("reaction_added", reaction)
        return dict(reaction)

    def remove_reaction(self, actor: FakeUser, user_id: str, post_id: str, emoji_name: str) -> None:
        if user_id != actor.id and not actor.is_admin:
            raise permission_denied()
        post = self.state.posts.get(post_id)
        if post is None:
            raise permission_denied()
        reactions = self.state.reactions.get(post_id, {})
        reaction = reactions.pop((user_id, emoji_name), None)
        if reaction is None:
            return
        now = self.state.now_ms()
        post["has_reactions"] = bool(reactions)
        post["update_at"] = now
        self._publish_reaction("reaction_removed", {**reaction, "delete_at": now})

    # -- internals -----------------------------------------------------------------------------

    def _deduplicate(self, pending_post_id: str) -> dict[str, object] | None:
        entry = self._pending.get(pending_post_id)
        if entry is None or trio.current_time() - entry[1] > PENDING_POST_TTL_S:
            self._pending.pop(pending_post_id, None)
            return None
        post = self.state.posts.get(entry[0])
        if post is None or post["delete_at"]:
            raise AppError(500, "api.post.deduplicate_create_post.failed_to_get",
                           "Failed to fetch original post after deduplicating a client repeating "
                           "the same request.")
        return self.state.render_post(post)

    def _new_post(
        self, author: FakeUser, channel: FakeChannel, message: str, root_id: str,
        props: Mapping[str, object] | None, file_ids: Sequence[str], pending_post_id: str,
        post_type: str,
    ) -> dict[str, object]:
        if root_id:
            root = self.state.posts.get(root_id)
            if root is None or root["delete_at"]:
                raise AppError(400, "api.post.create_post.root_id.app_error",
                               "Invalid RootId parameter.")
            if root["channel_id"] != channel.id:
                raise AppError(400, "api.post.create_post.channel_root_id.app_error",
                               "Invalid ChannelId for RootId parameter.")
            if root["root_id"]:
                raise AppError(400, "api.post.create_post.root_id.app_error",
                               "Invalid RootId parameter.")
        _check_message_length(message)
        all_props: dict[str, object] = dict(props or {})
        if author.is_bot:
            all_props["from_bot"] = "true"
        now = self.state.now_ms()
        post: dict[str, object] = {
            "id": new_id(), "create_at": now, "update_at": now, "edit_at": 0, "delete_at": 0,
            "is_pinned": False, "user_id": author.id, "channel_id": channel.id,
            "root_id": root_id, "original_id": "", "message": message, "type": post_type,
            "props": all_props, "hashtags": " ".join(_HASHTAG.findall(message)),
            "pending_post_id": pending_post_id, "has_reactions": False, "reply_count": 0,
            "last_reply_at": 0, "participants": None, "metadata": {},
        }
        if file_ids:
            post["file_ids"] = list(file_ids)
        return post

    def _store_post(self, post: dict[str, object], channel: FakeChannel) -> None:
        post_id = str(post["id"])
        self.state.posts[post_id] = post
        self.state.channel_posts[channel.id].append(post_id)
        now = millis(post, "create_at")
        channel.last_post_at = now
        channel.total_msg_count += 1
        if post["root_id"]:
            self.state.replies.setdefault(str(post["root_id"]), []).append(post_id)
        else:
            channel.last_root_post_at = now
            channel.total_msg_count_root += 1

    def _posted_event(
        self, post: dict[str, object], channel: FakeChannel, author: FakeUser, set_online: bool
    ) -> WsEvent:
        props = post["props"]
        assert isinstance(props, dict)
        sender = f"@{author.username}"
        if str(post["type"]).startswith("system_"):
            sender = "System"
        elif props.get("override_username") and channel.type != "D":
            sender = str(props["override_username"])
        display = f"@{author.username}" if channel.type == "D" else channel.display_name
        mentions = mentioned_user_ids(
            str(post["message"]), channel, author, self.state, self.hub.online_user_ids()
        )
        return WsEvent(
            event="posted",
            data={
                "channel_display_name": display, "channel_name": channel.name,
                "channel_type": channel.type, "post": orjson.dumps(post).decode(),
                "sender_name": sender, "set_online": set_online, "team_id": channel.team_id,
            },
            broadcast=Broadcast(channel_id=channel.id),
            mentions=frozenset(mentions),
        )

    def _publish_reaction(self, event: str, reaction: dict[str, object]) -> None:
        self.hub.publish(WsEvent(
            event=event, data={"reaction": orjson.dumps(reaction).decode()},
            broadcast=Broadcast(channel_id=str(reaction["channel_id"])),
        ))

    def _notify(self, created: PostCreated) -> None:
        if not self.post_listeners:
            return
        if self.background is None:
            logger.warning("post %s: listeners skipped, server not running", created.post["id"])
            return
        for listener in list(self.post_listeners):
            self.background.start_soon(_run_listener, listener, created)


async def _run_listener(listener: PostListener, created: PostCreated) -> None:
    try:
        await listener(created)
    except Exception:  # error boundary: one listener call
        logger.exception("post-created listener %r failed on post %s", listener,
                         created.post["id"])


def _check_message_length(message: str) -> None:
    if len(message) > MAX_POST_RUNES:
        raise AppError(400, "model.post.is_valid.message_length.app_error",
                       "Message property is longer than the maximum permitted length.")


def _validated_patch(patch: Mapping[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, kind in (("message", str), ("props", dict), ("is_pinned", bool),
                      ("file_ids", list), ("has_reactions", bool)):
        if key in patch and patch[key] is not None:
            if not isinstance(patch[key], kind):
                raise AppError(400, "api.context.invalid_body_param.app_error",
                               "Invalid or missing patch in request body.")
            out[key] = patch[key]
    if "message" in out:
        _check_message_length(str(out["message"]))
    return out


def post_or_404(state: FakeState, post_id: str) -> dict[str, object]:
    if not is_valid_id(post_id):
        raise post_not_found()
    return state.post(post_id)
