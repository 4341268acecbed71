"""The runtime's SQLite database: one connection, one thread at a time, schema in one place.

``Store`` is the sole owner of the runtime's connection. Work runs in a worker thread through
``await store.run(fn, *args)`` under a ``CapacityLimiter(1)``, so calls are serialised and never
block the trio loop. The functions passed to ``run`` take the ``sqlite_utils.Database`` first;
they live next to the actor that needs them (``outbox.py``, ``mapping.py`` ...).

The ChatService's tables (users, chat_rooms, chat_messages, memories ...) live in the same file
but are owned by the ChatService, which opens its own connection (WAL lets them share).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils
import trio

from .errors import StoreError, StoreUnavailable

T = TypeVar("T")

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mchat_channel_mapping (
    id INTEGER PRIMARY KEY,
    mchat_channel_id TEXT NOT NULL UNIQUE,
    mchat_team_id TEXT NOT NULL DEFAULT '',
    mchat_channel_name TEXT NOT NULL DEFAULT '',
    mchat_display_name TEXT NOT NULL DEFAULT '',
    channel_type TEXT NOT NULL DEFAULT '',
    agent_room_id TEXT NOT NULL,
    sync_enabled INTEGER NOT NULL DEFAULT 1,
    last_post_id TEXT,
    last_post_at INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS mchat_user_mapping (
    id INTEGER PRIMARY KEY,
    mchat_user_id TEXT NOT NULL UNIQUE,
    mchat_username TEXT NOT NULL DEFAULT '',
    mchat_email TEXT,
    agent_user_id TEXT NOT NULL,
    matched_by TEXT NOT NULL DEFAULT 'created',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS mchat_posts (
    post_id TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL,
    create_at INTEGER NOT NULL DEFAULT 0,
    update_at INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    processed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS mchat_posts_channel ON mchat_posts (channel_id, create_at);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    reply_key TEXT NOT NULL UNIQUE,
    channel_id TEXT NOT NULL,
    root_id TEXT,
    trigger_post_id TEXT,
    message TEXT NOT NULL,
    pending_post_id TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    first_attempt_at REAL,
    last_attempt_at REAL,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    sent_at REAL,
    mm_post_id TEXT,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (status, channel_id, id);
CREATE TABLE IF NOT EXISTS webhook_inbox (
    post_id TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    remote_addr TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS mchat_retry (
    id INTEGER PRIMARY KEY,
    channel_id TEXT NOT NULL,
    event_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    post_id TEXT,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS mchat_retry_pending ON mchat_retry (status, channel_id, id);
CREATE TABLE IF NOT EXISTS mchat_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open ``path`` in WAL mode with a busy timeout; usable from any one thread at a time."""
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0,
                               isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    return sqlite_utils.Database(conn)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``: the one way the runtime writes several rows at once.

    ``COMMIT`` sits inside the error handling: when it fails (SQLITE_BUSY, a deferred
    constraint), the transaction is rolled back and the error re-raised, so the connection is
    never left inside an open transaction for the next caller to commit by accident.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def migrate(db: sqlite_utils.Database) -> None:
    """Create or upgrade the runtime's tables. Idempotent."""
    db.conn.executescript(_SCHEMA)
    db.conn.execute(
        "INSERT INTO mchat_state (key, value) VALUES ('schema_version', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (str(SCHEMA_VERSION),),
    )
    # The first open of a database starts the sweeper's read horizon (actors.sweeper): posts
    # from 5 s before it on are owed, however long the first process takes to get going.
    db.conn.execute(
        "INSERT OR IGNORE INTO mchat_state (key, value) VALUES ('sweep_horizon_ms', ?)",
        (str(int(time.time() * 1000) - 5_000),),
    )


# SQLite's own words for conditions that pass (SQLITE_BUSY, LOCKED, FULL, IOERR, CANTOPEN)
_TRANSIENT_MESSAGES = ("database is locked", "database table is locked", "disk i/o error",
                       "database or disk is full", "unable to open database file",
                       "database schema has changed")


def store_error(fn: Callable[..., object], exc: sqlite3.Error) -> StoreError:
    """The typed error for ``exc``: ``StoreUnavailable`` when retrying can help (busy, locked,
    full disk, I/O), else ``StoreError`` (bad SQL, a constraint: a bug, not a condition)."""
    where = f"{getattr(fn, '__name__', 'query')}: {exc}"
    if isinstance(exc, sqlite3.OperationalError) and any(
            m in str(exc).lower() for m in _TRANSIENT_MESSAGES):
        return StoreUnavailable(where)
    return StoreError(where)


class Store:
    """Sole owner of the runtime's SQLite connection. Create with ``open_store``."""

    def __init__(self, db: sqlite_utils.Database, path: str) -> None:
        self.db = db
        self.path = path
        self._limiter = trio.CapacityLimiter(1)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(db, *args, **kwargs)`` in the store's thread; sqlite errors -> ``StoreError``.

        Cancellation: the thread call is not abandoned (``abandon_on_cancel=False``), so a
        started write always completes before cancellation is delivered.
        """
        try:
            return await trio.to_thread.run_sync(
                partial(fn, self.db, *args, **kwargs), limiter=self._limiter)
        except sqlite3.Error as exc:
            raise store_error(fn, exc) from exc

    async def is_writable(self) -> bool:
        def probe(db: sqlite_utils.Database) -> bool:
            db.conn.execute(
                "INSERT INTO mchat_state (key, value) VALUES ('health_probe', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(time.time()),),
            )
            return True

        try:
            return await self.run(probe)
        except StoreError:
            return False

    async def get_state(self, key: str) -> str | None:
        return await self.run(get_state, key)

    async def set_state(self, key: str, value: str) -> None:
        await self.run(set_state, key, value)


def get_state(db: sqlite_utils.Database, key: str) -> str | None:
    row = db.conn.execute("SELECT value FROM mchat_state WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_state(db: sqlite_utils.Database, key: str, value: str) -> None:
    db.conn.execute(
        "INSERT INTO mchat_state (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def audit(db: sqlite_utils.Database, *, actor: str, action: str, target: str = "",
          detail: str = "", remote_addr: str = "") -> None:
    """Append an ``audit_log`` row (who, what, when, from where)."""
    db.conn.execute(
        "INSERT INTO audit_log (at, actor, action, target, detail, remote_addr) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (time.time(), actor, action, target, detail, remote_addr),
    )


@asynccontextmanager
async def open_store(path: str | Path) -> AsyncIterator[Store]:
    """Open (creating and migrating) the database at ``path``; close it on exit."""
    db = await trio.to_thread.run_sync(connect, path)
    try:
        await trio.to_thread.run_sync(migrate, db)
        yield Store(db, str(path))
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(db.conn.close)
