"""The chat schema's step 2 (v1 -> v2: versioned memories), one piece of logic for both
backends (``chat.schema.MIGRATIONS`` on SQLite, ``pg.schema.CHAT`` on PostgreSQL).

``chat_messages.permalink`` and the version columns of ``memories`` are added where missing,
their indexes created, and every existing memory becomes the current version of its subject
(``valid_from`` = ``created_at``, the subject computed from its text by ``chat.subject``, none
for a summary). A no-op where already done (a database adopted from a release that had it).

What differs between the backends is only how a column list is read, the integer type, and
the placeholder: each passes a ``StepDatabase`` (``chat.schema``'s over sqlite3,
``pg.schema``'s over psycopg). The SQL is written with ``?`` placeholders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

SCHEMA_VERSION = 2


class StepDatabase(Protocol):
    """What the step needs of a connection, in the step's transaction."""

    integer: str  # the 64-bit integer column type: INTEGER (SQLite), BIGINT (PostgreSQL)

    def columns(self, table: str) -> set[str]: ...

    def rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run ``sql`` (``?`` placeholders); its rows (none for a statement without)."""
        ...


def memory_columns(integer: str) -> tuple[tuple[str, str], ...]:
    return (
        ("subject", "TEXT NOT NULL DEFAULT ''"),
        ("valid_from", integer),
        ("valid_to", integer),  # NULL: the current version
        ("superseded_by", integer),
        ("forgotten_at", integer),
        ("forgotten_by", "TEXT"),
    )


INDEXES = (
    "CREATE INDEX IF NOT EXISTS memories_subject ON memories (subject, scope, room_id, owner_id)"
    " WHERE valid_to IS NULL",
    "CREATE INDEX IF NOT EXISTS memories_superseded_by ON memories (superseded_by)",
    "DROP INDEX IF EXISTS memories_window",  # a release before 2 had it on (room, window) only
    "CREATE UNIQUE INDEX IF NOT EXISTS memories_window_current ON memories (room_id, window_key)"
    " WHERE window_key IS NOT NULL AND deleted_at IS NULL AND valid_to IS NULL",
)


def memory_versions(db: StepDatabase) -> None:
    """Step 2 (module docstring)."""
    from .subject import subject_of  # the subject rules live with the text analysis

    if "permalink" not in db.columns("chat_messages"):  # the source post's link (extracted)
        db.rows("ALTER TABLE chat_messages ADD COLUMN permalink TEXT")
    have = db.columns("memories")
    for name, decl in memory_columns(db.integer):
        if name not in have:
            db.rows(f"ALTER TABLE memories ADD COLUMN {name} {decl}")
    for statement in INDEXES:
        db.rows(statement)
    for memory_id, content, kind in db.rows(
            "SELECT id, content, kind FROM memories WHERE valid_from IS NULL ORDER BY id"):
        subject = subject_of(str(content)) if kind != "summary" else ""
        db.rows("UPDATE memories SET subject = ?, valid_from = created_at WHERE id = ?",
                (subject, memory_id))
    db.rows("INSERT INTO chat_state (key, value) VALUES ('schema_version', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))


__all__ = ["SCHEMA_VERSION", "StepDatabase", "memory_versions"]
