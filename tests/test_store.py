from __future__ import annotations

import sqlite3

import pytest

from mchat_actors.errors import StoreError
from mchat_actors.store import audit, open_store


async def test_open_store_creates_schema_in_wal_mode(tmp_path):
    """A new database gets every runtime table and WAL journaling."""
    path = tmp_path / "x.db"
    async with open_store(path) as store:
        tables = set(store.db.table_names())
        assert {"mchat_channel_mapping", "mchat_user_mapping", "outbox", "audit_log",
                "mchat_posts", "mchat_state"} <= tables
        mode = store.db.conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        assert await store.is_writable()


async def test_state_survives_reopen(tmp_path):
    """Values written through set_state are there after the store is reopened."""
    path = tmp_path / "x.db"
    async with open_store(path) as store:
        await store.set_state("connection_id", "abc")
        await store.run(audit, actor="admin", action="sync_off", target="c1")
    async with open_store(path) as store:
        assert await store.get_state("connection_id") == "abc"
        assert await store.get_state("missing") is None
        rows = list(store.db["audit_log"].rows)
        assert rows[0]["action"] == "sync_off"


async def test_sqlite_errors_become_store_error(tmp_path):
    """A failing query raises StoreError, chained to the sqlite3 error."""
    async with open_store(tmp_path / "x.db") as store:
        def bad(db):
            db.conn.execute("SELECT * FROM no_such_table")

        with pytest.raises(StoreError) as info:
            await store.run(bad)
        assert isinstance(info.value.__cause__, sqlite3.Error)


def test_a_failed_commit_leaves_no_open_transaction(tmp_path):
    """COMMIT inside the error handling: a COMMIT that fails (here a deferred foreign key;
    SQLITE_BUSY behaves the same) is rolled back, so the connection is not left inside a
    transaction that the next caller would commit by accident (the old hand-written blocks
    ran COMMIT after their try)."""
    from mchat_actors.store import connect, transaction

    db = connect(tmp_path / "t.db")
    db.conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    db.conn.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES "
                    "parent(id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError):
        with transaction(db.conn):
            db.conn.execute("INSERT INTO child (parent) VALUES (42)")
    assert not db.conn.in_transaction
    assert db.conn.execute("SELECT COUNT(*) FROM child").fetchone() == (0,)


async def test_busy_and_locked_are_transient_bad_sql_is_not(tmp_path):
    """Only conditions that pass become StoreUnavailable (retried); a bug stays StoreError."""
    from mchat_actors.errors import StoreUnavailable
    from mchat_actors.store import store_error

    def fn(db):
        return None

    assert isinstance(store_error(fn, sqlite3.OperationalError("database is locked")),
                      StoreUnavailable)
    bug = store_error(fn, sqlite3.OperationalError("no such column: x"))
    assert isinstance(bug, StoreError) and not isinstance(bug, StoreUnavailable)
    assert not isinstance(store_error(fn, sqlite3.IntegrityError("UNIQUE")), StoreUnavailable)


async def test_a_lookup_runs_on_the_loop_thread_and_sees_every_commit(tmp_path):
    """``Store.lookup``: no worker thread (its point is to skip the hop), every committed write
    visible, and the connection refuses writes."""
    import threading

    from mchat_actors import posts
    from mchat_actors.messages import ChannelId, Post, PostId

    async with open_store(tmp_path / "x.db") as store:
        threads: list[int] = []

        def seen(db, post_id):
            threads.append(threading.get_ident())
            return posts.is_post_seen(db, post_id)

        assert not await store.lookup(seen, "p1")
        post = Post(id=PostId("p1"), channel_id=ChannelId("c1"), user_id="u1", message="hi")
        await store.run(posts.record_post, post, status="stored", source="websocket")
        assert await store.lookup(seen, "p1")
        assert threads == [threading.get_ident()] * 2

        def write(db):
            db.conn.execute("INSERT INTO mchat_state (key, value) VALUES ('x', 'y')")

        with pytest.raises(StoreError):
            await store.lookup(write)
        assert await store.get_state("x") is None


async def test_a_busy_lookup_is_read_in_the_worker_thread(tmp_path):
    """SQLite busy or locked on the lookup's connection (which never waits): the same read
    runs on the read connection in a worker thread, and is counted."""
    import threading

    async with open_store(tmp_path / "x.db") as store:
        await store.set_state("k", "v")
        calls: list[int] = []

        def flaky(db):
            calls.append(threading.get_ident())
            if len(calls) == 1:
                raise sqlite3.OperationalError("database is locked")
            return db.conn.execute("SELECT value FROM mchat_state WHERE key = 'k'").fetchone()[0]

        assert await store.lookup(flaky) == "v"
        assert calls[0] == threading.get_ident() != calls[1]
        assert store.lookup_fallbacks == 1
