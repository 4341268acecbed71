"""``PgStore``: the runtime's ``store.Store`` interface over a ``PgDatabase``.

The actors hold a ``Store`` and a ``repository.Repositories``; with MCHAT_DATABASE_URL they get
this store and ``pg_repositories()``, and ``await store.run(repos.posts.finish_post, ...)``
runs the PostgreSQL function in one transaction on a pooled connection (no group commit: the
pool gives parallel writers instead; per-channel order rests on the dispatcher's one lane per
channel, as on SQLite). ``read`` is a transaction of its own too (READ COMMITTED sees every
committed write, as SQLite's WAL reader does).

The HTTP surface (admin API, health, metrics, webhooks) still names the SQLite modules'
functions (``outbox_admin.overview``, ``retry_queue.counts`` ...). ``TWINS`` maps each of them
to its PostgreSQL twin, which ``run`` calls instead. A SQLite storage function without a twin
is refused with ``StoreError`` naming it, never run on the wrong connection
(``tests/pg/test_store.py`` checks that every such call of the HTTP surface has a twin).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .. import mapping, outbox, posts, retry_queue, store, webhook_inbox
from ..errors import StoreError
from ..http import outbox_admin
from ..store import Store
from .admin import PgAdmin
from .database import PgDatabase
from .repos import PgMapping, PgPosts, PgState
from .retry_inbox import PgRetryRows, PgWebhookInbox

T = TypeVar("T")

# the modules whose functions take SQLite's handle: refused on PostgreSQL unless twinned
SQLITE_MODULES = frozenset(m.__name__ for m in (
    mapping, outbox, posts, retry_queue, store, webhook_inbox, outbox_admin))


def twins() -> dict[Callable[..., Any], Callable[..., Any]]:
    """SQLite function -> the PostgreSQL function with the same arguments and result."""
    admin, rows, inbox = PgAdmin(), PgRetryRows(), PgWebhookInbox()
    pg_posts, pg_mapping, state = PgPosts(admin.outbox), PgMapping(), PgState()
    return {
        outbox_admin.overview: admin.overview,
        outbox_admin.list_rows: admin.list_rows,
        outbox_admin.retry: admin.retry,
        outbox_admin.recent_audit: admin.recent_audit,
        outbox.get_row: admin.outbox.get_row,
        retry_queue.health: admin.retry_health,
        retry_queue.counts: rows.counts,
        retry_queue.listing: rows.listing,
        retry_queue.retry_now: rows.retry_now,
        retry_queue.discard: rows.discard,
        posts.is_post_seen: pg_posts.is_post_seen,
        mapping.get_channel: pg_mapping.get_channel,
        mapping.list_channels: pg_mapping.list_channels,
        mapping.list_users: pg_mapping.list_users,
        store.audit: state.audit,
        store.get_state: state.get_state,
        store.set_state: state.set_state,
        webhook_inbox.keep: inbox.keep,
        webhook_inbox.pending: inbox.pending,
    }


class PgStore(Store):
    """The ``Store`` interface on PostgreSQL. It holds no SQLite connection: ``db`` and
    ``writer`` are absent/None, so the embedded ChatService cannot join it (it is SQLite-only)."""

    backend = "postgresql"

    def __init__(self, database: PgDatabase,
                 twin_of: Mapping[Callable[..., Any], Callable[..., Any]] | None = None) -> None:
        # Store.__init__ is not called: there is no SQLite connection to hold
        self.database = database
        self.path = database.url.display()  # redacted: shown where the SQLite path was
        self.writer = None
        self._twins = dict(twins() if twin_of is None else twin_of)
        self._state = PgState()

    def __repr__(self) -> str:
        return f"PgStore({self.path!r})"

    def resolve(self, fn: Callable[..., T]) -> Callable[..., T]:
        """``fn`` itself, or the PostgreSQL twin of a SQLite storage function.

        Raises:
            StoreError: ``fn`` is a SQLite storage function without a twin.
        """
        try:
            twin = self._twins.get(fn)
        except TypeError:  # an unhashable callable: not one of ours
            twin = None
        if twin is not None:
            return twin
        if getattr(fn, "__module__", None) in SQLITE_MODULES:
            raise StoreError(f"{fn.__module__}.{getattr(fn, '__name__', fn)} is a SQLite "
                             "storage function with no PostgreSQL twin (pg/store.py TWINS)")
        return fn

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(conn, *args, **kwargs)`` in one transaction; its value once committed.

        Raises:
            StoreUnavailable: the server or the pool cannot serve now; retrying can help.
            StoreError: any other database error, or a SQLite function without a twin.
        """
        return await self.database.run(self.resolve(fn), *args, **kwargs)

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.database.run(self.resolve(fn), *args, **kwargs)

    async def lookup(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``read``: a PostgreSQL read is a network round trip, never inline."""
        return await self.read(fn, *args, **kwargs)

    async def is_writable(self) -> bool:
        return await self.database.is_writable()

    async def get_state(self, key: str) -> str | None:
        return await self.database.run(self._state.get_state, key)

    async def set_state(self, key: str, value: str) -> None:
        await self.database.run(self._state.set_state, key, value)
