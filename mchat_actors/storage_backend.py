"""Which database the runtime runs on: SQLite (``MCHAT_DB``, the default) or PostgreSQL
(``MCHAT_DATABASE_URL``). ``app.run`` opens the store here and asks for the repositories and
the retry queue; ``chat_service`` asks which store the embedded ChatService may join. The
actors see only the ``Store`` interface and ``repository.Repositories`` either way.

On PostgreSQL the embedded ChatService keeps everything in the same database
(``pg.chat_db``), the remote one its local store (users, rooms, members, messages:
``pg.chat_local``), and agent-chat its local store and mapping tables (``pg.chat_db`` with
``pg.agent_chat_store``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .config import EMBEDDED_ON_POSTGRES, POSTGRES_CHAT_BACKENDS, Config
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
        ConfigError: PostgreSQL with a ChatService that cannot run there (none today; config
            refuses it already).
        StoreUnavailable: the PostgreSQL server cannot be reached or refuses the login.
        DatabaseInUse: another mchat-actors process runs on that database (``pg.single``;
            not with MCHAT_REPLICAS=on).
        StoreError: the database cannot be opened or was made by a newer release.
    """
    if config.database_url is None:
        async with open_store(config.db_path) as store:
            yield store
        return
    if config.chat.backend not in POSTGRES_CHAT_BACKENDS:
        raise ConfigError([EMBEDDED_ON_POSTGRES.format(backend=config.chat.backend)])
    from .pg.database import open_database
    from .pg.single import one_runtime
    from .pg.store import PgStore

    if config.replicas.enabled:  # channels owned by leases instead (actors.ownership)
        async with open_database(config.database_url) as database:
            logger.info("storage: replica on %s (channels owned by leases)",
                        config.database_display)
            yield PgStore(database)
        return
    async with one_runtime(config.database_url), open_database(config.database_url) as database:
        logger.info("storage: runtime tables and the ChatService's local store on %s",
                    config.database_display)
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
