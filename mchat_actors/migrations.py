"""Numbered schema migrations with an upgrade path, recorded in ``schema_migrations``.

Each area of the database (``runtime``: the runtime's tables; ``chat``: the embedded
ChatService's) has an ordered tuple of ``Migration``s. ``upgrade`` applies, in order, those not
yet recorded for the area, each in its own transaction together with its ``schema_migrations``
row, so a crash mid-upgrade leaves the database at the last complete version and the next start
goes on from there. A database older than this table (release ca5a05a and later ones, which
recorded only ``schema_version`` in a state table) is adopted: every migration is written so that
it is a no-op where its change is already there (``IF NOT EXISTS``, columns added when missing).

A migration is a function of the connection and issues plain statements (no ``executescript``,
which would commit the surrounding transaction). A PostgreSQL backend keeps the same numbering
and table with its own statements per version.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence

import attrs

from .writer import transaction

_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    area TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    applied_at REAL NOT NULL,
    PRIMARY KEY (area, version)
)"""


@attrs.frozen
class Migration:
    version: int
    name: str
    apply: Callable[[sqlite3.Connection], None]


def statements(script: str) -> Callable[[sqlite3.Connection], None]:
    """A migration that runs each ``;``-separated statement of ``script`` (no triggers)."""

    def apply(conn: sqlite3.Connection) -> None:
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)

    return apply


def applied(conn: sqlite3.Connection, area: str) -> list[int]:
    """The versions of ``area`` recorded as applied, in order."""
    conn.execute(_TABLE)
    return [int(row[0]) for row in conn.execute(
        "SELECT version FROM schema_migrations WHERE area = ? ORDER BY version", (area,))]


def upgrade(conn: sqlite3.Connection, area: str, migrations: Sequence[Migration]) -> list[int]:
    """Apply the migrations of ``area`` not recorded yet, in version order; the ones applied.

    Raises:
        ValueError: the versions are not 1, 2, 3 ... in order, or the database records a
            version this code does not know (it was made by a newer release: never downgrade).
        sqlite3.Error: a migration failed (its transaction is rolled back).
    """
    if [m.version for m in migrations] != list(range(1, len(migrations) + 1)):
        raise ValueError(f"migrations of {area} must be numbered 1, 2, 3 ... in order")
    done = set(applied(conn, area))
    unknown = done - {m.version for m in migrations}
    if unknown:
        raise ValueError(f"the database has {area} schema version {max(unknown)}, newer than "
                         f"this release ({len(migrations)}): refusing to run on it")
    ran: list[int] = []
    for migration in migrations:
        if migration.version in done:
            continue
        with transaction(conn):
            migration.apply(conn)
            conn.execute("INSERT INTO schema_migrations (area, version, name, applied_at) "
                         "VALUES (?, ?, ?, ?)", (area, migration.version, migration.name,
                                                 time.time()))
        ran.append(migration.version)
    return ran
