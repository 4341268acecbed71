"""Channel leases (``pg.leases``) on a real PostgreSQL, with a fake clock where time matters.

The property test simulates replicas that tick every renew period at their own phase, die
(SIGKILL: they stop), stall (a network cut: they stop ticking, still believing what they held,
then come back) and join, with hypothesis choosing when, and the order of ticks due at the
same moment. After every step it checks that no resource is believed owned by two replicas
and that a believed owner is the database's owner; and that once the replicas are quiet
(no death or stall for lease time + one renew period; no first tick of a replica that joined
or came back for two periods: one for the others to give back their excess, one for it to
take it), every resource has an owner.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mchat_actors.pg import leases
from mchat_actors.pg.leases import LeaseSettings, Lessee
from mchat_actors.pg.schema import migrate

pytestmark = pytest.mark.pg

TTL, PERIOD, STEP = 10.0, 3.0, 0.5
SETTINGS = LeaseSettings(ttl_s=TTL, renew_every_s=PERIOD, margin_s=0.0)

Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def conn(pg_url: str) -> Iterator[Conn]:
    with psycopg.connect(pg_url, autocommit=True) as setup:
        migrate(setup)
    with psycopg.connect(pg_url) as c:  # not autocommit: ticks open their own transactions
        yield c


def _declare(conn: Conn, resources: list[str]) -> None:
    with conn.transaction():
        conn.execute("TRUNCATE leases, replicas")
        leases.declare(conn, resources)


def test_acquire_renew_release_and_take_over_after_expiry(conn: Conn) -> None:
    _declare(conn, ["channel:a", "channel:b"])
    a, b = Lessee("A", SETTINGS), Lessee("B", SETTINGS)
    first = a.tick(conn, 0.0, 0.0)
    assert set(first.acquired) == {"channel:a", "channel:b"} and first.share == 2
    assert b.tick(conn, 1.0, 1.0).acquired == {}  # A holds both; B now counted live
    assert a.owns("channel:a", 9.9) and not a.owns("channel:a", 10.0)
    # A renews at 3: with two live replicas its share is 1, it gives one back, B takes it
    third = a.tick(conn, 3.0, 3.0)
    assert third.renewed == {"channel:a"} and third.released == {"channel:b"}
    assert set(b.tick(conn, 4.0, 4.0).acquired) == {"channel:b"}
    # A goes silent; its lease expires at 13 and not before
    assert b.tick(conn, 12.9, 12.9).acquired == {}
    taken = b.tick(conn, 13.0, 13.0)
    assert set(taken.acquired) == {"channel:a"} and taken.acquired["channel:a"] == 2
    assert not a.owns("channel:a", 13.0)
    late = a.tick(conn, 13.5, 13.5)  # back from the cut: it lost it and knows it
    assert late.lost == {"channel:a"} and not a.owns("channel:a", 13.5)
    assert leases.owners(conn, 13.5) == {"channel:a": "B", "channel:b": "B"}
    assert b.shutdown(conn) == {"channel:a", "channel:b"}
    assert leases.owners(conn, 14.0) == {"channel:a": None, "channel:b": None}


def test_tick_refuses_a_connection_inside_a_transaction(conn: Conn) -> None:
    _declare(conn, ["channel:a"])
    with conn.transaction(), pytest.raises(RuntimeError, match="outside any transaction"):
        Lessee("A", SETTINGS).tick(conn, 0.0, 0.0)


def test_a_failed_tick_changes_nothing_the_replica_believes(conn: Conn) -> None:
    _declare(conn, ["channel:a"])
    a = Lessee("A", SETTINGS)
    a.tick(conn, 0.0, 0.0)
    conn.execute("DROP TABLE replicas")  # the next tick fails half way
    conn.commit()
    with pytest.raises(psycopg.Error):
        a.tick(conn, 3.0, 3.0)
    conn.rollback()
    assert a.deadlines == {"channel:a": 10.0}  # the lease it renewed at 0, nothing more


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="half"):
        LeaseSettings(ttl_s=10, renew_every_s=6)
    with pytest.raises(ValueError, match="margin"):
        LeaseSettings(ttl_s=10, renew_every_s=5, margin_s=5)
    with pytest.raises(ValueError, match="ttl_s"):
        LeaseSettings(ttl_s=0)


def test_buckets_are_stable_and_spread() -> None:
    assert leases.bucket_of("channel-x", 16) == leases.bucket_of("channel-x", 16)
    used = {leases.bucket_of(f"c{i}", 16) for i in range(400)}
    assert len(used) == 16
    assert len({leases.new_replica_id() for _ in range(50)}) == 50


def test_replicas_ticking_at_once_never_take_the_same_lease(pg_url: str) -> None:
    """Real concurrency and the database's clock: 4 threads tick as fast as they can."""
    with psycopg.connect(pg_url, autocommit=True) as setup:
        migrate(setup)
        leases.declare(setup, [f"channel:{i}" for i in range(40)])
    taken: dict[str, list[tuple[str, int]]] = {}
    lock = threading.Lock()
    settings = LeaseSettings(ttl_s=30.0, renew_every_s=1.0, margin_s=0.5)

    def replica(name: str) -> None:
        lessee = Lessee(name, settings)
        with psycopg.connect(pg_url) as c:
            for i in range(15):
                result = lessee.tick(c, float(i))
                with lock:
                    for resource, epoch in result.acquired.items():
                        taken.setdefault(resource, []).append((name, epoch))

    threads = [threading.Thread(target=replica, args=(f"R{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with psycopg.connect(pg_url) as c:
        final = leases.owners(c)
    assert all(owner is not None for owner in final.values())
    for resource, grants in taken.items():
        epochs = [epoch for _, epoch in grants]
        assert len(epochs) == len(set(epochs)), (resource, grants)  # one owner per epoch
        assert final[resource] == max(grants, key=lambda g: g[1])[0]


# --- the simulation -------------------------------------------------------------------------

_event = st.one_of(
    st.tuples(st.just("kill"), st.integers(0, 100), st.integers(0, 9)),
    st.tuples(st.just("stall"), st.integers(0, 100), st.integers(0, 9), st.integers(1, 30)),
    st.tuples(st.just("join"), st.integers(0, 100), st.integers(0, 5)),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, list[int], list[tuple[int, ...]], int]:
    resources = draw(st.integers(1, 24))
    phases = draw(st.lists(st.integers(0, 5), min_size=1, max_size=4))  # in steps of 0.5 s
    events = draw(st.lists(_event, max_size=6))
    seed = draw(st.integers(0, 2**32 - 1))
    return resources, phases, sorted(events, key=lambda e: e[1]), seed


def test_never_two_owners_and_everything_owned_once_quiet(conn: Conn) -> None:
    @given(scenarios())
    def run(scenario: tuple[int, list[int], list[tuple[int, ...]], int]) -> None:
        simulate(conn, *scenario)

    run()


def simulate(conn: Conn, n: int, phases: list[int], events: list[tuple[int, ...]],
             seed: int) -> None:
    import random

    order = random.Random(seed)
    resources = [f"channel:{i}" for i in range(n)]
    _declare(conn, resources)
    alive: dict[str, Lessee] = {}
    next_tick: dict[str, float] = {}
    stalled_until: dict[str, float] = {}
    # the last death or stall; the first tick of the last replica to join or come back (a
    # replica counts for the others' fair share from its first heartbeat on)
    last_loss, last_gain = 0.0, 0.0
    fresh: set[str] = set()

    def join(now: float, phase: float) -> None:
        name = f"R{len(next_tick)}"
        alive[name] = Lessee(name, SETTINGS)
        next_tick[name] = now + phase
        fresh.add(name)

    for phase in phases:
        join(0.0, phase * STEP)
    pending = list(events)
    steps = int(80 / STEP)  # events end by 50 s, stalls by 65 s: quiet long enough after
    for step in range(steps + 1):
        now = step * STEP
        while pending and pending[0][1] * STEP <= now:
            kind, _, *rest = pending.pop(0)
            names = sorted(alive)
            if kind == "join":
                join(now, rest[0] * STEP)
            elif names and kind == "kill":
                del alive[names[rest[0] % len(names)]]
                last_loss = now
            elif names and kind == "stall":
                stalled_until[names[rest[0] % len(names)]] = now + rest[1] * STEP
                last_loss = now
        for name, until in list(stalled_until.items()):
            if until <= now:
                del stalled_until[name]
                fresh.add(name)
        due = [r for r in sorted(alive) if next_tick[r] <= now and r not in stalled_until]
        order.shuffle(due)
        for name in due:
            alive[name].tick(conn, now, now)
            if name in fresh:
                fresh.discard(name)
                last_gain = now
            next_tick[name] += PERIOD * (1 + (now - next_tick[name]) // PERIOD)
        # safety: at most one believer per resource, and it is the database's owner
        believers: dict[str, list[str]] = {}
        for name, lessee in alive.items():
            for resource in lessee.held(now):
                believers.setdefault(resource, []).append(name)
        with conn.transaction():
            db = leases.owners(conn, now)
        for resource, names in believers.items():
            assert len(names) == 1, (now, resource, names)
            assert db[resource] == names[0], (now, resource, names, db[resource])
        # liveness: quiet long enough, with a replica serving (it has ticked since it joined
        # or came back)
        serving = [r for r in alive if r not in stalled_until and r not in fresh]
        if (serving and now >= last_loss + TTL + PERIOD and now >= last_gain + 2 * PERIOD):
            unowned = [r for r in resources if r not in believers]
            assert not unowned, (now, unowned, last_loss, last_gain, n, phases, events, seed)


async def test_a_replica_ticks_through_the_pool_on_the_databases_clock(pg_url: str) -> None:
    """The production path: ``PgDatabase.run_own`` and ``clock_timestamp()`` deciding expiry."""
    import time

    from mchat_actors.pg.database import open_database

    async with open_database(pg_url) as db:
        await db.run(leases.declare, ["bucket:0", "bucket:1", "bucket:2"])
        lessee = Lessee(leases.new_replica_id(), LeaseSettings())
        sent = time.monotonic()
        result = await db.run_own(lessee.tick, sent)
        assert set(result.acquired) == {"bucket:0", "bucket:1", "bucket:2"}
        assert lessee.held(sent + 9.4) == set(result.acquired)  # ttl 10 - margin 0.5
        assert lessee.held(sent + 9.5) == set()
        expiry = await db.run(lambda c: c.execute(
            "SELECT min(expires_at) - extract(epoch FROM clock_timestamp()) FROM leases"
        ).fetchone()[0])
        assert 9.0 < float(expiry) <= 10.0
        assert await db.run_own(lessee.shutdown) == set(result.acquired)
        assert set((await db.run(leases.owners)).values()) == {None}
