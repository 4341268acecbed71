"""The storage actor (``writer.Writer``): group commit, per-request rollback, crash safety.

The property test drives a real SQLite file through random interleavings of requests that
write, fail, poison their batch's COMMIT (a deferred foreign key) or crash the actor mid-batch,
with the actor optionally stopped between batches; then it reopens the file on a new connection
(the restart) and checks: every acknowledged write is there, no failed or crashed request left
anything, and no request that got an error is there.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mchat_actors.store import transaction
from mchat_actors.writer import Writer, WriterClosed

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (id INTEGER PRIMARY KEY, kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL
    REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
"""


class Crash(BaseException):
    """The process dies in the middle of a batch."""


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(SCHEMA)
    return conn


def _work(i: int, kind: str):  # noqa: ANN202
    def work(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO kv (id, kind) VALUES (?, ?)", (i, kind))
        if kind == "fail":
            raise ValueError(f"request {i} fails")
        if kind == "poison":  # passes its savepoint, fails the batch's COMMIT
            conn.execute("INSERT INTO child (id, parent_id) VALUES (?, ?)", (i, 10_000 + i))
        if kind == "crash":
            raise Crash()
        return i

    return work


OPS = st.lists(st.tuples(st.sampled_from(["put", "put", "put", "fail", "poison", "crash"]),
                         st.integers(0, 4), st.booleans()), min_size=1, max_size=25)


@given(ops=OPS, stop_at=st.one_of(st.none(), st.integers(0, 25)),
       max_batch=st.integers(1, 8))
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_acknowledged_writes_survive_a_restart(tmp_path_factory, ops, stop_at, max_batch):
    path = tmp_path_factory.mktemp("writer") / "w.db"
    acked: dict[int, bool] = {}  # request -> True (acknowledged) / False (got an error)

    async def main() -> None:
        conn = _open(path)
        writer = Writer(conn, max_batch=max_batch, linger_s=0.002)

        async def call(i: int, kind: str, delay: int, lazy: bool,
                       nursery: trio.Nursery) -> None:
            for _ in range(delay):
                await trio.lowlevel.checkpoint()
            if i == stop_at:  # the actor stops between batches (shutdown, crash of the loop)
                nursery.cancel_scope.cancel()
            try:
                assert await writer.submit(_work(i, kind), lazy=lazy) == i
                acked[i] = True
            except (ValueError, sqlite3.Error, WriterClosed):
                acked[i] = False

        try:
            async with trio.open_nursery() as callers:
                async with trio.open_nursery() as actor:
                    await actor.start(writer.run)
                    for i, (kind, delay, lazy) in enumerate(ops):
                        callers.start_soon(call, i, kind, delay, lazy, actor)
                    await trio.sleep(0)
                    while len(acked) < len(ops) and not actor.cancel_scope.cancel_called:
                        await trio.sleep(0.001)
                    actor.cancel_scope.cancel()
                while len(acked) < len(ops):  # the stopped actor failed what was queued
                    await trio.sleep(0.001)
        except* Crash:
            pass
        finally:
            conn.close()

    trio.run(main)
    kinds = dict(enumerate(k for k, _, _ in ops))
    restarted = _open(path)
    try:
        present = {row[0] for row in restarted.execute("SELECT id FROM kv")}
        assert restarted.execute("SELECT count(*) FROM child").fetchone()[0] == 0
    finally:
        restarted.close()
    for i, ok in acked.items():
        if ok:
            assert i in present, f"acknowledged request {i} lost"
            assert kinds[i] == "put"
        else:
            assert i not in present, f"request {i} got an error but is in the database"
    assert all(kinds[i] == "put" for i in present), "a failed request left a row"


async def test_a_burst_is_one_commit(tmp_path):
    """N requests queued together cost one batch (one thread hop, one COMMIT)."""
    conn = _open(tmp_path / "b.db")
    writer = Writer(conn)
    try:
        async with trio.open_nursery() as nursery:
            results: list[int] = []

            async def put(i: int) -> None:
                results.append(await writer.submit(_work(i, "put")))

            for i in range(50):
                nursery.start_soon(put, i)
            await trio.sleep(0)  # all 50 queued before the actor runs
            await nursery.start(writer.run)
            while len(results) < 50:
                await trio.sleep(0.001)
            nursery.cancel_scope.cancel()
        assert sorted(results) == list(range(50))
        assert writer.stats.commits == 1 and writer.stats.largest_batch == 50
    finally:
        conn.close()


async def test_a_lazy_request_waits_for_company_and_no_longer(tmp_path):
    """A lazy request alone waits (up to linger_s) for the next request and commits with it;
    alone it still commits after linger_s; a request that is not lazy never waits."""
    conn = _open(tmp_path / "l.db")
    writer = Writer(conn, linger_s=0.5)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            done: list[int] = []

            async def put(i: int, lazy: bool) -> None:
                done.append(await writer.submit(_work(i, "put"), lazy=lazy))

            nursery.start_soon(put, 1, True)
            await trio.sleep(0.05)
            assert done == [] and writer.stats.batches == 0  # waiting for company
            with trio.fail_after(0.4):
                await put(2, False)  # comes, commits at once, takes the lazy one along
            await trio.sleep(0.01)
            assert sorted(done) == [1, 2]
            assert (writer.stats.batches, writer.stats.lingered) == (1, 1)
            start = trio.current_time()
            await put(3, True)  # alone: committed after the linger
            assert 0.4 < trio.current_time() - start < 5 and writer.stats.batches == 2
            with trio.fail_after(0.4):
                await put(4, False)  # not lazy: never waits
            nursery.cancel_scope.cancel()
        assert {r[0] for r in conn.execute("SELECT id FROM kv")} == {1, 2, 3, 4}
    finally:
        conn.close()


async def test_an_actor_stopped_while_a_lazy_request_lingers_fails_it(tmp_path):
    """The actor stops while a lazy request waits for company: its caller hears WriterClosed
    at once (it hung before: the request was off the queue and in no batch), nothing of it is
    committed."""
    conn = _open(tmp_path / "s.db")
    writer = Writer(conn, linger_s=10.0)
    outcomes: list[object] = []

    async def put() -> None:
        try:
            outcomes.append(await writer.submit(_work(1, "put"), lazy=True))
        except WriterClosed as exc:
            outcomes.append(exc)

    try:
        with trio.fail_after(5):
            async with trio.open_nursery() as callers:
                async with trio.open_nursery() as actor:
                    await actor.start(writer.run)
                    callers.start_soon(put)
                    await trio.sleep(0.05)  # taken from the queue, lingering
                    assert writer.stats.batches == 0
                    actor.cancel_scope.cancel()
        assert len(outcomes) == 1 and isinstance(outcomes[0], WriterClosed)
        assert conn.execute("SELECT count(*) FROM kv").fetchone()[0] == 0
    finally:
        conn.close()


async def test_nested_transaction_is_a_savepoint_of_the_batch(tmp_path):
    """``store.transaction`` inside a request rolls back its own rows only."""
    conn = _open(tmp_path / "n.db")
    writer = Writer(conn)

    def nested(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO kv (id, kind) VALUES (1, 'put')")
        with pytest.raises(ValueError), transaction(c):
            c.execute("INSERT INTO kv (id, kind) VALUES (2, 'fail')")
            raise ValueError("inner")

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            await writer.submit(nested)
            nursery.cancel_scope.cancel()
        assert [r[0] for r in conn.execute("SELECT id FROM kv")] == [1]
    finally:
        conn.close()


async def test_a_request_cancelled_while_queued_never_runs(tmp_path):
    conn = _open(tmp_path / "c.db")
    writer = Writer(conn)
    try:
        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()
            outcome: list[str] = []

            async def queued() -> None:
                with scope:
                    await writer.submit(_work(7, "put"))
                    outcome.append("ran")
                outcome.append("cancelled" if scope.cancelled_caught else "?")

            nursery.start_soon(queued)
            await trio.sleep(0.01)  # queued: the actor is not running yet
            scope.cancel()
            await trio.sleep(0.01)
            assert outcome == ["cancelled"]
            await nursery.start(writer.run)
            assert await writer.submit(_work(8, "put")) == 8
            nursery.cancel_scope.cancel()
        assert [r[0] for r in conn.execute("SELECT id FROM kv")] == [8]
    finally:
        conn.close()


async def test_the_chat_service_writes_join_the_runtime_group_commit(tmp_path):
    """With the runtime's store, 20 concurrent plain posts (the ChatService's inserts) and 20
    runtime state writes commit in fewer batches than requests, all on one connection, and a
    search then reads them without the write lock."""
    from mchat_actors.chat.embedded import open_embedded_chat_service
    from mchat_actors.store import open_store, set_state

    path = str(tmp_path / "shared.db")
    async with open_store(path) as store, \
            open_embedded_chat_service(path, store=store) as chat:
        user = await chat.create_user(name="kim", email=None)
        rooms = [await chat.create_room(name=f"r{i}", kind="channel") for i in range(20)]
        before = store.writer.stats.batches, store.writer.stats.requests
        async with trio.open_nursery() as nursery:
            for i, room in enumerate(rooms):
                nursery.start_soon(partial(chat.send_message, room.id, user.id,
                                           f"/remember 부품{i} 불량률 {i}%", post_id=f"p{i}",
                                           respond=True))
                nursery.start_soon(store.run, set_state, f"k{i}", "v")
        batches = store.writer.stats.batches - before[0]
        requests = store.writer.stats.requests - before[1]
        assert requests >= 60 and batches < requests / 2
        assert len(await chat.search(rooms[3].id, user.id, "부품3 불량률")) == 1
        assert await store.read(lambda db: db.conn.execute(
            "SELECT count(*) FROM chat_messages WHERE role = 'user'").fetchone()[0]) == 20
