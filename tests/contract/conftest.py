"""The contract suite's fixtures: ``backend`` (parametrized sqlite / postgresql, the
latter marked ``pg``), ``raw`` (a synchronous handle, for hypothesis), ``pg`` (PostgreSQL
connections for the two-transaction tests). One throw-away PostgreSQL server for the suite
(``tests/pg``'s fixtures)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest

from mchat_actors import retry_queue, webhook_inbox
from mchat_actors.chat.embedded import open_embedded_chat_service
from mchat_actors.chat.protocol import SharedStorage
from mchat_actors.pg.chat_messages import PgSharedMessages
from mchat_actors.pg.database import open_database
from mchat_actors.pg.repos import pg_repositories
from mchat_actors.pg.retry_inbox import PgRetryQueue, PgRetryRows, PgWebhookInbox
from mchat_actors.pg.schema import migrate as pg_migrate
from mchat_actors.repository import Repositories, sqlite_repositories
from mchat_actors.retry_queue import SqliteRetryQueue
from mchat_actors.store import connect as sqlite_connect
from mchat_actors.store import migrate as sqlite_migrate
from mchat_actors.store import open_store

from ..pg.conftest import pg_server, pg_url  # noqa: F401  (the PostgreSQL server's fixtures)
from .helpers import BACKENDS, Backend, Conn


@pytest.fixture(params=BACKENDS)
def where(request: pytest.FixtureRequest, tmp_path: Any) -> tuple[str, str]:
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "contract.db")
    return "postgresql", request.getfixturevalue("pg_url")


@pytest.fixture
async def backend(where: tuple[str, str]) -> AsyncIterator[Backend]:
    name, target = where
    if name == "sqlite":
        async with open_store(target) as store:

            @asynccontextmanager
            async def sqlite_chat() -> AsyncIterator[tuple[SharedStorage, str, str]]:
                async with open_embedded_chat_service(target, store=store) as chat:
                    user = await chat.create_user(name="kim", email=None)
                    room = await chat.create_room(name="r", kind="channel")
                    yield chat, room.id, user.id

            yield Backend(name, sqlite_repositories(), store.run,
                          lambda sql: store.read(lambda db: db.conn.execute(sql).fetchone()[0]),
                          sqlite_chat, retry_queue, SqliteRetryQueue(store), webhook_inbox)
        return
    async with open_database(target) as db:

        @asynccontextmanager
        async def pg_chat() -> AsyncIterator[tuple[SharedStorage, str, str]]:
            def rows(conn: psycopg.Connection[Any]) -> None:
                conn.execute("INSERT INTO users (id, name, created_at) VALUES ('u1', 'kim', 0)")
                conn.execute("INSERT INTO chat_rooms (id, name, kind, created_at)"
                             " VALUES ('r1', 'r', 'channel', 0)")
            await db.run(rows)
            yield PgSharedMessages(), "r1", "u1"

        yield Backend(name, pg_repositories(), db.run,
                      lambda sql: db.run(lambda conn: conn.execute(sql).fetchone()[0]), pg_chat,
                      PgRetryRows(), PgRetryQueue(db), PgWebhookInbox())



@pytest.fixture(params=BACKENDS)
def raw(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[Repositories, Any]]:
    """(repos, handle) for synchronous calls, each call committed (autocommit)."""
    if request.param == "sqlite":
        db = sqlite_connect(tmp_path / "raw.db")
        sqlite_migrate(db)
        yield sqlite_repositories(), db
        db.conn.close()
        return
    with psycopg.connect(request.getfixturevalue("pg_url"), autocommit=True) as conn:
        pg_migrate(conn)
        yield pg_repositories(), conn




@pytest.fixture
def pg(pg_url: str) -> Iterator[tuple[Repositories, Callable[[], Conn]]]:  # noqa: F811
    with psycopg.connect(pg_url, autocommit=True) as conn:
        pg_migrate(conn)
    opened: list[Conn] = []

    def connect() -> Conn:
        opened.append(psycopg.connect(pg_url))
        return opened[-1]

    yield pg_repositories(), connect
    for conn in opened:
        conn.close()
