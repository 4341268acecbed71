"""Fixtures of the PostgreSQL tests: one real server per session, one fresh database per test.

No PostgreSQL on the machine is a test FAILURE naming the install command (``server.py``),
never a skip: PostgreSQL is part of CI (``scripts/system-deps.sh test`` installs it).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest

from .server import PgNotFound, PgServer

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        server = PgServer()
    except PgNotFound as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of a new empty database (dropped after the test)."""
    name = f"t{next(_names)}"
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield pg_server.url(name)
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
