"""The PostgreSQL backend's connections: a psycopg 3 pool driven from trio through threads.

Why threads: psycopg's async connections wait on asyncio's event loop (``psycopg.waiting``
calls ``asyncio.get_running_loop``); psycopg has no trio or anyio support (psycopg issue #29
is open, the anyio pull request #146 was closed unmerged), so ``AsyncConnection`` does not run
under trio. The synchronous ``psycopg.Connection`` with ``psycopg_pool.ConnectionPool``, called
through ``trio.to_thread.run_sync``, is maintained, needs no second event loop, and is the
model of the SQLite storage actor, which already runs its work in a worker thread. A
``trio.CapacityLimiter`` the size of the pool keeps threads from queueing on the pool.

``PgDatabase.run(fn, *args)`` runs ``fn(conn, *args)`` in one transaction on a pooled
connection and returns its value once committed. psycopg errors become the project's typed
errors with the password scrubbed from their text: ``StoreUnavailable`` when retrying can help
(the server is unreachable, the pool is exhausted, a serialization failure or deadlock),
``StoreError`` otherwise (bad SQL, a constraint: a bug).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar

import psycopg
import psycopg_pool
import trio

from ..errors import StoreError, StoreUnavailable
from ..secrecy import Secret
from .schema import migrate
from .url import DatabaseUrl, parse_database_url, redact

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]

POOL_MIN = 1
POOL_MAX = 8
POOL_TIMEOUT_S = 10.0
PROBE_WAIT_S = 2.0  # is_writable (health): how long to wait for a connection
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03"})


def pg_error(url: DatabaseUrl, what: str, exc: BaseException) -> StoreError:
    """The typed error for ``exc``, its text free of the password."""
    text = redact(f"{what}: {type(exc).__name__}: {exc}", url)
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, psycopg.OperationalError | psycopg_pool.PoolTimeout
                  | psycopg_pool.PoolClosed) or sqlstate in _RETRYABLE_SQLSTATES:
        return StoreUnavailable(text)
    return StoreError(text)


class PgDatabase:
    """The pool of one database. Create with ``open_database``."""

    def __init__(self, url: DatabaseUrl, pool: psycopg_pool.ConnectionPool[Conn],
                 limiter: trio.CapacityLimiter) -> None:
        self.url = url
        self._pool = pool
        self._limiter = limiter

    def __repr__(self) -> str:
        return f"PgDatabase({self.url.display()!r})"

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any],
              wait_s: float | None = None) -> T:
        with self._pool.connection(timeout=wait_s) as conn, conn.transaction():
            return fn(conn, *args, **kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(conn, *args, **kwargs)`` in one transaction; its value once committed.

        Raises:
            StoreUnavailable: the server or the pool cannot serve now; retrying can help.
            StoreError: any other database error.

        Cancellation: a call waiting for a thread is dropped; a started one completes
        (psycopg cannot be interrupted from another thread without losing the connection).
        """
        name = getattr(fn, "__name__", "query")
        try:
            return await trio.to_thread.run_sync(partial(self._call, fn, args, kwargs),
                                                 limiter=self._limiter)
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
            raise pg_error(self.url, name, exc) from None

    def _call_own(self, fn: Callable[..., T], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> T:
        with self._pool.connection() as conn:
            return fn(conn, *args, **kwargs)

    async def run_own(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(conn, ...)`` on a pooled connection outside any transaction: ``fn`` opens its
        own (``conn.transaction()``) and knows when it committed (``leases.Lessee.tick``).
        Errors as ``run``; a transaction left open is rolled back by the pool."""
        name = getattr(fn, "__name__", "query")
        try:
            return await trio.to_thread.run_sync(partial(self._call_own, fn, args, kwargs),
                                                 limiter=self._limiter)
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
            raise pg_error(self.url, name, exc) from None

    async def is_writable(self, *, wait_s: float = PROBE_WAIT_S) -> bool:
        """Whether a write commits now. Waits at most ``wait_s`` for a connection (not the
        pool's ``timeout_s``): health answers quickly while the server is down."""
        def probe(conn: Conn) -> bool:
            conn.execute("INSERT INTO mchat_state (key, value) VALUES ('health_probe', "
                         "extract(epoch FROM now())::text) ON CONFLICT (key) DO UPDATE "
                         "SET value = excluded.value")
            return True

        try:
            return await trio.to_thread.run_sync(partial(self._call, probe, (), {}, wait_s),
                                                 limiter=self._limiter)
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed):
            return False


def _open_pool(url: DatabaseUrl, min_size: int, max_size: int, timeout_s: float
               ) -> psycopg_pool.ConnectionPool[Conn]:
    # check: a connection the server dropped (restart, failover) is replaced before use,
    # not handed out to fail the caller's transaction
    pool: psycopg_pool.ConnectionPool[Conn] = psycopg_pool.ConnectionPool(
        url.conninfo(), min_size=min_size, max_size=max_size, timeout=timeout_s,
        open=False, name="mchat", check=psycopg_pool.ConnectionPool.check_connection)
    pool.open(wait=True, timeout=timeout_s)
    return pool


def _migrate(url: DatabaseUrl) -> None:
    with psycopg.connect(url.conninfo(), autocommit=True) as conn:
        migrate(conn)


@asynccontextmanager
async def open_database(url: str | Secret | DatabaseUrl, *, min_size: int = POOL_MIN,
                        max_size: int = POOL_MAX, migrate: bool = True,
                        timeout_s: float = POOL_TIMEOUT_S) -> AsyncIterator[PgDatabase]:
    """Open the pool of ``url`` (migrating the schema first); close it on exit.

    ``timeout_s``: how long a call waits for a connection (the server being down included)
    before ``StoreUnavailable``.

    Raises:
        ConfigError: the URL is not valid (``url.parse_database_url``).
        StoreUnavailable: the server cannot be reached or refuses the credentials.
        StoreError: a migration failed, or the database was made by a newer release.
    """
    parsed = url if isinstance(url, DatabaseUrl) else parse_database_url(url)
    try:
        if migrate:
            await trio.to_thread.run_sync(_migrate, parsed)
        pool = await trio.to_thread.run_sync(_open_pool, parsed, min_size, max_size,
                                             timeout_s)
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        raise pg_error(parsed, f"cannot open {parsed.display()}", exc) from None
    except ValueError as exc:  # a newer release's schema
        raise StoreError(redact(str(exc), parsed)) from None
    try:
        yield PgDatabase(parsed, pool, trio.CapacityLimiter(max_size))
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(pool.close)
