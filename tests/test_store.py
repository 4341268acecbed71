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
