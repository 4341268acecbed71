"""The data of the fake server: users, teams, channels, memberships, posts, reactions.

Pure bookkeeping and JSON rendering; nothing here publishes events (see ``app.py``).
Posts are stored as the server's Post JSON (dicts) and copied on the way out.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import attrs
import orjson

from .apperror import (
    AppError,
    channel_not_found,
    invalid_url_param,
    permission_denied,
    post_not_found,
    user_not_found,
)
from .models import FakeChannel, FakeTeam, FakeUser, is_valid_id, wall_ms

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping


@attrs.define(kw_only=True)
class Membership:
    """A user's membership of a channel (the ChannelMember record)."""

    roles: str = "channel_user"
    joined_at: int = 0
    last_viewed_at: int = 0
    msg_count: int = 0


@attrs.define
class FakeState:
    """Everything the fake server knows. One instance per server, no module state."""

    users: dict[str, FakeUser] = attrs.field(factory=dict)
    teams: dict[str, FakeTeam] = attrs.field(factory=dict)
    team_members: dict[str, set[str]] = attrs.field(factory=dict)
    channels: dict[str, FakeChannel] = attrs.field(factory=dict)
    members: dict[str, dict[str, Membership]] = attrs.field(factory=dict)
    posts: dict[str, dict[str, object]] = attrs.field(factory=dict)
    channel_posts: dict[str, list[str]] = attrs.field(factory=dict)
    replies: dict[str, list[str]] = attrs.field(factory=dict)  # root id -> reply ids
    reactions: dict[str, dict[tuple[str, str], dict[str, object]]] = attrs.field(factory=dict)
    default_team_id: str = ""
    _tokens: dict[str, str] = attrs.field(factory=dict)
    _by_username: dict[str, str] = attrs.field(factory=dict)
    _last_ms: int = 0

    # -- time ----------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """Wall-clock ms, strictly increasing within this server (deterministic ordering)."""
        now = max(wall_ms(), self._last_ms + 1)
        self._last_ms = now
        return now

    # -- registration (seeding) ----------------------------------------------------------------

    def add_user(self, user: FakeUser) -> None:
        self.users[user.id] = user
        self._by_username[user.username.lower()] = user.id
        self._tokens[user.token] = user.id

    def add_team(self, team: FakeTeam) -> None:
        self.teams[team.id] = team
        self.team_members.setdefault(team.id, set())
        if not self.default_team_id:
            self.default_team_id = team.id

    def add_channel(self, channel: FakeChannel) -> None:
        self.channels[channel.id] = channel
        self.members.setdefault(channel.id, {})
        self.channel_posts.setdefault(channel.id, [])

    def join(self, channel_id: str, user_id: str) -> Membership:
        now = self.now_ms()
        member = Membership(joined_at=now, last_viewed_at=now)
        self.members[channel_id][user_id] = member
        return member

    # -- lookups -------------------------------------------------------------------------------

    def revoke_token(self, token: str) -> bool:
        """Forget ``token`` (an admin revoked it): later requests with it get 401."""
        return self._tokens.pop(token, None) is not None

    def user_by_token(self, token: str | None) -> FakeUser | None:
        if not token:
            return None
        user_id = self._tokens.get(token)
        return self.users.get(user_id) if user_id else None

    def find_user(self, key: str) -> FakeUser | None:
        """By id or username (case-insensitive); ``None`` when unknown."""
        if key in self.users:
            return self.users[key]
        user_id = self._by_username.get(key.lower().lstrip("@"))
        return self.users.get(user_id) if user_id else None

    def user(self, key: str) -> FakeUser:
        found = self.find_user(key)
        if found is None:
            raise user_not_found()
        return found

    def find_channel(self, key: str, team_id: str = "") -> FakeChannel | None:
        """By id, or by name (in ``team_id``, else the default team, else any team)."""
        if key in self.channels:
            return self.channels[key]
        matches = [c for c in self.channels.values() if c.name == key]
        for wanted in (team_id, self.default_team_id):
            for channel in matches:
                if wanted and channel.team_id == wanted:
                    return channel
        return matches[0] if matches and not team_id else None

    def channel(self, key: str) -> FakeChannel:
        found = self.find_channel(key)
        if found is None:
            raise channel_not_found()
        return found

    def post(self, post_id: str, *, include_deleted: bool = False) -> dict[str, object]:
        post = self.posts.get(post_id)
        if post is None or (post["delete_at"] and not include_deleted):
            raise post_not_found()
        return post

    def is_member(self, channel_id: str, user_id: str) -> bool:
        return user_id in self.members.get(channel_id, {})

    def member_ids(self, channel_id: str) -> list[str]:
        return list(self.members.get(channel_id, {}))

    def is_team_member(self, team_id: str, user_id: str) -> bool:
        return user_id in self.team_members.get(team_id, set())

    def teams_of(self, user_id: str) -> list[FakeTeam]:
        return [t for t in self.teams.values() if user_id in self.team_members[t.id]]

    def can_read(self, user: FakeUser, channel: FakeChannel) -> bool:
        """Read permission: members always; public channels for team members; admins."""
        if user.is_admin or self.is_member(channel.id, user.id):
            return True
        return channel.type == "O" and self.is_team_member(channel.team_id, user.id)

    def readable_channel(self, user: FakeUser, channel_id: str) -> FakeChannel:
        """The channel if ``user`` may read it: 400 bad id, 404 unknown, 403 not allowed."""
        if not is_valid_id(channel_id):
            raise invalid_url_param("channel_id")
        channel = self.channels.get(channel_id)
        if channel is None:
            raise channel_not_found()
        if not self.can_read(user, channel):
            raise permission_denied()
        return channel

    def find_direct(self, a: str, b: str) -> FakeChannel | None:
        name = direct_name(a, b)
        for channel in self.channels.values():
            if channel.type == "D" and channel.name == name:
                return channel
        return None

    def thread_ids(self, root_id: str) -> list[str]:
        return [root_id, *self.replies.get(root_id, [])]

    def iter_channel_posts(self, channel_id: str) -> Iterator[dict[str, object]]:
        for post_id in self.channel_posts.get(channel_id, []):
            yield self.posts[post_id]

    # -- rendering -----------------------------------------------------------------------------

    def render_post(self, post: dict[str, object]) -> dict[str, object]:
        """A deep copy of the stored post with the computed fields filled in."""
        out: dict[str, object] = orjson.loads(orjson.dumps(post))
        root_id = str(post["root_id"] or post["id"])
        live = [r for r in self.replies.get(root_id, []) if not self.posts[r]["delete_at"]]
        out["reply_count"] = len(live)
        out["last_reply_at"] = max((millis(self.posts[r], "create_at") for r in live), default=0)
        reactions = self.reactions.get(str(post["id"]))
        if reactions:
            out["metadata"] = {"reactions": [dict(r) for r in reactions.values()]}
        return out

    def render_user(self, user: FakeUser) -> dict[str, object]:
        return {
            "id": user.id, "create_at": user.create_at, "update_at": user.create_at,
            "delete_at": 0, "username": user.username, "auth_data": "", "auth_service": "",
            "email": user.email, "email_verified": True, "nickname": user.nickname,
            "first_name": user.first_name, "last_name": user.last_name, "position": "",
            "roles": user.roles, "locale": "ko",
            "notify_props": {"channel": "true", "desktop": "mention", "email": "true",
                             "mention_keys": "", "push": "mention"},
            "timezone": {"automaticTimezone": "Asia/Seoul", "manualTimezone": "",
                         "useAutomaticTimezone": "true"},
            "is_bot": user.is_bot, "bot_description": "", "disable_welcome_email": False,
            "last_picture_update": 0,
        }

    def render_team(self, team: FakeTeam) -> dict[str, object]:
        return {
            "id": team.id, "create_at": team.create_at, "update_at": team.create_at,
            "delete_at": 0, "display_name": team.display_name, "name": team.name,
            "description": "", "email": "", "type": team.type, "company_name": "",
            "allowed_domains": "", "invite_id": "", "allow_open_invite": False,
            "scheme_id": None, "group_constrained": None, "policy_id": None,
            "cloud_limits_archived": False,
        }

    def render_channel(self, channel: FakeChannel) -> dict[str, object]:
        return {
            "id": channel.id, "create_at": channel.create_at, "update_at": channel.update_at,
            "delete_at": channel.delete_at, "team_id": channel.team_id, "type": channel.type,
            "display_name": channel.display_name, "name": channel.name,
            "header": channel.header, "purpose": channel.purpose,
            "last_post_at": channel.last_post_at, "total_msg_count": channel.total_msg_count,
            "extra_update_at": 0, "creator_id": channel.creator_id, "scheme_id": None,
            "props": None, "group_constrained": None, "shared": None,
            "total_msg_count_root": channel.total_msg_count_root, "policy_id": None,
            "last_root_post_at": channel.last_root_post_at,
        }

    def render_member(self, channel_id: str, user_id: str) -> dict[str, object]:
        member = self.members.get(channel_id, {}).get(user_id)
        if member is None:
            raise AppError(404, "app.channel.get_member.missing.app_error",
                           "No channel member found for that user ID and channel ID.")
        return {
            "channel_id": channel_id, "user_id": user_id, "roles": member.roles,
            "last_viewed_at": member.last_viewed_at, "msg_count": member.msg_count,
            "mention_count": 0, "mention_count_root": 0, "urgent_mention_count": 0,
            "msg_count_root": 0,
            "notify_props": {"desktop": "default", "email": "default", "ignore_channel_mentions":
                             "default", "mark_unread": "all", "push": "default"},
            "last_update_at": member.joined_at, "scheme_guest": False, "scheme_user": True,
            "scheme_admin": False, "explicit_roles": "",
        }

    def get_user_or_404(self, user_id: str) -> FakeUser:
        user = self.users.get(user_id)
        if user is None:
            raise user_not_found()
        return user


def millis(record: Mapping[str, object], key: str) -> int:
    """An integer field (a ms timestamp) of a stored post or reaction."""
    value = record[key]
    assert isinstance(value, int)
    return value


def direct_name(a: str, b: str) -> str:
    """A DM channel's name: the two user ids sorted and joined by ``__``."""
    return "__".join(sorted((a, b)))


def group_name(user_ids: Iterable[str]) -> str:
    """A group channel's name: sha1 of the sorted member ids joined by commas."""
    return hashlib.sha1(",".join(sorted(user_ids)).encode()).hexdigest()  # noqa: S324
