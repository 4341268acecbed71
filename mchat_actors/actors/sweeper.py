"""REST sweeps over the bot's channels: backfill after a lost connection, and polling mode.

One sweep reads the bot's channel list once per team (``GET /users/me/teams/{id}/channels``):
its ``last_post_at`` says which channels moved since this process last read them (or since the
last post handled, for a channel not read yet). Only those are read: a mapped channel forward
from its cursor (the last post handled) with ``after=`` cursors, page by page, never ``since``
with paging (``since`` ignores paging on the real server); a channel without a cursor with
``since`` from 5 s before the previous connection was lost, or when none was, before the
previous sweep began (capped at 1000 posts by the server). Posts are emitted oldest first;
duplicates are dropped downstream by post id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import attrs
import trio

from ..errors import MalformedEvent, MattermostUnavailable, RateLimited
from ..mattermost.api import Sweeping
from ..mattermost.events import posts_from_list
from ..messages import ChannelId, InboundEvent, Post, PostCreated
from ..repository import Repositories, sqlite_repositories
from ..store import Store

logger = logging.getLogger(__name__)

PAGE = 200
# The read horizon of channels without a cursor survives the process: the start of the last
# completed sweep, less this margin (posts it emitted may still have been in flight when the
# process died). A restart reads such channels from there, however long the restart took.
HORIZON_KEY = "sweep_horizon_ms"
HORIZON_MARGIN_MS = 10 * 60_000
TEAM_LIST_TTL_S = 300.0


@attrs.define
class SweepStats:
    sweeps: int = 0
    backfills: int = 0
    polls: int = 0
    verifies: int = 0  # sweeps while the WebSocket is up (a silent socket loses nothing)
    posts_emitted: int = 0
    failures: int = 0  # polling sweeps that failed (retried at the next interval)
    malformed: int = 0  # REST entries (posts, channels, teams) skipped as unreadable
    last_sweep_at: float | None = None


@attrs.define
class Sweeper:
    rest: Sweeping
    store: Store
    events: trio.MemorySendChannel[InboundEvent]
    stats: SweepStats = attrs.Factory(SweepStats)
    repos: Repositories = attrs.Factory(sqlite_repositories)
    # wall ms since when channels without a cursor must be read: the process start at first,
    # then the moment a connection was lost (None while nothing can have been missed)
    lost_since_ms: int | None = attrs.Factory(lambda: int(time.time() * 1000) - 5_000)
    _losses: int = 0  # connection_lost calls: one during a sweep outlives that sweep
    _horizon_loaded: bool = False  # the stored horizon (HORIZON_KEY) is read by the 1st sweep
    _cursors: dict[str, str] = attrs.Factory(dict)  # in-memory, ahead of the DB's
    _channels: dict[str, str] = attrs.Factory(dict)  # channel id -> type
    _teams: list[str] = attrs.Factory(list)
    _teams_at: float = -1e18
    # channel id -> the channel's last_post_at when it was last read to the end
    _read_up_to: dict[str, int] = attrs.Factory(dict)
    _lock: trio.Lock = attrs.Factory(trio.Lock)
    # wall ms since when a sweep reads channels without a cursor when no connection was lost
    # (a poll, or a verification of a silent socket): 5 s before the previous sweep began
    _swept_since_ms: int = attrs.Factory(lambda: int(time.time() * 1000) - 5_000)
    # called after every sweep with its source ("backfill", "poll" or "verify"): the member
    # re-check (actors.mapper.MembershipCheck)
    after_sweep: Callable[[str], Awaitable[None]] | None = None
    # replicas (MCHAT_REPLICAS=on): only the channels this replica owns are read (the others'
    # owners read theirs: N replicas must not spend N times the budget on backfill)
    owns: Callable[[str], bool] | None = None

    async def bot_channels(self) -> list[str]:
        """The bot's channels, mapped or not (one request per team)."""
        return sorted(await self._list_channels())

    async def _load_horizon(self) -> None:
        """A restart reads channels without a cursor from the stored horizon (the earlier of
        it and this process's start), so the time the process was down is never skipped."""
        stored = await self.store.run(self.repos.state.get_state, HORIZON_KEY)  # set by migrate
        self._horizon_loaded = True
        if stored is None or not stored.isdigit():
            return
        if self.lost_since_ms is None or int(stored) < self.lost_since_ms:
            self.lost_since_ms = int(stored)

    def connection_lost(self, *, since_ms: int | None = None) -> None:
        """Posts may be missing from ``since_ms`` (the last frame read; default: now) on:
        channels without a cursor are read from 5 s before that (the earliest such time
        is kept until a sweep that began after this call completes)."""
        at = (int(time.time() * 1000) if since_ms is None else since_ms) - 5_000
        self._losses += 1
        if self.lost_since_ms is None or at < self.lost_since_ms:
            self.lost_since_ms = at

    async def sweep(self, *, source: str,
                    done: Callable[[str], Awaitable[None]] | None = None) -> int:
        """Read every channel that moved and emit its new posts. Returns how many were emitted.
        ``done(channel)`` is awaited once a channel's posts are all emitted, or it had none to
        read (the connection then lets that channel's live events pass during a backfill).

        Costs one request per team (the bot's channel list, whose ``last_post_at`` says which
        channels moved since they were last read) plus one per moved channel (more for a
        channel with more than a page of new posts), not one per channel.
        """
        async with self._lock:  # the verification sweep and a backfill never interleave
            emitted = await self._sweep(source, done or _nothing)
        if self.after_sweep is not None:
            await self.after_sweep(source)
        return emitted

    async def _sweep(self, source: str, done: Callable[[str], Awaitable[None]]) -> int:
        started_ms = int(time.time() * 1000)
        if not self._horizon_loaded:
            await self._load_horizon()
        lost_since, losses = self.lost_since_ms, self._losses
        if lost_since is None:  # nothing lost: a post newer than the previous sweep's start
            lost_since = self._swept_since_ms  # (a first post in a quiet channel) is still read
        listed = await self._list_channels()
        db_cursors = {cid: (last, created, last_at) for cid, last, created, last_at
                      in await self.store.run(self.repos.posts.cursors_with_times)}
        emitted = 0
        for cid in sorted(listed):
            if self.owns is not None and not self.owns(cid):
                continue  # another replica's channel (read again by us if we gain it)
            last, created_at, db_last_at = db_cursors.get(cid, (None, None, 0))
            moved_at = listed[cid]
            if moved_at <= self._read_up_to.get(cid, db_last_at):
                await done(cid)
                continue  # nothing new since it was last read
            cursor = self._cursors.get(cid) or last
            if cursor:
                emitted += await self._read_after(ChannelId(cid), cursor, source)
            else:
                since = lost_since
                if created_at is not None:  # mapped when its first post was met, which may
                    mapped = int(created_at * 1000) - 1_000  # not have been stored then
                    since = mapped if since is None else min(since, mapped)
                if since is None or moved_at < since:
                    await done(cid)
                    continue
                emitted += await self._read_since(ChannelId(cid), since, source)
            self._read_up_to[cid] = moved_at
            await done(cid)
        if self._losses == losses:  # a loss seen meanwhile (the verification sweep runs
            self.lost_since_ms = None  # beside the connection) is read by the next sweep
        self._swept_since_ms = started_ms - 5_000
        await self.store.run(self.repos.state.set_state, HORIZON_KEY,
                             str(started_ms - HORIZON_MARGIN_MS))
        self.stats.sweeps += 1
        if source == "backfill":
            self.stats.backfills += 1
        elif source == "verify":
            self.stats.verifies += 1
        else:
            self.stats.polls += 1
        self.stats.last_sweep_at = trio.current_time()
        return emitted

    async def poll_forever(self, interval_s: float) -> None:
        """Sweep at absolute deadlines every ``interval_s`` (no drift).

        A sweep that fails because Mattermost is unavailable or rate limits us is logged,
        counted and tried again at the next deadline: a 5xx window is not a crash. The cursors
        keep what the failed sweep had already read, so nothing is read twice or skipped.
        """
        deadline = trio.current_time()
        while True:
            try:
                await self.sweep(source="poll")
            except (MattermostUnavailable, RateLimited, MalformedEvent) as exc:
                self.stats.failures += 1
                logger.warning("sweeper: poll failed (%s); next try in %g s", exc, interval_s)
            deadline = max(deadline + interval_s, trio.current_time())
            await trio.sleep_until(deadline)

    async def catch_up(self, cid: str, since_ms: int, *taken: str | None
                       ) -> AsyncIterator[list[InboundEvent]]:
        """A lane that fell behind reads its channel again: every post after the channel's
        cursor (the last post recorded), a page at a time; a channel without a cursor is read
        from ``since_ms`` (the oldest post it dropped) on. For ``dispatcher.run``.

        ``taken``: the cursor to start from instead of the durable one (a replica taking the
        channel over passes the cursor it read before serving it: ``resume_gained``)."""
        cursor = taken[0] if taken else await self.store.run(self.repos.posts.channel_cursor,
                                                             cid)
        ctype = self._channels.get(cid, "")

        def events(posts: list[Post]) -> list[InboundEvent]:
            return [PostCreated(post=p, channel_type=ctype, source="catch_up") for p in posts
                    if not p.delete_at]

        if cursor is None:
            posts = posts_from_list(await self.rest.get_posts(cid, since=since_ms - 1), self._bad)
            posts = [p for p in posts if p.create_at >= since_ms]
            if not posts:
                return
            yield events(posts)
            cursor = posts[-1].id  # since is capped by the server: go on with after=
        while True:
            page = posts_from_list(await self.rest.get_posts(cid, after=cursor, page=0,
                                                             per_page=PAGE), self._bad)
            if not page:
                return
            yield events(page)
            cursor = page[-1].id
            if len(page) < PAGE:
                return

    async def _list_channels(self) -> dict[str, int]:
        """The bot's channels (not deleted) -> their ``last_post_at``: one request per team
        (the team list itself is re-read every ``TEAM_LIST_TTL_S``)."""
        if trio.current_time() - self._teams_at >= TEAM_LIST_TTL_S:
            self._teams = [str(t["id"]) for t in
                           self._entries(await self.rest.get_my_teams(), "teams")]
            self._teams_at = trio.current_time()
        moved: dict[str, int] = {}
        for team in self._teams:
            for ch in self._entries(await self.rest.get_my_channels(team), "channels"):
                if not ch.get("delete_at"):
                    cid = str(ch["id"])
                    self._channels[cid] = str(ch.get("type") or "")
                    moved[cid] = max(moved.get(cid, 0), int(ch.get("last_post_at") or 0))
        return moved

    def _entries(self, answer: Any, what: str) -> list[Mapping[str, Any]]:
        """The objects with an ``id`` in a REST list answer; the rest skipped and counted.

        Raises:
            MalformedEvent: the answer is not a list at all.
        """
        if not isinstance(answer, list):
            raise MalformedEvent(f"{what}: expected a JSON list, got {type(answer).__name__}")
        good = [e for e in answer if isinstance(e, Mapping) and isinstance(e.get("id"), str)
                and e["id"]]
        if len(good) < len(answer):
            self._bad(f"{len(answer) - len(good)} unreadable {what} entries")
        return good

    def _bad(self, what: str) -> None:
        self.stats.malformed += 1
        logger.warning("sweeper: skipped %s", what)

    async def _read_after(self, cid: ChannelId, cursor: str, source: str) -> int:
        emitted = 0
        while True:
            posts = posts_from_list(await self.rest.get_posts(cid, after=cursor, page=0,
                                                              per_page=PAGE), self._bad)
            if not posts:
                return emitted
            emitted += await self._emit(cid, posts, source)
            cursor = posts[-1].id
            if len(posts) < PAGE:
                return emitted

    async def _read_since(self, cid: ChannelId, since_ms: int, source: str) -> int:
        posts = posts_from_list(await self.rest.get_posts(cid, since=since_ms), self._bad)
        posts = [p for p in posts if p.create_at > since_ms and not p.delete_at]
        return await self._emit(cid, posts, source)

    async def _emit(self, cid: ChannelId, posts: list[Post], source: str) -> int:
        """Emit the posts not handled yet; how many. Posts already handled (delivered by the
        WebSocket since this channel was last read) cost nothing downstream and are not
        counted: the verification sweep's count is what the socket really missed (or what is
        still on its way through a lane)."""
        ctype = self._channels.get(cid, "")
        live = [post for post in posts if not post.delete_at]
        seen = await self.store.read(self.repos.posts.seen_among, [p.id for p in live]) \
            if live else set()
        emitted = 0
        for post in live:
            if post.id in seen:
                continue
            await self.events.send(PostCreated(post=post, channel_type=ctype, source=source))
            self.stats.posts_emitted += 1
            emitted += 1
        if posts:
            self._cursors[cid] = posts[-1].id
        return emitted


async def _nothing(channel_id: str) -> None:
    """``done`` for a sweep nobody waits on per channel."""
