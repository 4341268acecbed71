"""Which database the runtime runs on: SQLite (``MCHAT_DB``, the default) or PostgreSQL
(``MCHAT_DATABASE_URL``). ``app.run`` opens the store here and asks for the repositories, the
retry queue and the store the embedded ChatService may join; the actors see only the ``Store``
interface and ``repository.Repositories`` either way.

On PostgreSQL the embedded ChatService is not available (config refuses it: its memories are
SQLite-only); the remote ChatServices keep users, rooms and messages in their local SQLite
file at ``MCHAT_DB``, outside the runtime's transactions (one process per file: see
docs/postgresql.md).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .config import EMBEDDED_ON_POSTGRES, Config
from .errors import ConfigError
from .repository import Repositories, sqlite_repositories
from .retry_queue import RetryQueue, SqliteRetryQueue
from .store import Store, open_store

logger = logging.getLogger(__name__)


@asynccontextmanager
async def open_runtime_store(config: Config) -> AsyncIterator[Store]:
    """The runtime's store: SQLite at ``config.db_path``, or PostgreSQL (migrated, pooled)
    when ``config.database_url`` is set.

    Raises:
        ConfigError: PostgreSQL with the embedded ChatService (config refuses it already).
        StoreUnavailable: the PostgreSQL server cannot be reached or refuses the login.
        StoreError: the database cannot be opened or was made by a newer release.
    """
    if config.database_url is None:
        async with open_store(config.db_path) as store:
            yield store
        return
    if config.chat.backend == "embedded":
        raise ConfigError([EMBEDDED_ON_POSTGRES])
    from .pg.database import open_database
    from .pg.store import PgStore

    async with open_database(config.database_url) as database:
        logger.info("storage: runtime tables on %s; the %s ChatService keeps users, rooms and "
                    "messages in %s", config.database_display, config.chat.backend,
                    config.db_path)
        yield PgStore(database)


def is_postgres(store: Store) -> bool:
    from .pg.store import PgStore

    return isinstance(store, PgStore)


def repositories_for(store: Store) -> Repositories:
    """The repositories whose functions ``store.run`` can run."""
    if is_postgres(store):
        from .pg.repos import pg_repositories

        return pg_repositories()
    return sqlite_repositories()


def retry_queue_for(store: Store) -> RetryQueue:
    """The dispatcher's durable retry queue on the store's database."""
    if is_postgres(store):
        from .pg.retry_inbox import PgRetryQueue
        from .pg.store import PgStore

        assert isinstance(store, PgStore)
        return PgRetryQueue(store.database)
    return SqliteRetryQueue(store)


def chat_store(store: Store) -> Store | None:
    """The store the embedded ChatService joins (its writes in the runtime's group commits):
    the SQLite store; None on PostgreSQL (the local ChatService opens its own SQLite file)."""
    return None if is_postgres(store) else store
