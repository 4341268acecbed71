"""The runtime as one of several replicas on one PostgreSQL database (MCHAT_REPLICAS=on).

Built by ``app`` when the setting is on (docs/postgresql.md, "Replicas"): a
``ChannelOwnership`` over the hash buckets of the channels, leased through ``pg.leases``.

- ``filter_events``: between intake (WebSocket, sweeps, HTTP) and the dispatcher, events of
  channels this replica does not own are dropped (their owner reads them from its own
  WebSocket); the sweeper reads only owned channels (``Sweeper.owns``).
- ``run``: ticks the leases (the first tick before intake starts, so the first backfill
  already knows what is owned) and re-reads every channel of a gained bucket from the cursor
  it had when taken, before the bucket is served (``resume_gained`` over
  ``Sweeper.catch_up``, ``ChannelOwnership.gate_gains``); the outbox rows the previous owner
  committed are the sender's (``Sender`` rescans the outbox).

Off (the default), none of this exists and ``pg.single`` keeps one process per database.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .actors.ownership import ChannelOwnership, OwnershipChange, forward_owned, resume_gained
from .budget_share import PREFIX, BudgetShares, ShareBucket
from .config import Config
from .messages import InboundEvent
from .pg.leases import LeaseSettings, Lessee, new_replica_id
from .ratelimit import TokenBucket
from .store import Store

if TYPE_CHECKING:
    from .actors.sweeper import Sweeper
    from .repository import Repositories

logger = logging.getLogger(__name__)

# channels never mapped (no cursor) in a gained bucket are read from this long ago: a post
# the dead owner had not recorded yet is at most a lease time old, this covers it widely
RESUME_HORIZON_MS = 10 * 60_000
BUDGET_TICK_S = 1.0  # the budget shares' tick, at most


def lease_settings(config: Config) -> LeaseSettings:
    rc = config.replicas
    margin = min(0.5, (rc.lease_ttl_s - rc.lease_renew_s) / 2)
    return LeaseSettings(ttl_s=rc.lease_ttl_s, renew_every_s=rc.lease_renew_s, margin_s=margin)


@attrs.define
class Replica:
    """This process's identity among the replicas and its channel leases."""

    replica_id: str
    ownership: ChannelOwnership
    database: str  # where (redacted), for health and the admin page
    budget: BudgetShares | None = None

    def describe(self) -> dict[str, Any]:
        """Health and the admin page: who this replica is and what it holds."""
        stats = self.ownership.stats
        return {
            "replica_id": self.replica_id,
            "leases_held": len(self.ownership.held()),
            "buckets": self.ownership.buckets,
            "lease_ttl_s": self.ownership.lessee.settings.ttl_s,
            "database": self.database,
            # no sender leader: every replica sends within its leased shares of the budget
            "budget_shares": None if self.budget is None else self.budget.held(),
            "budget_limit": None if self.budget is None else self.budget.limit,
            "ticks": stats.ticks,
            "tick_failures": stats.tick_failures,
            "dropped_events": stats.dropped_events,
            "resumed_channels": stats.resumed_channels,
            "resume_failures": stats.resume_failures,
        }

    def repositories(self) -> Repositories:
        """The PostgreSQL repositories with the writes that act on a channel fenced by its
        lease (``pg.fence``): the answer commit, the posts' records with the cursor, the
        outbox claim."""
        from .pg.fence import FencedOutbox, FencedPosts
        from .pg.outbox_repo import PgOutbox
        from .pg.repos import pg_repositories

        fence_of = self.ownership.fence_of
        return attrs.evolve(pg_repositories(),
                            posts=FencedPosts(PgOutbox(), fence_of=fence_of),
                            outbox=FencedOutbox(fence_of=fence_of))

    def sender_options(self) -> dict[str, Any]:
        """The sender sends only the rows of channels whose lease is held (served or still
        being read again: the answers of the re-read posts go too), and reads the outbox
        again before the first row of a bucket gained anew: the rows a dead owner committed
        go before the newer answers of their channel (``SendOrder.inherit``); it also rescans
        every renew period."""
        from .actors.send_queue import SenderSettings

        every = self.ownership.lessee.settings.renew_every_s
        return {"leases": self.ownership,
                "settings": SenderSettings(rescan_interval_s=min(10.0, every))}

    async def filter_events(self, inbox: trio.MemoryReceiveChannel[InboundEvent],
                            outbox: trio.MemorySendChannel[InboundEvent]) -> None:
        await forward_owned(inbox, outbox, self.ownership)

    async def run(self, store: Store, sweeper: Sweeper, repos: Repositories, *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Tick the leases and resume gained channels until cancelled; started after the
        first tick. The leases are given back when cancelled (a clean stop)."""
        send, recv = trio.open_memory_channel[OwnershipChange](64)

        async def channel_ids() -> Sequence[str]:
            # mapped channels, and the bot's channels never mapped yet (a first question
            # posted while their owner was dead is read from RESUME_HORIZON_MS back)
            rows = await store.run(repos.posts.cursors_with_times)
            mapped = [str(r[0]) for r in rows]
            return mapped + sorted(set(await sweeper.bot_channels()) - set(mapped))

        async def catch_up(cid: str, since_ms: int, cursor: str | None
                           ) -> AsyncIterator[Sequence[InboundEvent]]:
            n = 0
            async for batch in sweeper.catch_up(cid, since_ms, cursor):
                n += len(batch)
                yield batch
            logger.info("replica: channel %s taken over, %d posts read again", cid, n)

        async def cursors() -> dict[str, str | None]:
            rows = await store.run(repos.posts.cursors_with_times)
            return {str(r[0]): r[1] for r in rows}

        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(
                resume_gained, recv, sweeper.events.clone(), self.ownership,
                channel_ids=channel_ids, catch_up=catch_up, cursors=cursors,
                since_ms=lambda: int(time.time() * 1000) - RESUME_HORIZON_MS))
            await nursery.start(self.ownership.run, send)
            task_status.started()


def budget_for(config: Config, store: Store, *, margin_s: float
               ) -> tuple[str, BudgetShares | None, TokenBucket]:
    """This process's replica id, its budget shares and the bucket every request goes
    through: the token's whole budget (one process per database), or with MCHAT_REPLICAS=on
    the shares this replica holds of it (``budget_share``)."""
    limit = config.mattermost.rate_limit_per_s
    if not config.replicas.enabled:
        return "", None, TokenBucket(limit, margin_s=margin_s)
    from .pg.store import PgStore

    assert isinstance(store, PgStore)  # config refuses replicas without MCHAT_DATABASE_URL
    replica_id = new_replica_id()
    # the budget ticks at least every second (one small transaction): a share moves to the
    # replica that needs it in a few seconds, not a few renew periods (``pg.share_plan``)
    settings = lease_settings(config)
    settings = attrs.evolve(settings, renew_every_s=min(settings.renew_every_s, BUDGET_TICK_S))
    budget = BudgetShares(store.database, Lessee(replica_id, settings, prefix=PREFIX),
                          limit=max(1, math.floor(limit)), span_s=1.0 + margin_s)
    bucket = ShareBucket(limit, margin_s=margin_s, shares=budget.usable,
                         recheck_s=settings.renew_every_s)
    return replica_id, budget, bucket


def build_replica(config: Config, store: Store, replica_id: str,
                  budget: BudgetShares | None) -> Replica | None:
    """The replica of this process when MCHAT_REPLICAS=on (PostgreSQL), else None."""
    if not config.replicas.enabled:
        return None
    from .pg.store import PgStore

    assert isinstance(store, PgStore)
    ownership = ChannelOwnership(store.database,
                                 Lessee(replica_id, lease_settings(config), prefix="bucket:"),
                                 buckets=config.replicas.buckets, gate_gains=True)
    logger.info("replica: %s on %s, %d buckets, leases of %g s", replica_id,
                config.database_display, config.replicas.buckets, config.replicas.lease_ttl_s)
    return Replica(replica_id=replica_id, ownership=ownership,
                   database=config.database_display, budget=budget)
