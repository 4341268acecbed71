"""Channel ownership across replicas (PostgreSQL only): which channels this replica serves.

Every replica keeps its own WebSocket and sees every event (docs/postgresql.md, "Replicas:
who reads the events"); this actor decides which of them it handles. Channels are grouped in
``buckets`` hash buckets (``pg.leases.bucket_of``), one lease row each, so the lease table
and the renewing statement stay small with thousands of channels. ``ChannelOwnership.run``
ticks the replica's ``pg.leases.Lessee`` every ``renew_every_s`` (heartbeat, renew, give back
the excess, take up to the fair share: one transaction) and sends an ``OwnershipChange`` when
the set of buckets held changed.

- ``owns(channel_id)``: true while this replica may act on the channel: the lease's local
  deadline (``Lessee.owns``) lapses before the database lets another replica take it, so two
  replicas never both own a channel, even when a tick fails (the deadlines then just lapse).
- ``forward_owned``: the filter between intake and dispatcher: events of channels this
  replica does not own are dropped (counted); their owner handles them from its own stream.
- ``resume_gained``: on gaining buckets, the cursors are read, each channel of them is read
  again from the cursor it had when taken (``Sweeper.catch_up``), and only then are the
  buckets served (``gate_gains``/``trust``; a second read covers the posts of the meantime):
  the posts the previous owner had not recorded when it
  died or gave the lease back are handled here (the handler drops the ones it recorded).

Wired by ``replica.py`` with MCHAT_REPLICAS=on. The writes that act on a channel are fenced
by its lease in the database (``fence_of``, ``pg.fence``): a replica whose lease expired
(paused, cut off) while a post was in its lane gets ``LeaseLost`` and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import attrs
import trio

from ..errors import MattermostError, StoreError
from ..messages import InboundEvent, PostCreated, channel_of
from ..pg.fence import Fence
from ..pg.leases import Lessee, bucket_of, declare

logger = logging.getLogger(__name__)
T = TypeVar("T")

BUCKETS = 64


class LeaseDatabase(Protocol):
    """What the actor needs of ``pg.database.PgDatabase``."""

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    async def run_own(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...


@attrs.frozen
class OwnershipChange:
    """Buckets (``bucket:<n>``) this replica gained and lost at one tick."""

    gained: frozenset[str]
    lost: frozenset[str]


@attrs.define
class OwnershipStats:
    ticks: int = 0
    tick_failures: int = 0
    last_error: str = ""
    held: int = 0
    gained: int = 0
    lost: int = 0
    dropped_events: int = 0  # events of channels another replica owns
    resumed_channels: int = 0
    resume_failures: int = 0


@attrs.define
class ChannelOwnership:
    """One replica's channel leases. ``clock``: the replica's monotonic clock (only ever
    compared with deadlines computed from the same clock)."""

    db: LeaseDatabase
    lessee: Lessee
    buckets: int = BUCKETS
    clock: Callable[[], float] = trio.current_time
    stats: OwnershipStats = attrs.Factory(OwnershipStats)
    # with resume_gained: a bucket gained (or renewed after its deadline lapsed) is owned
    # only once ``trust`` is called, after its channels' cursors were read (below)
    gate_gains: bool = False
    _held: frozenset[str] = frozenset()
    _trusted: set[str] = attrs.Factory(set)
    _trusted_channels: set[str] = attrs.Factory(set)  # served before their whole bucket
    _gains: dict[str, int] = attrs.Factory(dict)  # bucket -> which gain of it is held now
    _gain_count: int = 0

    def resource_of(self, channel_id: str) -> str:
        return bucket_of(channel_id, self.buckets)

    def owns(self, channel_id: str) -> bool:
        bucket = self.resource_of(channel_id)
        if not self.lessee.owns(bucket, self.clock()):
            self._trusted.discard(bucket)  # lapsed or lost: trusted again only via ``trust``
            self._trusted_channels.discard(channel_id)
            return False
        return (not self.gate_gains or bucket in self._trusted
                or channel_id in self._trusted_channels)

    def holds(self, channel_id: str) -> bool:
        """Whether the lease of the channel's bucket is held (served or not yet)."""
        return self.lessee.owns(self.resource_of(channel_id), self.clock())

    def passes(self, event: InboundEvent) -> bool:
        """The filter's rule: an owned channel's event; or, of a channel held but not served
        yet, a post read again by ``resume_gained`` (source ``catch_up``): those go first, in
        order, so the cursor never moves past a post the previous owner left unrecorded."""
        cid = str(channel_of(event))
        if self.owns(cid):
            return True
        return (isinstance(event, PostCreated) and event.source == "catch_up"
                and self.holds(cid))

    def trust(self, buckets: frozenset[str]) -> None:
        """``gate_gains``: start serving ``buckets`` (those still held). ``resume_gained``
        calls it once their channels were read again from the cursors they had when taken:
        no live event of them was passed on before that, so no post handled here can move a
        cursor past a post the previous owner left unrecorded."""
        now = self.clock()
        self._trusted |= {b for b in buckets if self.lessee.owns(b, now)}
        self._trusted_channels = {c for c in self._trusted_channels
                                  if self.resource_of(c) not in buckets}

    def trust_channel(self, channel_id: str) -> None:
        """Serve one channel of a gained bucket before the rest of it (its re-read done)."""
        if self.holds(channel_id):
            self._trusted_channels.add(channel_id)

    def lease_of(self, channel_id: str) -> tuple[str, int] | None:
        """The sender's view: (bucket, which gain of it) while the channel's lease is held
        (served or not yet), None when not. The number changes every time the bucket is
        gained anew (taken, or renewed after its deadline lapsed), so the sender knows to
        read the outbox again: rows committed by the previous owner (or by this replica
        before it lost the bucket) go first."""
        bucket = self.resource_of(channel_id)
        if not self.lessee.owns(bucket, self.clock()):
            return None
        return bucket, self._gains.get(bucket, 0)

    def fence_of(self, channel_id: str) -> Fence | None:
        """The channel's lease as taken (bucket, this replica, epoch) for the writes fenced
        in the database (``pg.fence``); None when the last tick did not keep it. Called
        from the database's worker threads: it reads no clock (the database's check of the
        lease row decides)."""
        bucket = self.resource_of(channel_id)
        epoch = self.lessee.epochs.get(bucket)
        return None if epoch is None else Fence(bucket, self.lessee.replica, epoch)

    def leases(self) -> dict[str, int]:
        """Every bucket held now and which gain of it (``lease_of``)."""
        return {b: self._gains.get(b, 0) for b in self.held()}

    def held(self) -> frozenset[str]:
        return frozenset(self.lessee.held(self.clock()))

    async def tick(self) -> OwnershipChange | None:
        """One lease tick; the change of the buckets held, None when nothing changed.

        Raises:
            StoreError: the tick failed (nothing changed in the database; the deadlines of
                what was held lapse on their own).
        """
        before = dict(self.lessee.deadlines)
        await self.db.run_own(self.lessee.tick, self.clock())
        self.stats.ticks += 1
        now_held = self.held()
        # a lease renewed after its local deadline had passed (a slow tick) was not trusted
        # meanwhile: events of its channels were dropped, so it is read again like a gain
        lapsed = {r for r, deadline in before.items() if deadline <= self.clock()}
        gained = (now_held - self._held) | (now_held & lapsed)
        lost = self._held - now_held
        self._held = now_held
        for bucket in gained:
            self._gain_count += 1
            self._gains[bucket] = self._gain_count
        self._trusted -= gained | lost
        self._trusted_channels = {c for c in self._trusted_channels
                                  if self.resource_of(c) not in gained | lost}
        self.stats.held = len(now_held)
        if not gained and not lost:
            return None
        self.stats.gained += len(gained)
        self.stats.lost += len(lost)
        logger.info("ownership: %s holds %d buckets (+%d -%d)", self.lessee.replica,
                    len(now_held), len(gained), len(lost))
        return OwnershipChange(gained=frozenset(gained), lost=frozenset(lost))

    async def run(self, changes: trio.MemorySendChannel[OwnershipChange], *,
                  release_on_exit: bool = True,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Declare the buckets, tick until cancelled; started after the first tick
        (successful or not). On exit the leases are given back (a clean stop: the others
        take them at their next tick, not after the lease time)."""
        await self.db.run(declare, [f"bucket:{n}" for n in range(self.buckets)])
        every = self.lessee.settings.renew_every_s
        started = False
        try:
            async with changes:
                while True:
                    try:
                        change = await self.tick()
                    except StoreError as exc:
                        self.stats.tick_failures += 1
                        self.stats.last_error = str(exc)
                        logger.warning("ownership: lease tick failed (%s); what is held "
                                       "lapses at its deadline", exc)
                        change = self._lapsed()
                    if change is not None:
                        await changes.send(change)
                    if not started:
                        task_status.started()
                        started = True
                    await trio.sleep(every)
        finally:
            if release_on_exit:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    try:
                        await self.db.run_own(self.lessee.shutdown)
                    except StoreError as exc:
                        logger.warning("ownership: could not give the leases back (%s); "
                                       "they expire after the lease time", exc)

    def _lapsed(self) -> OwnershipChange | None:
        now_held = self.held()
        lost = self._held - now_held
        self._held = now_held
        self._trusted -= lost
        self.stats.held = len(now_held)
        if not lost:
            return None
        self.stats.lost += len(lost)
        return OwnershipChange(gained=frozenset(), lost=frozenset(lost))


async def forward_owned(inbox: trio.MemoryReceiveChannel[InboundEvent],
                        outbox: trio.MemorySendChannel[InboundEvent],
                        ownership: ChannelOwnership) -> None:
    """Pass on the events of owned channels, in order; drop (and count) the others."""
    async with inbox, outbox:
        async for event in inbox:
            if ownership.passes(event):
                await outbox.send(event)
            else:
                ownership.stats.dropped_events += 1


# (channel id, since_ms) or, with ``cursors``, (channel id, since_ms, the channel's cursor
# when it was taken: None for a channel without one, read from since_ms)
CatchUp = Callable[..., AsyncIterator[Sequence[InboundEvent]]]


async def _snapshot(cursors: Callable[[], Awaitable[Mapping[str, str | None]]],
                    retry_s: float, attempts: int) -> Mapping[str, str | None] | None:
    for attempt in range(attempts):
        try:
            return await cursors()
        except StoreError as exc:
            logger.warning("ownership: reading the cursors of gained channels failed (try %d):"
                           " %s", attempt + 1, exc)
            await trio.sleep(retry_s)
    return None


async def resume_gained(changes: trio.MemoryReceiveChannel[OwnershipChange],
                        events: trio.MemorySendChannel[InboundEvent],
                        ownership: ChannelOwnership, *,
                        channel_ids: Callable[[], Awaitable[Sequence[str]]],
                        catch_up: CatchUp, since_ms: Callable[[], int],
                        cursors: Callable[[], Awaitable[Mapping[str, str | None]]] | None = None,
                        retry_s: float = 1.0, attempts: int = 5) -> None:
    """For each gained bucket, read its channels again and send what comes back to
    ``events`` (the handler drops posts already recorded). A channel whose read fails is
    tried again (``attempts`` times, ``retry_s`` apart) while it is still owned; after that
    the next reconnect's backfill covers it.

    With ``cursors`` (every mapped channel's durable cursor, None when it has none) and
    ``ownership.gate_gains``: the cursors are read FIRST; every channel of the gained buckets
    is then read from the cursor it had then (none: from ``since_ms``) while it is held but
    not served (the filter passes these re-read posts only: ``passes``); then the channel is
    served (``trust_channel``) and read once more from the last post of the first read (what
    was posted meanwhile); at the end the buckets are served (``trust``). So the re-read
    posts are handled before newer live posts and the cursor only moves in order (but for
    the one request of a channel's second read). Before: the bucket was served at
    once, the previous owner died (or gave the bucket back) before recording post 1, this
    replica handled post 2 of the same channel from its WebSocket before its slow re-read
    reached the channel (recording post 2 moves the cursor past post 1), and the re-read from
    that cursor skipped post 1 (issue #15: a channel's first question lost around a hand-over)."""
    async with changes, events:
        async for change in changes:
            if not change.gained:
                continue
            taken = None if cursors is None else await _snapshot(cursors, retry_s, attempts)
            since = since_ms()
            if taken is None:  # no gate: served already (or the cursors could not be read)
                ownership.trust(change.gained)
            last: dict[str, str | None] = {}
            ids: list[str] = []
            try:
                ids = [cid for cid in await channel_ids()
                       if ownership.resource_of(cid) in change.gained]
                for cid in ids:  # its live events held back until it was read again
                    last[cid] = await _read(cid, (cid, since) if taken is None else (
                        cid, since, taken.get(cid)), events, ownership, catch_up,
                        retry_s=retry_s, attempts=attempts)
                    if taken is None:
                        continue
                    ownership.trust_channel(cid)  # served; read once more: what was posted
                    await _read(cid, (cid, since, last[cid] or taken.get(cid)), events,
                                ownership, catch_up, retry_s=retry_s, attempts=attempts,
                                count=False)  # (and dropped) during its first read
            finally:
                ownership.trust(change.gained)  # served from now on, whatever happened


async def _read(cid: str, args: tuple[object, ...], events: trio.MemorySendChannel[InboundEvent],
                ownership: ChannelOwnership, catch_up: CatchUp, *, retry_s: float,
                attempts: int, count: bool = True) -> str | None:
    """Read one gained channel again; the id of the last post read (None: none)."""
    last: str | None = None
    for attempt in range(attempts):
        if not ownership.holds(cid):
            break
        try:
            async for batch in catch_up(*args):
                for event in batch:
                    await events.send(event)
                    if isinstance(event, PostCreated):
                        last = str(event.post.id)
            ownership.stats.resumed_channels += count
            break
        except (MattermostError, StoreError) as exc:
            ownership.stats.resume_failures += 1
            logger.warning("ownership: reading channel %s after taking it failed "
                           "(try %d): %s", cid, attempt + 1, exc)
            await trio.sleep(retry_s)
    return last
