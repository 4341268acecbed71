"""Schema migrations: numbered, recorded, and an upgrade path from the last release.

``data/release_ca5a05a.db.gz`` is a database made by release ca5a05a's own code (its
``store.migrate`` and ``chat.schema.connect``) with a channel, a handled post, a pending reply, a
user, a room, a message and a memory in it. ``data/release_5e193d6.db.gz`` is that database
opened by release 5e193d6 (the last before numbered migrations: Kiwi's search index, the sweep
horizon, versioned memories), plus one stored embedding.
"""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import pytest

from mchat_actors import migrations, outbox, posts
from mchat_actors.chat import schema
from mchat_actors.chat.embedded import open_embedded_chat_service
from mchat_actors.messages import SendReply
from mchat_actors.store import MIGRATIONS, open_store

RELEASE = Path(__file__).parent / "data" / "release_ca5a05a.db.gz"
RELEASE_5E193D6 = Path(__file__).parent / "data" / "release_5e193d6.db.gz"


def _old_database(tmp_path: Path, release: Path = RELEASE) -> Path:
    path = tmp_path / "old.db"
    path.write_bytes(gzip.decompress(release.read_bytes()))
    return path


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


async def test_a_release_database_upgrades_and_keeps_its_rows(tmp_path):
    path = _old_database(tmp_path)
    before = sqlite3.connect(path)
    assert "mchat_retry" not in {r[0] for r in before.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "subject" not in _columns(before, "memories")
    before.close()

    async with open_store(path) as store, open_embedded_chat_service(str(path)) as chat:
        # the runtime's data is there and its new tables work
        assert await store.read(posts.is_post_seen, "post1")
        assert [r.reply_key for r in await store.run(outbox.load_pending)] == ["post1:reply"]
        ids = await store.run(outbox.enqueue_replies, [SendReply(
            channel_id="chan1", message="new", reply_key="post2:reply")], max_chars=4000)
        assert len(ids) == 1
        # the chat's memory became the current version of its subject and is found
        found = await chat.admin_memories()
        assert [m.content for m in found] == ["X부품 불량률 12%"]
    conn = sqlite3.connect(path)
    try:
        assert {"subject", "valid_from", "forgotten_at"} <= _columns(conn, "memories")
        assert "permalink" in _columns(conn, "chat_messages")
        rows = conn.execute("SELECT area, version FROM schema_migrations ORDER BY area, version"
                            ).fetchall()
        assert rows == [("chat", 1), ("chat", 2), ("chat", 3), ("runtime", 1), ("runtime", 2)]
        assert conn.execute("SELECT count(*) FROM mchat_retry").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM memory_embeddings").fetchone()[0] == 0
    finally:
        conn.close()


async def test_the_last_release_before_migrations_is_adopted_with_its_state(tmp_path):
    path = _old_database(tmp_path, RELEASE_5E193D6)
    before = sqlite3.connect(path)
    horizon = before.execute(
        "SELECT value FROM mchat_state WHERE key = 'sweep_horizon_ms'").fetchone()[0]
    assert "schema_migrations" not in {r[0] for r in before.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    before.close()

    async with open_store(path) as store, open_embedded_chat_service(str(path)) as chat:
        assert await store.read(posts.is_post_seen, "post1")
        assert [m.content for m in await chat.admin_memories()] == [
            "X부품 불량률 12%"]
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT area, version FROM schema_migrations ORDER BY area, version"
                            ).fetchall()
        assert rows == [("chat", 1), ("chat", 2), ("chat", 3), ("runtime", 1), ("runtime", 2)]
        # adopted, not reset: the read horizon and the stored vector are kept
        assert conn.execute("SELECT value FROM mchat_state WHERE key = 'sweep_horizon_ms'"
                            ).fetchone()[0] == horizon
        assert conn.execute("SELECT model FROM memory_embeddings").fetchall() == [("bge-m3",)]
    finally:
        conn.close()


def test_upgrade_runs_each_step_once_and_in_order(tmp_path):
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    calls: list[int] = []
    steps = [migrations.Migration(n, f"step {n}", lambda c, n=n: calls.append(n))
             for n in (1, 2, 3)]
    try:
        assert migrations.upgrade(conn, "t", steps[:2]) == [1, 2]
        assert migrations.upgrade(conn, "t", steps) == [3]
        assert migrations.upgrade(conn, "t", steps) == []
        assert calls == [1, 2, 3]
        assert migrations.applied(conn, "t") == [1, 2, 3]
    finally:
        conn.close()


def test_a_failed_step_is_rolled_back_and_retried_next_time(tmp_path):
    conn = sqlite3.connect(tmp_path / "f.db", isolation_level=None)

    def broken(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE half (id INTEGER)")
        raise sqlite3.OperationalError("disk I/O error")

    steps = [migrations.Migration(1, "one", migrations.statements("CREATE TABLE a (id INT)")),
             migrations.Migration(2, "two", broken)]
    try:
        with pytest.raises(sqlite3.OperationalError):
            migrations.upgrade(conn, "t", steps)
        assert migrations.applied(conn, "t") == [1]
        assert "half" not in {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def test_a_database_from_a_newer_release_is_refused(tmp_path):
    conn = sqlite3.connect(tmp_path / "n.db", isolation_level=None)
    try:
        migrations.upgrade(conn, "runtime", MIGRATIONS)
        conn.execute("INSERT INTO schema_migrations VALUES ('runtime', 99, 'future', 0)")
        with pytest.raises(ValueError, match="newer"):
            migrations.upgrade(conn, "runtime", MIGRATIONS)
        with pytest.raises(ValueError, match="numbered"):
            migrations.upgrade(conn, "x", [migrations.Migration(2, "gap", lambda c: None)])
    finally:
        conn.close()


async def test_open_store_refuses_a_database_of_a_newer_release(tmp_path):
    """A clear typed error at start (serve exits 1 with it), the file left as it was."""
    from mchat_actors.errors import StoreError

    path = tmp_path / "newer.db"
    async with open_store(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES ('runtime', 3, 'from the future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than this release"):
        async with open_store(path):
            pass


def test_chat_schema_records_its_versions(tmp_path):
    conn = schema.connect(str(tmp_path / "c.db"))
    try:
        assert migrations.applied(conn, "chat") == [m.version for m in schema.MIGRATIONS]
    finally:
        conn.close()


def test_chat_schema_refuses_a_database_of_a_newer_release(tmp_path):
    from mchat_actors.errors import ChatServiceError

    path = str(tmp_path / "c2.db")
    schema.connect(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES ('chat', 9, 'from the future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(ChatServiceError, match="newer than this release"):
        schema.connect(path)
