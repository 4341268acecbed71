"""Channels owned by leases in the shared database: each served by one replica at a time.

A lease is a row of ``leases``: a resource (``channel:<id>``, or ``bucket:<n>`` when channels
are grouped by hash: ``bucket_of``), its ``owner`` (a replica id), ``expires_at`` and an
``epoch`` raised at every change of owner (a fencing token: a write of the old owner can be
refused by comparing it). A replica keeps its leases by renewing them all in one statement
every ``renew_every_s``; a replica that stops renewing (SIGKILL, network cut) loses them when
they expire, and the others take them at their next tick.

Clocks. The database's clock is the only one that decides expiry (``clock_timestamp()``;
replicas on other machines may disagree about the time). A replica believes it owns a lease
until ``deadline = local time when the renewing statement was SENT + ttl - margin``: the
database set ``expires_at`` to its own now + ttl at a moment after that, so with clocks that
run at the same rate the owner stops serving before anyone else may take over. The tests run
the same SQL with a fake clock (``now`` passed in) to check the rules on a real server.

Fair share: ``ceil(resources / live replicas)`` (live: heartbeat younger than ttl), or, when
the tick is given this replica's ``demand`` (the budget's shares), the demand-weighted plan
of ``pg.share_plan`` (a replica then gives back only what others need). A replica
takes free or expired leases up to its share, and gives back what it holds over its share, so
a replica that joins gets its part within two renew periods; the channels given back are
unowned until the next tick of a replica under its share (at most one renew period).

``Lessee`` is one replica's view; its ``tick(conn, local_now)`` runs one transaction of its
own (``PgDatabase.run_own``). Used by ``actors.ownership`` (prefix ``bucket:``) and
``budget_share`` (prefix ``budget:``) with MCHAT_REPLICAS=on (docs/postgresql.md).
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import socket
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import attrs
import psycopg

from . import share_plan

Conn = psycopg.Connection[tuple[Any, ...]]

# the database's clock, unless a (test) clock value is passed
_NOW = "COALESCE(%(now)s::float8, extract(epoch FROM clock_timestamp()))"


def _positive(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0")


@attrs.frozen
class LeaseSettings:
    """``ttl_s``: how long a lease lasts without renewal (the issue's default: 10 s);
    ``renew_every_s``: at most half of it; ``margin_s``: how much earlier than the database
    a replica stops trusting a lease (absorbs the round trip and clock rate differences)."""

    ttl_s: float = attrs.field(default=10.0, validator=_positive)
    renew_every_s: float = attrs.field(default=3.0, validator=_positive)
    margin_s: float = attrs.field(default=0.5)

    def __attrs_post_init__(self) -> None:
        if self.renew_every_s * 2 > self.ttl_s:
            raise ValueError("renew_every_s must be at most half of ttl_s")
        if not 0 <= self.margin_s < self.ttl_s - self.renew_every_s:
            raise ValueError("margin_s must be >= 0 and below ttl_s - renew_every_s")


def new_replica_id() -> str:
    """Host, process and a random part: unique even for a restarted process with the same pid."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"


def channel_resource(channel_id: str) -> str:
    return f"channel:{channel_id}"


def bucket_of(channel_id: str, buckets: int) -> str:
    """The hash bucket of a channel (stable across processes and releases)."""
    if buckets < 1:
        raise ValueError("buckets must be >= 1")
    digest = hashlib.blake2b(channel_id.encode(), digest_size=8).digest()
    return f"bucket:{int.from_bytes(digest, 'big') % buckets}"


def declare(conn: Conn, resources: Iterable[str]) -> int:
    """Make sure every resource has a lease row (unowned); how many were new."""
    rows = conn.execute(
        "INSERT INTO leases (resource) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING"
        " RETURNING resource", (sorted(set(resources)),)).fetchall()
    return len(rows)


def heartbeat(conn: Conn, replica: str, now: float | None = None) -> None:
    conn.execute(
        f"INSERT INTO replicas (replica_id, started_at, heartbeat_at) VALUES (%(r)s, {_NOW},"
        f" {_NOW}) ON CONFLICT (replica_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        {"r": replica, "now": now})


def live_replicas(conn: Conn, ttl_s: float, now: float | None = None) -> int:
    row = conn.execute(f"SELECT count(*) FROM replicas WHERE heartbeat_at > {_NOW} - %(ttl)s",
                       {"ttl": ttl_s, "now": now}).fetchone()
    return int(row[0]) if row else 0


def publish_demand(conn: Conn, replica: str, demand: int) -> None:
    conn.execute("UPDATE replicas SET demand = %s WHERE replica_id = %s", (demand, replica))


def live_demands(conn: Conn, ttl_s: float, now: float | None = None) -> dict[str, int]:
    """Every live replica and the demand it published (0 when none)."""
    rows = conn.execute(
        f"SELECT replica_id, COALESCE(demand, 0) FROM replicas WHERE heartbeat_at > {_NOW}"
        " - %(ttl)s", {"ttl": ttl_s, "now": now}).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def held_by_owner(conn: Conn, prefix: str, now: float | None = None) -> dict[str, int]:
    """How many unexpired leases of ``prefix`` each owner holds."""
    rows = conn.execute(
        f"SELECT owner, count(*) FROM leases WHERE owner IS NOT NULL AND expires_at > {_NOW}"
        " AND starts_with(resource, %(prefix)s) GROUP BY owner",
        {"now": now, "prefix": prefix}).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def renew(conn: Conn, replica: str, held: Iterable[str], ttl_s: float,
          now: float | None = None) -> set[str]:
    """Extend the leases of ``held`` this replica still owns (unexpired); the ones renewed."""
    rows = conn.execute(
        f"UPDATE leases SET expires_at = {_NOW} + %(ttl)s WHERE owner = %(r)s"
        f" AND resource = ANY(%(held)s::text[]) AND expires_at > {_NOW} RETURNING resource",
        {"r": replica, "held": sorted(held), "ttl": ttl_s, "now": now}).fetchall()
    return {str(r[0]) for r in rows}


def acquire(conn: Conn, replica: str, limit: int, ttl_s: float,
            now: float | None = None, prefix: str = "") -> dict[str, int]:
    """Take up to ``limit`` free or expired leases (of resources starting with ``prefix``);
    each taken one's new epoch.

    Rows another transaction is taking are skipped (``SKIP LOCKED``), so replicas ticking at
    once never wait on each other, nor both take one row.
    """
    if limit <= 0:
        return {}
    rows = conn.execute(
        "WITH free AS (SELECT resource FROM leases"
        f" WHERE (owner IS NULL OR expires_at <= {_NOW}) AND starts_with(resource, %(prefix)s)"
        " ORDER BY resource LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
        f" UPDATE leases AS l SET owner = %(r)s, expires_at = {_NOW} + %(ttl)s,"
        f" epoch = l.epoch + 1, acquired_at = {_NOW} FROM free"
        " WHERE l.resource = free.resource RETURNING l.resource, l.epoch",
        {"r": replica, "limit": limit, "ttl": ttl_s, "now": now, "prefix": prefix}).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def release(conn: Conn, replica: str, resources: Iterable[str]) -> set[str]:
    """Give back leases (only those this replica owns); the ones released."""
    rows = conn.execute(
        "UPDATE leases SET owner = NULL, expires_at = 0 WHERE owner = %(r)s"
        " AND resource = ANY(%(res)s::text[]) RETURNING resource",
        {"r": replica, "res": sorted(resources)}).fetchall()
    return {str(r[0]) for r in rows}


def owners(conn: Conn, now: float | None = None) -> dict[str, str | None]:
    """Every resource and its owner, None when unowned or expired."""
    rows = conn.execute(
        f"SELECT resource, CASE WHEN expires_at > {_NOW} THEN owner END FROM leases",
        {"now": now}).fetchall()
    return {str(r[0]): (None if r[1] is None else str(r[1])) for r in rows}


@attrs.frozen
class TickResult:
    renewed: frozenset[str]
    acquired: Mapping[str, int]  # resource -> epoch
    released: frozenset[str]
    lost: frozenset[str]  # believed held, not renewable any more (expired, taken)
    share: int
    held_back: frozenset[str] = frozenset()  # over the share, kept: not ``releasable`` yet


@attrs.define
class Lessee:
    """One replica's leases and until when (its own clock) it may act on each.
    ``prefix``: the resources this lessee shares out (``bucket:``, ``budget:``): its fair
    share counts only those, and it takes only those (one replica runs one lessee each)."""

    replica: str
    settings: LeaseSettings = attrs.field(factory=LeaseSettings)
    prefix: str = ""
    deadlines: dict[str, float] = attrs.field(factory=dict)
    epochs: dict[str, int] = attrs.field(factory=dict)

    def owns(self, resource: str, local_now: float) -> bool:
        return self.deadlines.get(resource, -math.inf) > local_now

    def held(self, local_now: float) -> set[str]:
        return {r for r, deadline in self.deadlines.items() if deadline > local_now}

    def tick(self, conn: Conn, local_now: float, db_now: float | None = None, *,
             releasable: Collection[str] | None = None,
             demand: int | None = None) -> TickResult:
        """Heartbeat, renew, give back the excess, take up to the fair share, in one
        transaction of its own; the replica's view changes only once it has committed (a
        failed tick keeps the previous deadlines, which lapse before the database's expiry).

        ``conn``: a pooled connection outside any transaction (``PgDatabase.run_own``);
        ``local_now``: this replica's clock when the tick starts; ``db_now``: a fake database
        clock (tests), else the database's own; ``releasable``: when given, only these of
        the leases over the share are given back, the others are renewed (``held_back``:
        the budget's shares stop being used first, and go once their requests have
        arrived: ``budget_share``); ``demand``: when given, published, and the share is
        demand-weighted (``share_plan``): up to the target is taken from the free leases,
        and only what the others need beyond the free ones is given back.

        Raises:
            RuntimeError: ``conn`` is inside a transaction (the commit would not be ours).
            psycopg.Error: the database failed; nothing changed.
        """
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise RuntimeError("Lessee.tick needs a connection outside any transaction")
        ttl = self.settings.ttl_s
        deadline = local_now + ttl - self.settings.margin_s
        believed = set(self.deadlines)
        with conn.transaction():
            heartbeat(conn, self.replica, db_now)
            renewed = renew(conn, self.replica, believed, ttl, db_now)
            row = conn.execute("SELECT count(*) FROM leases WHERE starts_with(resource, %s)",
                               (self.prefix,)).fetchone()
            total = int(row[0]) if row else 0
            if demand is None:
                share = math.ceil(total / max(1, live_replicas(conn, ttl, db_now)))
                keep = share
            else:
                publish_demand(conn, self.replica, demand)
                demands = live_demands(conn, ttl, db_now) | {self.replica: demand}
                held = held_by_owner(conn, self.prefix, db_now)
                held[self.replica] = len(renewed)
                share = share_plan.target(total, demands)[self.replica]
                keep = len(renewed) - share_plan.give_back(self.replica, total, demands, held)
            # the ones already held back (in ``releasable``) go first
            order = sorted(renewed, key=lambda r: (releasable is not None and r in releasable, r))
            excess = order[keep:] if len(renewed) > keep else []
            released = release(conn, self.replica, [
                r for r in excess if releasable is None or r in releasable])
            kept = renewed - released
            wanted = share - len(kept)
            if demand is not None:  # what others still lack for their want stays free
                held[self.replica] = len(kept)
                wanted = share_plan.take(self.replica, total, demands, held)
            acquired = acquire(conn, self.replica, wanted, ttl, db_now, self.prefix)
        self.deadlines = {r: deadline for r in (*kept, *acquired)}
        self.epochs = {r: self.epochs.get(r, 0) for r in kept} | dict(acquired)
        return TickResult(renewed=frozenset(kept), acquired=acquired,
                          released=frozenset(released), lost=frozenset(believed - renewed),
                          share=share, held_back=frozenset(excess) - released)

    def forget(self) -> None:
        """Stop trusting every lease (the tick failed: the database could not be reached).
        The deadlines already make them lapse; this makes it immediate."""
        self.deadlines.clear()
        self.epochs.clear()

    def shutdown(self, conn: Conn) -> set[str]:
        """Give back every lease (clean stop: others take them at their next tick). The
        replica stops trusting them first, so it never acts on one already given back."""
        held = list(self.deadlines)
        self.forget()
        with conn.transaction():
            released = release(conn, self.replica, held)
            conn.execute("DELETE FROM replicas WHERE replica_id = %s", (self.replica,))
        return released
