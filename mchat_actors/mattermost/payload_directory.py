"""Users and channels as the integration payloads name them: the mapper's "REST" in
webhook-only mode.

Without a bot token nothing can be read from Mattermost, so what the mapper needs on first
sight of a channel or user (``get_channel``, ``get_channel_members``, ``get_user``) comes from
the outgoing-webhook and slash-command payloads, recorded by the HTTP surface before the event
is injected: ids and names exactly as Mattermost sent them (``channel_id``, ``channel_name``,
``team_id``, ``user_id``, ``user_name``).

Channel types: outgoing webhooks fire only in public channels, so their channels are ``O``. A
slash command does not say where it ran: a name of two user ids joined by ``__`` is a DM
(``D``); anything else is taken as private (``P``) until an outgoing webhook shows it public,
so a memory told in an unknown channel is never treated as public. The members of a room are
the users seen in it (and the mapper adds each new asker). Entries live in memory: after a
restart the mapping tables already hold every channel and user seen before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import MattermostApiError

_DM_NAME = re.compile(r"[a-z0-9]{26}__[a-z0-9]{26}")


@attrs.define
class PayloadDirectory:
    _channels: dict[str, dict[str, str]] = attrs.Factory(dict)
    _users: dict[str, dict[str, str]] = attrs.Factory(dict)
    _members: dict[str, dict[str, None]] = attrs.Factory(dict)  # channel -> users, in order

    def record(self, *, channel_id: str, channel_name: str, team_id: str, user_id: str,
               user_name: str, public: bool) -> bool:
        """Remember a payload's channel and user; True when the user is new in the channel."""
        known = self._channels.get(channel_id)
        if public:
            kind = "O"
        elif known is not None:
            kind = known["type"]
        else:
            kind = "D" if _DM_NAME.fullmatch(channel_name) else "P"
        self._channels[channel_id] = {
            "id": channel_id, "name": channel_name or (known or {}).get("name", ""),
            "display_name": channel_name or (known or {}).get("display_name", ""),
            "team_id": "" if kind == "D" else team_id, "type": kind}
        if user_name or user_id not in self._users:
            self._users[user_id] = {"id": user_id, "username": user_name or user_id}
        members = self._members.setdefault(channel_id, {})
        if user_id in members:
            return False
        members[user_id] = None
        return True

    def channel_name(self, channel_id: str) -> str | None:
        """The channel's name in the latest payload (a renamed channel keeps its id)."""
        channel = self._channels.get(channel_id)
        return channel["name"] if channel is not None and channel["name"] else None

    async def get_channel(self, channel_id: str) -> Mapping[str, Any]:
        channel = self._channels.get(channel_id)
        if channel is None:
            raise MattermostApiError(404, "mchat.webhook_only.unknown_channel",
                                     "no payload named this channel yet")
        return dict(channel)

    async def get_channel_members(self, channel_id: str, *, page: int = 0,
                                  per_page: int = 200) -> list[Mapping[str, Any]]:
        ids = list(self._members.get(channel_id, {}))[page * per_page:(page + 1) * per_page]
        return [{"channel_id": channel_id, "user_id": uid} for uid in ids]

    async def get_user(self, user_id: str) -> Mapping[str, Any]:
        user = self._users.get(user_id)
        if user is None:
            raise MattermostApiError(404, "mchat.webhook_only.unknown_user",
                                     "no payload named this user yet")
        return dict(user)
