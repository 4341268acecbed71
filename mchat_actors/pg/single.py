"""One runtime per PostgreSQL database, until replicas exist (docs/postgresql.md).

Two ``mchat-actors serve`` processes on one database would each read every event and handle
it: the tables keep one row per post and per reply, but both would call the ChatService (a
``/remember`` stored twice in the agent) and both senders would post the same outbox rows. So
the process holds a session-level advisory lock on a connection of its own (not the pool's)
for as long as it runs; a second process finds it taken and stops at start with a clear
error. The lock goes with the connection: a clean stop, a crash or SIGKILL (the kernel closes
the socket) frees it at once; a cut network frees it when the server notices the dead
connection (TCP keepalive, as configured on the server). When the server restarts, the
lock's connection is gone: a watcher checks it every few seconds and takes the lock again;
if another process took it meanwhile, this one stops (``DatabaseInUse``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import trio

from ..errors import StoreError
from .database import pg_error
from .url import DatabaseUrl, redact

logger = logging.getLogger(__name__)

LOCK_KEY = "mchat-actors:one-runtime-per-database"
CHECK_EVERY_S = 5.0


class DatabaseInUse(StoreError):
    """Another mchat-actors process holds this database."""


def _lock(url: DatabaseUrl) -> psycopg.Connection[tuple[object, ...]]:
    conn = psycopg.connect(url.conninfo(), autocommit=True, application_name="mchat-actors lock")
    try:
        row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                           (LOCK_KEY,)).fetchone()
    except BaseException:
        conn.close()
        raise
    if row is None or not row[0]:
        conn.close()
        raise DatabaseInUse(
            f"another mchat-actors process is running on {url.display()}: one process per "
            "database until replicas are supported (docs/postgresql.md); stop it first")
    return conn


def _release(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Unlock, then close: closing alone frees the lock only when the server's backend has
    finished exiting, so a process starting right after a clean stop could find it taken."""
    try:
        conn.execute("SELECT pg_advisory_unlock_all()")
    except psycopg.Error:
        pass  # a dead connection holds nothing
    finally:
        conn.close()


def _alive(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    try:
        conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


@asynccontextmanager
async def one_runtime(url: DatabaseUrl, *, check_every_s: float = CHECK_EVERY_S
                      ) -> AsyncIterator[None]:
    """Hold the database's runtime lock while the body runs. Every ``check_every_s`` the
    lock's connection is checked; when the server dropped it (a restart), the lock is taken
    again as soon as the server answers.

    Raises:
        DatabaseInUse: another process holds it (at start, or took it while the server was
            restarting: this process then stops).
        StoreUnavailable: the server cannot be reached at start.
    """
    try:
        conn = await trio.to_thread.run_sync(_lock, url)
    except psycopg.Error as exc:
        raise pg_error(url, f"cannot lock {url.display()}", exc) from None
    held = [conn]

    async def watch() -> None:
        while True:
            await trio.sleep(check_every_s)
            if await trio.to_thread.run_sync(_alive, held[0]):
                continue
            await trio.to_thread.run_sync(held[0].close)
            try:
                held[0] = await trio.to_thread.run_sync(_lock, url)
                logger.info("single: the runtime lock on %s is held again", url.display())
            except psycopg.Error as exc:  # still down: the next check tries again
                logger.warning("single: cannot take the runtime lock again yet (%s)",
                               redact(f"{type(exc).__name__}: {exc}", url))

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            yield
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_release, held[0])
