"""The REST surface the actors depend on: one module, one Protocol per capability.

``mattermost.rest.MattermostClient`` implements all of them; webhook-only mode's
``PayloadDirectory`` implements ``ChannelDirectory`` only. An actor names the capability it
uses, so its test doubles and the PostgreSQL-era replicas implement exactly that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class ChannelDirectory(Protocol):
    """Channels, their members and users (the mapper)."""

    async def get_channel(self, channel_id: str) -> Mapping[str, Any]: ...
    async def get_channel_members(self, channel_id: str, *, page: int = 0,
                                  per_page: int = 200) -> list[Mapping[str, Any]]: ...
    async def get_user(self, user_id: str) -> Mapping[str, Any]: ...


class TeamChannels(Protocol):
    """Finding and joining channels (auto-join)."""

    async def get_team_by_name(self, name: str) -> Mapping[str, Any]: ...
    async def get_channel_by_name(self, team_id: str, name: str) -> Mapping[str, Any]: ...
    async def get_public_channels(self, team_id: str, *, page: int = 0,
                                  per_page: int = 200) -> list[Mapping[str, Any]]: ...
    async def add_channel_member(self, channel_id: str, user_id: str) -> Mapping[str, Any]: ...


class PostHistory(Protocol):
    """Reading a channel's posts (in-doubt replies)."""

    async def get_posts(self, channel_id: str, *, since: int | None = None,
                        after: str | None = None, before: str | None = None, page: int = 0,
                        per_page: int = 60) -> Mapping[str, Any]: ...


class Sweeping(PostHistory, Protocol):
    """Posts plus the bot's teams and channels (the sweeper's backfill, polling, catch-up)."""

    async def get_my_teams(self) -> list[Mapping[str, Any]]: ...
    async def get_my_channels(self, team_id: str) -> list[Mapping[str, Any]]: ...


class Identity(Protocol):
    """Who the token is (the reconnect loop's token check)."""

    async def get_me(self) -> Mapping[str, Any]: ...
