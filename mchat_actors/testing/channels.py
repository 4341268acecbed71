"""The app layer for channels and memberships: create, DM/GM, join/leave, delete.

Membership changes publish the events of §3.5 and post the system messages the real server
posts (``system_join_channel``, ``system_add_to_channel``, ``system_leave_channel``,
``system_remove_from_channel``, ``system_channel_deleted``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import attrs
import orjson

from .apperror import AppError, channel_not_found, permission_denied, user_not_found
from .events import Broadcast, WsEvent
from .models import FakeChannel, FakeUser, new_id
from .state import direct_name, group_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .app import FakeApp

DEFAULT_CHANNEL = "town-square"
_CHANNEL_NAME = re.compile(r"[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?")


@attrs.define(eq=False)
class ChannelOps:
    app: FakeApp

    def add_member(
        self, actor: FakeUser, channel: FakeChannel, user: FakeUser
    ) -> dict[str, object]:
        """Join (actor == user) or add; an existing member is returned unchanged."""
        state = self.app.state
        if channel.delete_at:
            raise channel_not_found()
        if channel.is_direct_or_group:
            raise AppError(400, "api.channel.add_user_to_channel.type.app_error",
                           "Can not add user to this channel type.")
        if actor.id == user.id:
            allowed = channel.type == "O" and state.is_team_member(channel.team_id, actor.id)
        else:
            allowed = state.is_member(channel.id, actor.id)
        if not (allowed or actor.is_admin):
            raise permission_denied()
        if not state.is_team_member(channel.team_id, user.id):
            raise AppError(403, "api.channel.add_members.user_denied",
                           "The user is not a member of the channel's team.")
        if state.is_member(channel.id, user.id):
            return state.render_member(channel.id, user.id)
        state.join(channel.id, user.id)
        self.app.hub.publish(WsEvent(
            event="user_added", data={"user_id": user.id, "team_id": channel.team_id},
            broadcast=Broadcast(channel_id=channel.id),
        ))
        if actor.id == user.id:
            self._system_post(actor, channel, "system_join_channel",
                              f"{user.username} joined the channel.", {"username": user.username})
        else:
            self._system_post(actor, channel, "system_add_to_channel",
                              f"{user.username} added to the channel by {actor.username}.",
                              {"userId": actor.id, "username": actor.username,
                               "addedUserId": user.id, "addedUsername": user.username})
        return state.render_member(channel.id, user.id)

    def remove_member(self, actor: FakeUser, channel: FakeChannel, user: FakeUser) -> None:
        """Leave (actor == user) or remove; ``user_removed`` to the channel and to the user."""
        state = self.app.state
        if channel.is_direct_or_group:
            raise AppError(400, "api.channel.remove_user_from_channel.app_error",
                           "Can not remove user from this channel type.")
        if channel.name == DEFAULT_CHANNEL:
            raise AppError(400, "api.channel.remove.default.app_error",
                           f"Unable to remove user from the default channel {DEFAULT_CHANNEL}.")
        if actor.id != user.id and not (state.is_member(channel.id, actor.id) or actor.is_admin):
            raise permission_denied()
        if not state.is_member(channel.id, user.id):
            raise AppError(404, "app.channel.get_member.missing.app_error",
                           "No channel member found for that user ID and channel ID.")
        del state.members[channel.id][user.id]
        if actor.id == user.id:
            self._system_post(actor, channel, "system_leave_channel",
                              f"{user.username} left the channel.", {"username": user.username})
        else:
            self._system_post(actor, channel, "system_remove_from_channel",
                              f"{user.username} was removed from the channel.",
                              {"removedUserId": user.id, "removedUsername": user.username})
        self.app.hub.publish(WsEvent(
            event="user_removed", data={"user_id": user.id, "remover_id": actor.id},
            broadcast=Broadcast(channel_id=channel.id),
        ))
        self.app.hub.publish(WsEvent(
            event="user_removed", data={"channel_id": channel.id, "remover_id": actor.id},
            broadcast=Broadcast(user_id=user.id),
        ))

    def create_channel(
        self, actor: FakeUser, team_id: str, name: str, display_name: str, channel_type: str,
        *, purpose: str = "", header: str = "",
    ) -> FakeChannel:
        state = self.app.state
        if team_id not in state.teams:
            raise AppError(404, "app.team.get.find.app_error", "Unable to find the existing team.")
        if not (state.is_team_member(team_id, actor.id) or actor.is_admin):
            raise permission_denied()
        if channel_type not in ("O", "P"):
            raise AppError(400, "model.channel.is_valid.type.app_error", "Invalid type.")
        if not _CHANNEL_NAME.fullmatch(name):
            raise AppError(400, "model.channel.is_valid.name.app_error", "Invalid channel name.")
        if not 0 < len(display_name) <= 64:
            raise AppError(400, "model.channel.is_valid.display_name.app_error",
                           "Invalid display name.")
        if any(c.name == name and c.team_id == team_id for c in state.channels.values()):
            raise AppError(400, "store.sql_channel.save_channel.exists.app_error",
                           "A channel with that name already exists on the same team.")
        now = state.now_ms()
        channel = FakeChannel(id=new_id(), name=name, display_name=display_name,
                              type=channel_type, team_id=team_id, creator_id=actor.id,
                              create_at=now, update_at=now, purpose=purpose, header=header)
        state.add_channel(channel)
        state.join(channel.id, actor.id).roles = "channel_user channel_admin"
        self.app.hub.publish(WsEvent(
            event="channel_created", data={"channel_id": channel.id, "team_id": team_id},
            broadcast=Broadcast(user_id=actor.id),
        ))
        return channel

    def direct(self, actor: FakeUser, a: FakeUser, b: FakeUser) -> tuple[FakeChannel, bool]:
        """The DM of ``a`` and ``b`` (created if needed); ``direct_added`` only on creation."""
        state = self.app.state
        if actor.id not in (a.id, b.id) and not actor.is_admin:
            raise permission_denied()
        existing = state.find_direct(a.id, b.id)
        if existing is not None:
            return existing, False
        now = state.now_ms()
        channel = FakeChannel(id=new_id(), name=direct_name(a.id, b.id), display_name="",
                              type="D", team_id="", creator_id=actor.id, create_at=now,
                              update_at=now)
        state.add_channel(channel)
        for user in {a.id: a, b.id: b}.values():
            state.join(channel.id, user.id)
        teammate = b if actor.id == a.id else a
        self.app.hub.publish(WsEvent(
            event="direct_added", data={"creator_id": actor.id, "teammate_id": teammate.id},
            broadcast=Broadcast(channel_id=channel.id),
        ))
        return channel, True

    def group(self, actor: FakeUser, users: Sequence[FakeUser]) -> tuple[FakeChannel, bool]:
        """The group channel of ``users`` (3–8 including the caller)."""
        state = self.app.state
        ids = sorted({u.id for u in users} | {actor.id})
        if not 3 <= len(ids) <= 8:
            raise AppError(400, "api.channel.create_group.bad_size.app_error",
                           "Group message channels must contain at least 3 and no more than 8 "
                           "users.")
        name = group_name(ids)
        for channel in state.channels.values():
            if channel.type == "G" and channel.name == name:
                return channel, False
        now = state.now_ms()
        display = ", ".join(sorted(state.users[i].username for i in ids))
        channel = FakeChannel(id=new_id(), name=name, display_name=display, type="G",
                              team_id="", creator_id=actor.id, create_at=now, update_at=now)
        state.add_channel(channel)
        for user_id in ids:
            state.join(channel.id, user_id)
        self.app.hub.publish(WsEvent(
            event="group_added", data={"teammate_ids": orjson.dumps(ids).decode()},
            broadcast=Broadcast(channel_id=channel.id),
        ))
        return channel, True

    def delete_channel(self, actor: FakeUser, channel: FakeChannel) -> None:
        """Archive: a ``system_channel_deleted`` post, then ``channel_deleted`` to the team."""
        state = self.app.state
        if channel.is_direct_or_group:
            raise AppError(400, "api.channel.delete_channel.type.invalid",
                           "Unable to delete direct or group message channels.")
        if channel.delete_at:
            raise AppError(400, "api.channel.delete_channel.deleted.app_error",
                           "The channel has been archived or deleted.")
        if channel.name == DEFAULT_CHANNEL:
            raise AppError(400, "api.channel.delete_channel.cannot.app_error",
                           f"Unable to delete the default channel {DEFAULT_CHANNEL}.")
        if not (state.is_member(channel.id, actor.id) or actor.is_admin):
            raise permission_denied()
        self._system_post(actor, channel, "system_channel_deleted",
                          f"{actor.username} archived the channel.",
                          {"username": actor.username})
        now = state.now_ms()
        channel.delete_at = now
        channel.update_at = now
        self.app.hub.publish(WsEvent(
            event="channel_deleted", data={"channel_id": channel.id, "delete_at": now},
            broadcast=Broadcast(team_id=channel.team_id),
        ))

    def user(self, key: str) -> FakeUser:
        user = self.app.state.find_user(key)
        if user is None:
            raise user_not_found()
        return user

    def _system_post(self, actor: FakeUser, channel: FakeChannel, post_type: str, message: str,
                     props: dict[str, object]) -> None:
        self.app.create_post(actor, channel.id, message, post_type=post_type, props=props,
                             system=True)
