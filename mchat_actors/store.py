"""The runtime's SQLite database: one writer, group commit, schema in one place.

``Store`` owns the runtime's write connection through its storage actor (``writer.Writer``):
``await store.run(fn, *args)`` sends ``fn(db, *args)`` to the actor, which runs everything queued
at that moment as ONE transaction in its worker thread (each call in its own savepoint) and
answers each caller after the ``COMMIT``. Calls never block the trio loop, and a burst of N calls
costs one thread hop and one commit. The functions passed to ``run`` take the
``sqlite_utils.Database`` first; they live in the repository modules (``outbox.py``,
``mapping.py``, ``retry_queue.py`` ...).

``store.read(fn, *args)`` runs a read on a second connection (WAL: it sees every committed write
and never takes the write lock). The embedded ChatService joins the same writer when it is given
the store (``open_embedded_chat_service(..., store=store)``): its message inserts are batched
with the runtime's rows.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils
import trio

from .checkpointer import CHECKPOINT_INTERVAL_S, WRITER_AUTOCHECKPOINT_PAGES, Checkpointer
from .errors import StoreError, StoreUnavailable
from .horizon import first_horizon_ms
from .migrations import Migration, statements, upgrade
from .writer import Writer, WriterClosed
from .writer import transaction as transaction  # the one transaction helper

T = TypeVar("T")

SCHEMA_VERSION = 2  # = len(MIGRATIONS), also kept in mchat_state for older tools

# Version 1: the tables of release ca5a05a.
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
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    remote_addr TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS mchat_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Version 2: the webhook inbox (#14) and the durable retry queue (#10).
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS webhook_inbox (
    post_id TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    received_at REAL NOT NULL
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
"""

# The runtime's schema history (see ``migrations``): append, never edit a released step.
MIGRATIONS = (
    Migration(1, "runtime tables of release ca5a05a", statements(_SCHEMA)),
    Migration(2, "webhook inbox and durable retry queue", statements(_SCHEMA_V2)),
)


class StoreConnection(sqlite3.Connection):
    """The runtime's connection. ``analyzer`` is set only while the storage actor runs a
    request of the embedded ChatService (``chat.search.analyzer_of`` reads it, so the search
    index is written with the service's analyzer on the shared connection)."""

    analyzer: object | None = None


def connect(path: str | Path, *, read_only: bool = False) -> sqlite_utils.Database:
    """Open ``path`` in WAL mode with a busy timeout; usable from any one thread at a time.
    ``read_only``: it refuses writes and never waits for a lock (``Store.lookup``'s)."""
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False,
                               timeout=0.0 if read_only else 30.0,
                               isolation_level=None, factory=StoreConnection)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if read_only:
            conn.execute("PRAGMA query_only=ON")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    return sqlite_utils.Database(conn)


def migrate(db: sqlite_utils.Database) -> None:
    """Create or upgrade the runtime's tables (``migrations.upgrade``). Idempotent.

    Raises:
        StoreError: the database was made by a newer release (never downgraded).
    """
    try:
        upgrade(db.conn, "runtime", MIGRATIONS)
    except ValueError as exc:
        raise StoreError(str(exc)) from exc
    db.conn.execute(
        "INSERT INTO mchat_state (key, value) VALUES ('schema_version', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (str(SCHEMA_VERSION),),
    )
    # The first open of a database starts the sweeper's read horizon (actors.sweeper): posts
    # from 5 s before the process started on are owed, however long it takes to get going.
    db.conn.execute(
        "INSERT OR IGNORE INTO mchat_state (key, value) VALUES ('sweep_horizon_ms', ?)",
        (str(first_horizon_ms()),),
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
    """Sole owner of the runtime's SQLite connections. Create with ``open_store``."""

    def __init__(self, db: sqlite_utils.Database, path: str, writer: Writer | None = None,
                 reader: sqlite_utils.Database | None = None,
                 checkpointer: Checkpointer | None = None,
                 peeker: sqlite_utils.Database | None = None) -> None:
        """``writer``: the storage actor (``open_store`` starts it); without one each call is
        its own transaction in a worker thread (tools, tests that run the store inline).
        ``peeker``: the connection of ``lookup`` (never waits for a lock)."""
        self.db = db
        self.path = path
        self.writer = writer
        self._reader = reader
        self.checkpointer = checkpointer
        self._peeker = peeker
        self._read_limiter = trio.CapacityLimiter(1)
        self.lookup_fallbacks = 0  # lookups that found the database busy (read in a thread)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(db, *args, **kwargs)`` in the next group commit; its value once committed.

        Raises:
            StoreUnavailable: busy, locked, full disk, I/O, or the store is closed.
            StoreError: any other sqlite error (a bug, not a condition).

        Cancellation: a call still queued is dropped; a started one completes first.
        """
        return await self._submit(partial(fn, self.db, *args, **kwargs), fn, lazy=False)

    async def run_lazy(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``run`` for a write nobody downstream waits for (a "sent" mark, the bot's own post
        recorded): alone in the queue it waits a few ms for another request to commit with
        (``writer.Writer``'s ``lazy``). Without a storage actor: ``run``."""
        if self.writer is None:
            return await self.run(fn, *args, **kwargs)
        return await self._submit(partial(fn, self.db, *args, **kwargs), fn, lazy=True)

    async def _submit(self, work: Callable[[], T], fn: Callable[..., T], *, lazy: bool) -> T:
        if self.writer is None:
            try:
                return await trio.to_thread.run_sync(work, limiter=self._read_limiter)
            except sqlite3.Error as exc:
                raise store_error(fn, exc) from exc
        try:
            return await self.writer.submit(lambda _conn: work(), lazy=lazy,
                                            name=getattr(fn, "__name__", "query"))
        except sqlite3.Error as exc:
            raise store_error(fn, exc) from exc
        except WriterClosed as exc:
            raise StoreUnavailable(f"{getattr(fn, '__name__', 'query')}: {exc}") from exc

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run the read-only ``fn(db, ...)`` on the read connection (WAL: every committed write
        is visible; no write lock is taken). Falls back to ``run`` without a read connection."""
        if self._reader is None:
            return await self.run(fn, *args, **kwargs)
        try:
            return await trio.to_thread.run_sync(
                partial(fn, self._reader, *args, **kwargs), limiter=self._read_limiter)
        except sqlite3.Error as exc:
            raise store_error(fn, exc) from exc

    async def lookup(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``read`` for a lookup by an index (a few pages): on the event loop's thread, on a
        WAL read connection of its own that never waits for a lock. It takes tens of
        microseconds where a worker thread's round trip takes about 0.3 ms on an idle machine
        (two thread wake-ups), which a question's answer waits for. When SQLite says busy or
        locked (a WAL recovery), it is read in the worker thread (``read``) instead."""
        if self._peeker is None:
            return await self.read(fn, *args, **kwargs)
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            return fn(self._peeker, *args, **kwargs)
        except sqlite3.Error as exc:
            error = store_error(fn, exc)
            if not isinstance(error, StoreUnavailable):
                raise error from exc
        self.lookup_fallbacks += 1
        return await self.read(fn, *args, **kwargs)

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
async def open_store(path: str | Path, *, checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S
                     ) -> AsyncIterator[Store]:
    """Open (creating and migrating) the database at ``path``; close it on exit.
    ``checkpoint_interval_s``: how often the checkpointer copies the WAL back (``checkpointer``)."""
    db = await trio.to_thread.run_sync(connect, path)
    reader: sqlite_utils.Database | None = None
    checkpoints: sqlite_utils.Database | None = None
    peeker: sqlite_utils.Database | None = None
    try:
        await trio.to_thread.run_sync(migrate, db)
        reader = await trio.to_thread.run_sync(connect, path)
        peeker = await trio.to_thread.run_sync(partial(connect, path, read_only=True))
        checkpoints = await trio.to_thread.run_sync(connect, path)
        # the storage actor's commits leave checkpoints to the checkpointer (its module's doc)
        await trio.to_thread.run_sync(
            db.conn.execute, f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT_PAGES}")
        writer = Writer(db.conn)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            checkpointer = Checkpointer(checkpoints.conn, writer, checkpoint_interval_s)
            await nursery.start(checkpointer.run)
            yield Store(db, str(path), writer, reader, checkpointer, peeker)
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(db.conn.close)
            for other in (reader, peeker):
                if other is not None:
                    await trio.to_thread.run_sync(other.conn.close)
            if checkpoints is not None:
                await trio.to_thread.run_sync(checkpoints.conn.close)
