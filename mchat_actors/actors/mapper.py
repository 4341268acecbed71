"""Mattermost users and channels -> agent users and rooms, with a cache in front of the DB.

Users: the ``mchat_user_mapping`` row, else an agent user with the same e-mail, else a new agent
user. Channels: the ``mchat_channel_mapping`` row, else a new room whose members are the channel's
members (paged through REST). Member events keep room membership in step; nobody is removed
except by an explicit ``user_removed``.

The mapper is called by the channel serializers (request/response in the caller's task): a
per-key lock makes concurrent first sightings of one user or channel create it only once.
``request_class`` (the caller's lane's ``ratelimit.RequestClass``, raised while the lane holds a
question) makes the REST reads through ``rest_in(request_class)``, so a question's mapping goes
ahead of the background mapping of idle channels in the shared budget.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar

import attrs
import trio

from ..chat.protocol import ChatService
from ..errors import ChatServiceTimeout, MattermostAuthError, MchatActorsError
from ..mattermost.api import ChannelDirectory
from ..messages import AgentUserId, ChannelId, MattermostUserId, RoomId
from ..ports import ChannelInfo as ChannelInfo
from ..ratelimit import RequestClass
from ..repository import Repositories, sqlite_repositories
from ..store import Store

logger = logging.getLogger(__name__)

T = TypeVar("T")
_ROOM_KINDS = {"O": "channel", "P": "private", "D": "direct", "G": "group"}
MEMBERS_PAGE = 200


@attrs.define
class MapperStats:
    users_created: int = 0
    users_matched_by_email: int = 0
    rooms_created: int = 0
    cache_hits: int = 0


@attrs.define
class Mapper:
    store: Store
    rest: ChannelDirectory
    chat: ChatService
    bot_user_id: str
    # the REST reads in a lane's request class (``MattermostClient.with_priority``)
    rest_in: Callable[[RequestClass], ChannelDirectory] | None = None
    timeout_s: float = 60.0  # every ChatService call (CHAT_TIMEOUT)
    stats: MapperStats = attrs.Factory(MapperStats)
    repos: Repositories = attrs.Factory(sqlite_repositories)
    _channels: dict[str, ChannelInfo] = attrs.Factory(dict)
    _users: dict[str, AgentUserId] = attrs.Factory(dict)
    _locks: dict[str, trio.Lock] = attrs.Factory(dict)
    _holders: dict[str, RequestClass | None] = attrs.Factory(dict)  # by lock key

    @asynccontextmanager
    async def _locked(self, key: str, request_class: RequestClass | None) -> AsyncIterator[None]:
        """The per-key lock; a question's lane waiting for it raises the holder's class (the
        holder may be a background lane mapping the same user)."""
        lock = self._locks.setdefault(key, trio.Lock())
        if request_class is None:
            await lock.acquire()
        else:
            with request_class.lending_to(self._holders.get(key)):
                await lock.acquire()
        self._holders[key] = request_class
        try:
            yield
        finally:
            del self._holders[key]
            lock.release()

    async def _chat(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """A ChatService call under ``timeout_s``; a timeout is ``ChatServiceTimeout`` (the
        dispatcher retries the event, then parks it)."""
        try:
            with trio.fail_after(self.timeout_s):
                return await call()
        except trio.TooSlowError:
            raise ChatServiceTimeout(f"mapper: {what} took over {self.timeout_s:g} s") from None

    def _rest(self, request_class: RequestClass | None) -> ChannelDirectory:
        if request_class is None or self.rest_in is None:
            return self.rest
        return self.rest_in(request_class)

    async def channel(self, channel_id: ChannelId, *,
                      request_class: RequestClass | None = None) -> ChannelInfo:
        """The channel's room, creating it (and its members) on first sight."""
        cached = self._channels.get(channel_id)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        async with self._locked(f"c:{channel_id}", request_class):
            if channel_id in self._channels:
                return self._channels[channel_id]
            row = await self.store.run(self.repos.mapping.get_channel, channel_id)
            if row is None:
                row = await self._create_room(channel_id, request_class)
            info = ChannelInfo.from_row(row)
            self._channels[channel_id] = info
            return info

    async def _create_room(self, channel_id: ChannelId,
                           request_class: RequestClass | None) -> dict[str, Any]:
        ch = await self._rest(request_class).get_channel(channel_id)
        ctype = str(ch.get("type") or "O")
        name = str(ch.get("display_name") or ch.get("name") or channel_id)
        room = await self._chat("create_room", partial(
            self.chat.create_room, name=name, kind=_ROOM_KINDS.get(ctype, "channel")))
        row = await self.store.run(
            self.repos.mapping.insert_channel, channel_id=channel_id,
            team_id=str(ch.get("team_id") or ""),
            name=str(ch.get("name") or ""), display_name=name, channel_type=ctype,
            room_id=room.id)
        if row["agent_room_id"] == room.id:
            self.stats.rooms_created += 1
            logger.info("mapper: channel %s -> new room %s", channel_id, room.id)
        await self._add_all_members(channel_id, RoomId(row["agent_room_id"]), request_class)
        return row

    async def _add_all_members(self, channel_id: ChannelId, room: RoomId,
                               request_class: RequestClass | None) -> None:
        for uid in await self._member_ids(channel_id, request_class):
            agent = await self.user(uid, request_class=request_class)
            await self._chat("add_room_member", partial(self.chat.add_room_member, room, agent))

    async def _member_ids(self, channel_id: ChannelId,
                          request_class: RequestClass | None = None) -> list[MattermostUserId]:
        """The channel's members now, without the bot (paged through REST)."""
        found: list[MattermostUserId] = []
        page = 0
        while True:
            members = await self._rest(request_class).get_channel_members(channel_id, page=page,
                                                          per_page=MEMBERS_PAGE)
            for member in members:
                uid = str(member.get("user_id") or "")
                if uid and uid != self.bot_user_id:
                    found.append(MattermostUserId(uid))
            if len(members) < MEMBERS_PAGE:
                return found
            page += 1

    async def resync_members(self, channel_id: ChannelId) -> tuple[int, int]:
        """Make the room's members the channel's current members; ``(added, removed)``.

        Member events may have been missed while disconnected or polling: someone who left a
        private channel must lose access to its memories. Only for a ChatService that can
        replace a room's members (the embedded one); others keep what events told them.
        """
        set_members = getattr(self.chat, "set_room_members", None)
        row = await self.store.run(self.repos.mapping.get_channel, channel_id)
        if set_members is None or row is None:
            return 0, 0
        users = [await self.user(uid) for uid in await self._member_ids(channel_id)]
        added, removed = await self._chat("set_room_members", partial(
            set_members, RoomId(row["agent_room_id"]), users))
        if added or removed:
            logger.info("mapper: channel %s members re-checked: %d joined, %d left", channel_id,
                        added, removed)
        return int(added), int(removed)

    async def resync_all_members(self) -> None:
        """``resync_members`` for every mapped private channel and group DM (after a
        reconnect, or while polling). Public channels' memories are team-wide and a DM's
        members never change, so they cost no request."""
        for row in await self.store.run(self.repos.mapping.list_channels):
            if row.get("channel_type") in PRIVATE_TYPES:
                await self.resync_members(ChannelId(row["mchat_channel_id"]))

    async def user(self, user_id: MattermostUserId, *,
                   request_class: RequestClass | None = None) -> AgentUserId:
        """The agent user for a Mattermost user: DB, then e-mail match, then create."""
        cached = self._users.get(user_id)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        async with self._locked(f"u:{user_id}", request_class):
            if user_id in self._users:
                return self._users[user_id]
            row = await self.store.run(self.repos.mapping.get_user, user_id)
            if row is None:
                row = await self._create_user(user_id, request_class)
            agent = AgentUserId(row["agent_user_id"])
            self._users[user_id] = agent
            return agent

    async def _create_user(self, user_id: MattermostUserId,
                           request_class: RequestClass | None) -> dict[str, Any]:
        u = await self._rest(request_class).get_user(user_id)
        email = str(u.get("email") or "") or None
        username = str(u.get("username") or user_id)
        existing = await self._chat("find_user_by_email", partial(
            self.chat.find_user_by_email, email)) if email else None
        if existing is not None:
            agent, matched_by = existing, "email"
        else:
            full = " ".join(p for p in (u.get("last_name"), u.get("first_name")) if p)
            agent = await self._chat("create_user", partial(
                self.chat.create_user, name=full or u.get("nickname") or username, email=email))
            matched_by = "created"
        row = await self.store.run(self.repos.mapping.insert_user, user_id=user_id,
                                   username=username, email=email, agent_user_id=agent.id,
                                   matched_by=matched_by)
        if matched_by == "email":
            self.stats.users_matched_by_email += 1
        else:
            self.stats.users_created += 1
        logger.info("mapper: user %s -> agent user %s (%s)", user_id, row["agent_user_id"],
                    matched_by)
        return row

    async def member_joined(self, channel_id: ChannelId, user_id: MattermostUserId) -> None:
        if user_id == self.bot_user_id:
            await self.channel(channel_id)
            return
        info = await self.channel(channel_id)
        agent = await self.user(user_id)
        await self._chat("add_room_member", partial(self.chat.add_room_member, info.room_id,
                                                     agent))

    async def member_left(self, channel_id: ChannelId, user_id: MattermostUserId) -> None:
        if user_id == self.bot_user_id:
            return
        row = await self.store.run(self.repos.mapping.get_channel, channel_id)
        agent = self._users.get(user_id)
        if agent is None:
            urow = await self.store.run(self.repos.mapping.get_user, user_id)
            agent = AgentUserId(urow["agent_user_id"]) if urow else None
        if row is not None and agent is not None:
            await self._chat("remove_room_member", partial(
                self.chat.remove_room_member, RoomId(row["agent_room_id"]), agent))

    async def set_sync(self, channel_id: ChannelId, enabled: bool) -> bool:
        """Turn intake on/off (admin API); updates the DB and the cache together."""
        changed = await self.store.run(self.repos.mapping.set_channel_sync, channel_id, enabled)
        info = self._channels.get(channel_id)
        if info is not None:
            self._channels[channel_id] = attrs.evolve(info, sync_enabled=enabled)
        return changed


PRIVATE_TYPES = ("P", "G")  # Mattermost channel types whose members gate their memories


@attrs.define
class MembershipCheck:
    """The sweeper's after-sweep hook: re-check every channel's members after a backfill (a
    reconnect) and at most every ``poll_every_s`` while polling. Errors are logged and counted:
    a failed check is tried again at the next sweep, never a crash."""

    mapper: Mapper
    poll_every_s: float = 60.0
    checks: int = 0
    failures: int = 0
    _last: float = -1e18

    async def __call__(self, source: str) -> None:
        now = trio.current_time()
        if source == "verify":  # the socket is up: member events are arriving
            return
        if source != "backfill" and now - self._last < self.poll_every_s:
            return
        self._last = now
        try:
            await self.mapper.resync_all_members()
            self.checks += 1
        except MattermostAuthError:
            raise
        except MchatActorsError as exc:  # Mattermost or ChatService errors: next sweep
            self.failures += 1
            logger.warning("mapper: member re-check failed (%s); next sweep tries again",
                           type(exc).__name__)
