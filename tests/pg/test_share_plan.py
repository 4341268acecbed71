"""The budget's shares follow demand (``pg.share_plan``, ``Lessee.tick(demand=...)``).

The plan alone (pure, hypothesis): never more than the pool, every replica with demand gets
one share when there are enough, nobody is given more than it asked while another is short,
and a replica gives back only what others need. Then the plan through the lease rows on the
real PostgreSQL with a fake clock: the ticks of ``BudgetShares`` (two-step give-back, a share
usable one window after it was taken) for replicas whose demand hypothesis changes, which
die, stall and join: the shares usable at any moment, all replicas together, are never more
than the limit, no share is usable by two replicas, and once quiet every replica holds what
its demand wants.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mchat_actors.budget_share import PREFIX, BudgetShares
from mchat_actors.pg import leases, share_plan
from mchat_actors.pg.leases import LeaseSettings, Lessee
from mchat_actors.pg.schema import migrate

LIMIT = 10
TTL, PERIOD, STEP, SPAN = 10.0, 3.0, 0.5, 1.05
SETTINGS = LeaseSettings(ttl_s=TTL, renew_every_s=PERIOD, margin_s=0.0)

Conn = psycopg.Connection[tuple[object, ...]]

_demands = st.dictionaries(st.sampled_from([f"R{i}" for i in range(6)]),
                           st.integers(0, 14), min_size=1)


@given(total=st.integers(0, 12), demands=_demands)
def test_the_plan_never_gives_out_more_than_the_pool(total: int,
                                                     demands: dict[str, int]) -> None:
    want = share_plan.want(total, demands)
    goal = share_plan.target(total, demands)
    assert sum(want.values()) <= total and sum(goal.values()) == total
    assert all(goal[r] >= want[r] >= 0 for r in demands)
    busy = [r for r in demands if demands[r] > 0]
    if len(demands) <= total:
        assert all(want[r] >= 1 for r in demands)  # the idle keep one when the pool allows
    elif len(busy) <= total:
        assert all(want[r] >= 1 for r in busy)  # else those with demand first
    # max-min fair: a replica above its fair level only when no one with more demand is short
    for r in demands:
        for o in demands:
            if want[r] > max(1, demands[r]):
                raise AssertionError((r, want, demands))
            if want[o] < demands[o] and want[r] >= 2:
                assert want[r] <= want[o] + 1, (r, o, want, demands)


@given(total=st.integers(1, 12), demands=_demands,
       held=st.lists(st.integers(0, 12), min_size=6, max_size=6))
def test_a_replica_gives_back_only_what_others_need(total: int, demands: dict[str, int],
                                                    held: list[int]) -> None:
    names = sorted(demands)
    holding: dict[str, int] = {}
    left = total
    for name, h in zip(names, held, strict=False):  # a consistent table: sum <= total
        holding[name] = min(h, left)
        left -= holding[name]
    goal = share_plan.target(total, demands)
    want = share_plan.want(total, demands)
    given_back = {r: share_plan.give_back(r, total, demands, holding) for r in names}
    for r in names:
        assert 0 <= given_back[r] <= max(0, holding.get(r, 0) - goal[r])
    free = total - sum(holding.values())
    short = sum(max(0, want[r] - holding.get(r, 0)) for r in names)
    assert sum(given_back.values()) <= max(0, short - free)  # never more than needed
    if short > free:  # someone is short: the over-holders cover it, as far as they can
        over = sum(max(0, holding.get(r, 0) - goal[r]) for r in names)
        assert sum(given_back.values()) == min(over, short - free)


@given(total=st.integers(1, 12), demands=_demands,
       held=st.lists(st.integers(0, 12), min_size=6, max_size=6))
def test_a_replica_takes_no_free_share_another_needs(total: int, demands: dict[str, int],
                                                     held: list[int]) -> None:
    """What a replica takes from the free shares: never past its target or the free ones,
    and what the others still lack for their ``want`` stays free for them (the replica that
    ticks first must not take the freed shares a later one needs)."""
    names = sorted(demands)
    holding: dict[str, int] = {}
    left = total
    for name, h in zip(names, held, strict=False):
        holding[name] = min(h, left)
        left -= holding[name]
    goal, needs = share_plan.target(total, demands), share_plan.want(total, demands)
    free = total - sum(holding.values())
    for me in names:
        n = share_plan.take(me, total, demands, holding)
        assert 0 <= n <= free and holding.get(me, 0) + n <= max(goal[me], holding.get(me, 0))
        others_short = sum(max(0, needs[r] - holding.get(r, 0)) for r in names if r != me)
        mine_short = max(0, needs[me] - holding.get(me, 0))
        if free >= mine_short + others_short:
            assert free - n >= others_short  # the others' need stays free
            assert n >= min(mine_short, goal[me] - holding.get(me, 0))  # and mine is met


def test_the_busy_replica_gets_most_shares_the_idle_keep_one() -> None:
    assert share_plan.want(10, {"a": 10, "b": 0, "c": 0}) == {"a": 8, "b": 1, "c": 1}
    assert share_plan.target(10, {"a": 0, "b": 0, "c": 0}) == {"a": 4, "b": 3, "c": 3}
    assert share_plan.want(10, {"a": 10, "b": 10, "c": 0}) == {"a": 5, "b": 4, "c": 1}
    assert share_plan.want(2, {"a": 0, "b": 3, "c": 1}) == {"a": 0, "b": 1, "c": 1}
    # nobody short: the spare shares stay where they are
    assert share_plan.give_back("a", 10, {"a": 2, "b": 0, "c": 0}, {"a": 8, "b": 1, "c": 1}) == 0
    assert share_plan.give_back("a", 10, {"a": 2, "b": 5, "c": 0}, {"a": 8, "b": 1, "c": 1}) == 4


# --- through the lease rows -----------------------------------------------------------------

@pytest.fixture
def conn(pg_url: str) -> Iterator[Conn]:
    with psycopg.connect(pg_url, autocommit=True) as setup:
        migrate(setup)
    with psycopg.connect(pg_url) as c:  # not autocommit: ticks open their own transactions
        yield c


class Sim:
    """Replicas ticking ``BudgetShares`` by hand on the fake clock ``now``."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.now = 0.0
        self.shares: dict[str, BudgetShares] = {}
        with conn.transaction():
            conn.execute("TRUNCATE leases, replicas")
            leases.declare(conn, [f"{PREFIX}{n}" for n in range(LIMIT)])

    def join(self, name: str) -> BudgetShares:
        shares = BudgetShares(None, Lessee(name, SETTINGS, prefix=PREFIX),  # type: ignore[arg-type]
                              limit=LIMIT, span_s=SPAN, clock=lambda: self.now)
        self.shares[name] = shares
        return shares

    def tick(self, name: str, demand: int) -> None:
        shares = self.shares[name]
        result = shares.lessee.tick(self.conn, self.now, self.now,
                                    releasable=shares._releasable(None), demand=demand)
        shares.apply(result, self.now)

    def usable(self, name: str) -> set[str]:
        s = self.shares[name]
        return {r for r in s.lessee.held(self.now) if r not in s._retiring
                and s._taken_at.get(r, float("inf")) + s.span_s <= self.now}

    def check(self) -> None:
        """At most ``LIMIT`` usable, none by two replicas (their counts agree)."""
        seen: dict[str, str] = {}
        for name, s in self.shares.items():
            mine = self.usable(name)
            assert s.usable(self.now) == len(mine)
            for r in mine:
                assert r not in seen, (self.now, r, name, seen[r])
                seen[r] = name
        assert sum(s.usable(self.now) for s in self.shares.values()) <= LIMIT


def test_a_backlogged_replica_ends_holding_most_shares(conn: Conn) -> None:
    """a has a backlog (waits for its shares: demand = the limit), b and c are idle. With the
    even split (before) a kept 4 of 10 however long it waited."""
    sim = Sim(conn)
    for name in "abc":
        sim.join(name)
    demand = {"a": LIMIT, "b": 0, "c": 0}
    for step in range(5 * int(PERIOD / STEP)):  # five periods
        sim.now = step * STEP
        if step % int(PERIOD / STEP) == 0:
            for name in "bca":
                sim.tick(name, demand[name])
        sim.check()
    assert sim.usable("a") and len(sim.usable("a")) == LIMIT - 2
    assert len(sim.usable("b")) == len(sim.usable("c")) == 1
    demand = {"a": 0, "b": 3, "c": 0}  # a is done, b gets busier: b's need comes from a
    for step in range(5 * int(PERIOD / STEP), 9 * int(PERIOD / STEP)):
        sim.now = step * STEP
        if step % int(PERIOD / STEP) == 0:
            for name in "bca":
                sim.tick(name, demand[name])
        sim.check()
    assert len(sim.usable("b")) == 3 and len(sim.usable("a")) == LIMIT - 4


_event = st.one_of(
    st.tuples(st.just("demand"), st.integers(0, 100), st.integers(0, 9), st.integers(0, 12)),
    st.tuples(st.just("kill"), st.integers(0, 100), st.integers(0, 9)),
    st.tuples(st.just("stall"), st.integers(0, 100), st.integers(0, 9), st.integers(1, 30)),
    st.tuples(st.just("join"), st.integers(0, 100), st.integers(0, 12)),
)


def test_usable_shares_never_exceed_the_limit_as_demand_moves(conn: Conn) -> None:
    @settings(max_examples=60, deadline=None)
    @given(demands=st.lists(st.integers(0, 12), min_size=1, max_size=4),
           events=st.lists(_event, max_size=10), seed=st.integers(0, 2**32 - 1))
    def run(demands: list[int], events: list[tuple[int, ...]], seed: int) -> None:
        simulate(conn, demands, sorted(events, key=lambda e: e[1]), seed)

    run()


def simulate(conn: Conn, initial: list[int], events: list[tuple[int, ...]],
             seed: int) -> None:
    order = random.Random(seed)
    sim = Sim(conn)
    demand: dict[str, int] = {}
    alive: set[str] = set()
    stalled: dict[str, float] = {}
    next_tick: dict[str, float] = {}
    last_change = 0.0

    def join(d: int) -> None:
        name = f"R{len(demand)}"
        sim.join(name)
        demand[name] = d
        alive.add(name)
        next_tick[name] = sim.now + order.randrange(6) * STEP

    for d in initial:
        join(d)
    for step in range(int(100 / STEP)):  # events end by 50 s, stalls by 65 s
        sim.now = step * STEP
        while events and events[0][1] * STEP <= sim.now:
            kind, _, *rest = events.pop(0)
            names = sorted(alive)
            last_change = sim.now
            if kind == "join":
                join(rest[0])
            elif names and kind == "demand":
                demand[names[rest[0] % len(names)]] = rest[1]
            elif names and kind == "kill":  # gone: it uses nothing any more
                name = names[rest[0] % len(names)]
                alive.discard(name)
                del sim.shares[name]
            elif names and kind == "stall":  # still believes what it held, ticks no more
                stalled[names[rest[0] % len(names)]] = sim.now + rest[1] * STEP
        for name, until in list(stalled.items()):
            if until <= sim.now:
                del stalled[name]
                last_change = sim.now
        due = [r for r in sorted(alive) if next_tick[r] <= sim.now and r not in stalled]
        order.shuffle(due)
        for name in due:
            sim.tick(name, demand[name])
            next_tick[name] += PERIOD
        sim.check()
        # once quiet (a dead one's leases lapsed, four periods to move), each has its want
        if alive and sim.now >= last_change + TTL + 4 * PERIOD:
            want = share_plan.want(LIMIT, {r: demand[r] for r in alive})
            for name in alive:
                assert len(sim.usable(name)) >= want[name], (sim.now, name, want, demand)
