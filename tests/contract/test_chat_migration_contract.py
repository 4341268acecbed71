"""The chat schema's step 2 (v1 -> v2, versioned memories) is one piece of logic
(``chat.memory_versions``) on both backends: a database left at version 1 with memories (a
summary among them) and a message is upgraded by each backend's own migrate, and ends with the
same columns, every memory the current version of its subject (computed from its text, none for
a summary), the same indexes, and the versions recorded; run again, nothing changes."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg

from mchat_actors import migrations
from mchat_actors.chat import schema as chat_schema
from mchat_actors.chat.subject import subject_of
from mchat_actors.pg import schema as pg_schema

MEMORIES = [  # (content, kind, created_at)
    ("X부품 불량률 12%", "remember", 1_000),
    ("배포는 매주 금요일 오후 3시", "extracted", 2_000),
    ("어제 회의 요약: 납기 6월 2일 확정", "summary", 3_000),
]
V2_COLUMNS = {"subject", "valid_from", "valid_to", "superseded_by", "forgotten_at",
              "forgotten_by"}
V2_INDEXES = {"memories_subject", "memories_superseded_by", "memories_window_current"}


class _Db:
    """Just enough of both drivers: ``?`` SQL, the chat tables' columns and indexes."""

    def __init__(self, backend: str, target: str) -> None:
        self.backend = backend
        if backend == "sqlite":
            self.conn: Any = sqlite3.connect(target, isolation_level=None)
        else:
            self.conn = psycopg.connect(target, autocommit=True)

    def rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        if self.backend == "postgresql":
            sql = sql.replace("?", "%s")
        cur = self.conn.execute(sql, args)
        return [tuple(r) for r in cur.fetchall()] if cur.description else []

    def at_version_1(self) -> None:
        if self.backend == "sqlite":
            migrations.upgrade(self.conn, "chat", chat_schema.MIGRATIONS[:1])
        else:
            pg_schema.upgrade(self.conn, "runtime", pg_schema.RUNTIME)
            pg_schema.upgrade(self.conn, "chat", pg_schema.CHAT[:1])

    def migrate(self) -> None:
        if self.backend == "sqlite":
            chat_schema.migrate(self.conn)
        else:
            pg_schema.migrate(self.conn)

    def columns(self, table: str) -> set[str]:
        if self.backend == "sqlite":
            return {r[1] for r in self.rows(f"PRAGMA table_info({table})")}
        return {r[0] for r in self.rows("SELECT column_name FROM information_schema.columns"
                                        " WHERE table_name = ?", (table,))}

    def indexes(self) -> set[str]:
        if self.backend == "sqlite":
            return {r[0] for r in self.rows("SELECT name FROM sqlite_master WHERE type = 'index'"
                                            " AND tbl_name = 'memories'")}
        return {r[0] for r in self.rows("SELECT indexname FROM pg_indexes"
                                        " WHERE tablename = 'memories'")}


def test_a_version_1_chat_database_upgrades_the_same_on_both_backends(
        where: tuple[str, str]) -> None:
    db = _Db(*where)
    try:
        db.at_version_1()
        assert V2_COLUMNS.isdisjoint(db.columns("memories"))
        assert "permalink" not in db.columns("chat_messages")
        for content, kind, created in MEMORIES:
            db.rows("INSERT INTO memories (content, norm, scope, kind, room_id, created_at,"
                    " updated_at) VALUES (?, ?, 'room', ?, 'r1', ?, ?)",
                    (content, content, kind, created, created))
        db.rows("INSERT INTO chat_messages (room_id, user_id, content, created_at)"
                " VALUES ('r1', 'u1', '안녕하세요', 5)")
        db.migrate()
        assert V2_COLUMNS <= db.columns("memories")
        assert "permalink" in db.columns("chat_messages")
        assert V2_INDEXES <= db.indexes()
        rows = db.rows("SELECT content, subject, valid_from, valid_to, superseded_by,"
                       " forgotten_at FROM memories ORDER BY id")
        assert rows == [(content, subject_of(content) if kind != "summary" else "", created,
                         None, None, None) for content, kind, created in MEMORIES]
        assert rows[0][1] != ""  # a subject was computed (the step really ran)
        assert db.rows("SELECT version FROM schema_migrations WHERE area = 'chat'"
                       " ORDER BY version") == [(1,), (2,), (3,)]
        assert db.rows("SELECT value FROM chat_state WHERE key = 'schema_version'") == [("2",)]
        assert db.rows("SELECT content FROM chat_messages") == [("안녕하세요",)]
        db.migrate()  # again: nothing to do, nothing changed
        assert db.rows("SELECT content, subject, valid_from FROM memories ORDER BY id") == [
            r[:3] for r in rows]
    finally:
        db.conn.close()
