"""The embedded ChatService on either backend, for the tests that run on both: a SQLite file,
or a database on ``tests/pg``'s throw-away PostgreSQL server (``pg.chat_db``).

A test module imports ``both_backends_db`` (the fixture ``db_path``, parametrized
``sqlite``/``postgresql``, the latter marked ``pg``) with ``pg_server`` and ``pg_url``, and
opens the service with ``open_local(db_path, ...)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import pytest

from mchat_actors.chat.embedded import EmbeddedChatService, open_embedded_chat_service
from mchat_actors.pg.chat_db import open_pg_embedded_chat_service
from mchat_actors.pg.database import open_database

from ..pg.conftest import pg_server, pg_url  # noqa: F401  (the PostgreSQL server's fixtures)


@attrs.frozen
class Where:
    """A backend's database: a SQLite file, or a PostgreSQL database (with the analyzer the
    PostgreSQL service is given; the SQLite one loads the session's own)."""

    backend: str
    target: str
    analyzer: Any = None


@pytest.fixture(name="db_path",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def both_backends_db(request: pytest.FixtureRequest, tmp_path: Any) -> Where:
    if request.param == "sqlite":
        return Where("sqlite", str(tmp_path / "chat.db"))
    return Where("postgresql", request.getfixturevalue("pg_url"),
                 request.getfixturevalue("kiwi"))


@asynccontextmanager
async def open_local(where: Where, **kwargs: Any) -> AsyncIterator[EmbeddedChatService]:
    """The embedded service on ``where`` (``clock``, ``embeddings``, ``llm`` ... passed on)."""
    if where.backend == "sqlite":
        async with open_embedded_chat_service(where.target, **kwargs) as svc:
            yield svc
        return
    async with AsyncExitStack() as stack:
        database = await stack.enter_async_context(open_database(where.target))
        yield await stack.enter_async_context(open_pg_embedded_chat_service(
            database, analyzer=where.analyzer, **kwargs))
