"""MCHAT_AUTO_JOIN: join ``team/channel`` (or every public channel of ``team/*``) at start and
whenever such channels appear.

``channel_created`` reaches only the creator's sockets on a real server, so new public channels
are found by re-reading the team's public channel list every ``interval_s`` (paged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import attrs
import trio

from ..config import MattermostConfig
from ..errors import MattermostApiError, MattermostUnavailable, RateLimited
from ..mattermost.api import TeamChannels

logger = logging.getLogger(__name__)

PAGE = 200


@attrs.define
class AutoJoiner:
    cfg: MattermostConfig
    rest: TeamChannels
    bot_user_id: str
    interval_s: float = 60.0
    joined: set[str] = attrs.Factory(set)
    errors: int = 0

    async def join_configured(self) -> None:
        """One pass over MCHAT_AUTO_JOIN; problems are logged and counted, never fatal."""
        for spec in self.cfg.auto_join:
            team_name, _, channel_name = spec.partition("/")
            try:
                team = await self.rest.get_team_by_name(team_name)
                if channel_name == "*":
                    for ch in await self._public_channels(str(team["id"])):
                        await self._join(ch)
                else:
                    await self._join(await self.rest.get_channel_by_name(str(team["id"]),
                                                                         channel_name))
            except (MattermostApiError, MattermostUnavailable, RateLimited) as exc:
                self.errors += 1
                logger.warning("autojoin: %s: %s", spec, exc)

    async def watch(self) -> None:
        """Re-run the pass every interval (only when something is configured)."""
        if not self.cfg.auto_join:
            return
        while True:
            await trio.sleep(self.interval_s)
            await self.join_configured()

    async def _public_channels(self, team_id: str) -> list[Mapping[str, Any]]:
        out: list[Mapping[str, Any]] = []
        page = 0
        while True:
            batch = await self.rest.get_public_channels(team_id, page=page, per_page=PAGE)
            out.extend(batch)
            if len(batch) < PAGE:
                return out
            page += 1

    async def _join(self, channel: Mapping[str, Any]) -> None:
        cid = str(channel["id"])
        if cid in self.joined or channel.get("delete_at"):
            return
        await self.rest.add_channel_member(cid, self.bot_user_id)
        self.joined.add(cid)
        logger.info("autojoin: joined %s (%s)", channel.get("name"), cid)
