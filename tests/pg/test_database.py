"""The PostgreSQL backend's URL, pool and migrations, against a real server."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
import trio

from mchat_actors.chat import schema as chat_schema
from mchat_actors.errors import ConfigError, StoreError, StoreUnavailable
from mchat_actors.pg import schema as pg_schema
from mchat_actors.pg.database import open_database
from mchat_actors.pg.url import parse_database_url
from mchat_actors.secrecy import Secret
from mchat_actors.store import connect as sqlite_connect
from mchat_actors.store import migrate as sqlite_migrate

from .server import PgServer

pytestmark = pytest.mark.pg

PASSWORD = "s3cr:et/p@ss"
URL = "postgresql://mchat:s3cr%3Aet%2Fp%40ss@db.example:6432/mchat?sslmode=require"


def test_url_is_parsed_and_the_password_never_shown() -> None:
    url = parse_database_url(Secret(URL))
    assert (url.host, url.port, url.dbname, url.user) == ("db.example", 6432, "mchat", "mchat")
    assert url.password == PASSWORD
    for shown in (repr(url), str(url), url.display(), f"{url}"):
        assert PASSWORD not in shown and "s3cr" not in shown
    assert "password=" in url.conninfo() and "sslmode=require" in url.conninfo()


@pytest.mark.parametrize(("bad", "says"), [
    ("mysql://u:s3cretpw@h/db", "must start with postgresql://"),
    ("s3cretpw:x@h/db", "must start with postgresql://"),
    ("postgresql://u:s3cretpw@/db", "no host"),
    ("postgresql://:s3cretpw@h/db", "no user"),
    ("postgresql://u:s3cretpw@h/", "database name"),
    ("postgresql://u:s3cretpw@h:99999/db", "not a valid URL"),
    ("postgresql://u:s3cretpw@h:port/db", "not a valid URL"),
    ("postgresql://u:s3cretpw@h/db?sslmod=require", "unknown parameter 'sslmod'"),
    ("postgresql://u:s3cretpw@h/db?sslmode=yes", "sslmode must be"),
    ("postgresql://u:s3cretpw@h/db?connect_timeout=-1", "connect_timeout"),
])
def test_a_bad_url_is_a_clear_error_without_the_password(bad: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_database_url(bad)
    assert says in str(caught.value)
    assert "s3cretpw" not in str(caught.value) and "MCHAT_DATABASE_URL" in str(caught.value)


async def test_wrong_password_is_unavailable_and_does_not_leak(pg_server: PgServer) -> None:
    wrong = f"postgresql://mchat:Wr0ngSecretValue@127.0.0.1:{pg_server.port}/postgres"
    with pytest.raises(StoreUnavailable) as caught:
        async with open_database(wrong):
            pass
    text = str(caught.value)
    assert "password authentication failed" in text
    assert "Wr0ngSecretValue" not in text and "Wr0ngSecretValue" not in repr(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no driver text


async def test_unreachable_server_is_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        async with open_database("postgresql://u:pw@127.0.0.1:1/db?connect_timeout=2"):
            pass


async def test_run_commits_or_rolls_back_and_types_errors(pg_url: str) -> None:
    async with open_database(pg_url) as db:
        assert await db.is_writable()

        def put(conn: psycopg.Connection[tuple[object, ...]], key: str) -> None:
            conn.execute("INSERT INTO mchat_state (key, value) VALUES (%s, 'v')", (key,))

        def put_then_fail(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            put(conn, "rolled-back")
            put(conn, "rolled-back")  # unique violation: the whole call rolls back

        await db.run(put, "kept")
        with pytest.raises(StoreError) as caught:
            await db.run(put_then_fail)
        assert not isinstance(caught.value, StoreUnavailable)
        assert "put_then_fail" in str(caught.value)

        def keys(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
            return [r[0] for r in conn.execute(
                "SELECT key FROM mchat_state WHERE key IN ('kept', 'rolled-back')")]

        assert await db.run(keys) == ["kept"]


async def test_replicas_migrating_at_once_apply_each_step_exactly_once(pg_url: str) -> None:
    url = parse_database_url(pg_url)
    results: list[dict[str, list[int]]] = []

    def one() -> None:
        with psycopg.connect(url.conninfo(), autocommit=True) as conn:
            results.append(pg_schema.migrate(conn))

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(trio.to_thread.run_sync, one)
    for area, steps in pg_schema.AREAS:
        applied = sorted(v for r in results for v in r[area])
        assert applied == [m.version for m in steps], area  # once each, by someone
    with psycopg.connect(url.conninfo()) as conn:
        rows = conn.execute("SELECT area, count(*) FROM schema_migrations GROUP BY area"
                            ).fetchall()
    assert dict(rows) == {area: len(steps) for area, steps in pg_schema.AREAS}


async def test_a_newer_schema_is_refused(pg_url: str) -> None:
    async with open_database(pg_url):
        pass
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES ('chat', 99, 'future', 0)")
    with pytest.raises(StoreError, match="chat schema version 99"):
        async with open_database(pg_url):
            pass


def _sqlite_tables(path: Path) -> dict[str, set[str]]:
    db = sqlite_connect(path)
    sqlite_migrate(db)
    chat_schema.migrate(db.conn)
    conn: sqlite3.Connection = db.conn
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name NOT LIKE 'memories_fts%' AND name != 'memories_vocab'")]
    tables = {n: {r[1] for r in conn.execute(f"PRAGMA table_info({n})")} for n in names}
    conn.close()
    return tables


async def test_every_sqlite_table_and_column_exists_on_postgres(pg_url: str,
                                                                tmp_path: Path) -> None:
    """Same versions, same tables: a migration added on one backend only fails here."""
    lite = _sqlite_tables(tmp_path / "lite.db")
    async with open_database(pg_url):
        pass
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT table_name, column_name FROM information_schema.columns"
                            " WHERE table_schema = 'public'").fetchall()
        versions = conn.execute("SELECT area, max(version) FROM schema_migrations"
                                " GROUP BY area").fetchall()
    pg: dict[str, set[str]] = {}
    for table, column in rows:
        pg.setdefault(table, set()).add(column)
    for table, columns in lite.items():
        assert table in pg, table
        assert columns <= pg[table], (table, columns - pg[table])
    from mchat_actors.store import MIGRATIONS as RUNTIME

    assert dict(versions)["runtime"] == len(RUNTIME)
    assert dict(versions)["chat"] == len(chat_schema.MIGRATIONS)


async def test_a_server_restart_is_unavailable_then_served_again() -> None:
    """Its own server (the session's stays up): stopped, the pool's calls are typed
    StoreUnavailable; started again on the same port, the next call is served."""
    server = PgServer()
    try:
        await trio.to_thread.run_sync(server.start)
        async with open_database(server.url(), max_size=2, timeout_s=1.0) as db:
            assert await db.is_writable()
            await trio.to_thread.run_sync(server.stop_process)
            with pytest.raises(StoreUnavailable):
                await db.run(lambda conn: conn.execute("SELECT 1").fetchone())
            assert not await db.is_writable()
            assert await trio.to_thread.run_sync(server._launch)
            with trio.fail_after(30):  # the pool may be between reconnect attempts
                while not await db.is_writable():  # noqa: ASYNC110
                    await trio.sleep(0.2)
    finally:
        await trio.to_thread.run_sync(server.stop)
