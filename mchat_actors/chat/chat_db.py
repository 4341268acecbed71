"""How the embedded ChatService reaches its tables (``chat.embedded`` builds on it).

Writes: given the runtime's ``store`` (``app.run`` does), every write is a request to its
storage actor (``writer.Writer``) and commits in the same group commit as the runtime's rows,
run on the runtime's connection with the service's row factory and analyzer; without one
(tests, tools) the service writes on its own connection, one transaction a call. Reads run on
the service's own connection in a deferred read transaction under a ``CapacityLimiter(1)``: WAL
shows them every committed write and they never take the write lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import attrs
import trio

from ..errors import ChatServiceError
from . import repo, units
from .analysis import Analyzer
from .protocol import NewMessage, StoredMessage
from .questions import COMMIT_READ_BUDGET_S
from .schema import transaction
from .vector_cache import VectorCache

if TYPE_CHECKING:
    from ..store import Store

T = TypeVar("T")


class ChatHandle(Protocol):
    """How the service reaches its tables: ``chat.chat_db.ChatDatabase`` (SQLite) or
    ``pg.chat_db.PgChatDatabase``. ``db``/``read`` run ``fn(conn, ...)`` in one transaction;
    the functions are ``chat``'s (the PostgreSQL handle runs their twins)."""

    analyzer: Analyzer

    # the queries the units run with: the chat.repo module, or pg.chat_db.PgQueries
    queries: Any

    @property
    def vectors(self) -> VectorCache:
        """The embeddings this process has read (``chat.vector_cache``)."""
        ...

    def now_ms(self) -> int: ...

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    def shares_store(self) -> bool: ...

    def store_messages_work(self, messages: Sequence[NewMessage]
                            ) -> Callable[[Any], list[StoredMessage]]: ...

    def shared_work(self, fn: Callable[..., T], *args: Any) -> Callable[[Any], T]: ...


class ChatDatabase:
    """The service's connection, the runtime's store when shared, and the analyzer its search
    index is written with."""

    def __init__(self, conn: sqlite3.Connection, *, clock: Callable[[], float],
                 store: Store | None, analyzer: Analyzer) -> None:
        self._conn = conn
        self._store = store
        self._clock = clock
        self._limiter = trio.CapacityLimiter(1)
        self.analyzer = analyzer
        self.queries: Any = repo
        # a question's read runs inside the storage actor's request, this long at most
        # (``chat.questions``); None: it reads on this connection first
        self.commit_read_budget_s: float | None = COMMIT_READ_BUDGET_S

    @property
    def vectors(self) -> VectorCache:
        return cast(VectorCache, self._conn.vectors)  # type: ignore[attr-defined]

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args, **kwargs)`` in one transaction in the database thread.

        Raises:
            ChatServiceError: sqlite failed.
        """

        if self._store is not None and self._store.writer is not None:
            return await self._shared(fn, *args, **kwargs)

        def work() -> T:
            with transaction(self._conn):
                return fn(self._conn, *args, **kwargs)

        try:
            return await trio.to_thread.run_sync(work, limiter=self._limiter)
        except sqlite3.Error as exc:
            raise ChatServiceError(f"chat database: {getattr(fn, '__name__', 'query')}: "
                                   f"{exc}") from exc

    async def _shared(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` as one request to the runtime's storage actor (its own savepoint there)."""
        from ..writer import WriterClosed

        assert self._store is not None and self._store.writer is not None
        writer = self._store.writer
        name = getattr(fn, "__name__", "query")
        try:
            return await writer.submit(self._on_shared(fn, *args, **kwargs), name=f"chat.{name}")
        except (sqlite3.Error, WriterClosed) as exc:
            raise ChatServiceError(f"chat database: {name}: {exc}") from exc

    def _on_shared(self, fn: Callable[..., T], *args: Any, **kwargs: Any
                   ) -> Callable[[sqlite3.Connection], T]:
        """``fn`` as a unit of work on the runtime's connection (inside its transaction), with
        the service's row factory, analyzer and cache of vectors (``chat.vector_cache``: the
        question's vector search reads only the visible ids) for its duration."""
        analyzer = self.analyzer
        vectors = getattr(self._conn, "vectors", None)

        def work(conn: sqlite3.Connection) -> T:
            saved = conn.row_factory
            conn.row_factory = sqlite3.Row  # the service's rows; the runtime's back after
            conn.analyzer = analyzer  # type: ignore[attr-defined]  # store.StoreConnection
            conn.vectors = vectors  # type: ignore[attr-defined]
            try:
                return fn(conn, *args, **kwargs)
            finally:
                conn.row_factory = saved
                conn.analyzer = None  # type: ignore[attr-defined]
                conn.vectors = None  # type: ignore[attr-defined]

        return work

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run the read-only ``fn(conn, ...)`` on the service's connection, in one deferred
        read transaction (a consistent snapshot; no write lock).

        Raises:
            ChatServiceError: sqlite failed.
        """

        def work() -> T:
            self._conn.execute("BEGIN")
            try:
                return fn(self._conn, *args, **kwargs)
            finally:
                self._conn.execute("COMMIT")

        try:
            return await trio.to_thread.run_sync(work, limiter=self._limiter)
        except sqlite3.Error as exc:
            raise ChatServiceError(f"chat database: {getattr(fn, '__name__', 'query')}: "
                                   f"{exc}") from exc

    # -- shared storage (``protocol.SharedStorage``) ---------------------------------------------

    def shares_store(self) -> bool:
        return self._store is not None and self._store.writer is not None

    def store_messages_work(self, messages: Sequence[NewMessage]
                            ) -> Callable[[Any], list[StoredMessage]]:
        """Plain posts stored inside the caller's request to the runtime's storage actor: the
        handle is the store's ``sqlite_utils.Database`` (its connection is used)."""
        now = self.now_ms()
        items = tuple(m if m.created_at_ms is not None else attrs.evolve(m, created_at_ms=now)
                      for m in messages)
        return self.shared_work(units.store_user_messages, items)

    def shared_work(self, fn: Callable[..., T], *args: Any) -> Callable[[Any], T]:
        """``fn(conn, *args)`` as a unit of work inside a request of the runtime's storage
        actor: its handle is the store's ``sqlite_utils.Database`` (its connection is used)."""
        work = self._on_shared(fn, *args)
        return lambda db: work(getattr(db, "conn", db))
