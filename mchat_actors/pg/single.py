"""One runtime per PostgreSQL database, until replicas exist (docs/postgresql.md).

Two ``mchat-actors serve`` processes on one database would each read every event and handle
it: the tables keep one row per post and per reply, but both would call the ChatService (a
``/remember`` stored twice in the agent) and both senders would post the same outbox rows. So
the process holds a session-level advisory lock on a connection of its own (not the pool's)
for as long as it runs; a second process finds it taken and stops at start with a clear
error. The lock goes with the connection: a clean stop, a crash or SIGKILL (the kernel closes
the socket) frees it at once; a cut network frees it when the server notices the dead
connection (TCP keepalive, as configured on the server).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import trio

from ..errors import StoreError
from .database import pg_error
from .url import DatabaseUrl

LOCK_KEY = "mchat-actors:one-runtime-per-database"


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


@asynccontextmanager
async def one_runtime(url: DatabaseUrl) -> AsyncIterator[None]:
    """Hold the database's runtime lock while the body runs.

    Raises:
        DatabaseInUse: another process holds it.
        StoreUnavailable: the server cannot be reached.
    """
    try:
        conn = await trio.to_thread.run_sync(_lock, url)
    except psycopg.Error as exc:
        raise pg_error(url, f"cannot lock {url.display()}", exc) from None
    try:
        yield
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(conn.close)
