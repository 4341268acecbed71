"""Versioned memories: same subject supersedes (both kept), exact repeats change nothing, answers
use the current version and say what changed, history is listable, /forget is soft and an admin
can restore; a database made by schema version 1 is upgraded in place."""

from __future__ import annotations

import sqlite3

import pytest

from mchat_actors.chat.embedded import open_embedded_chat_service
from mchat_actors.chat.schema import SCHEMA_VERSION

from .chat_fakes import FakeClock
from .conftest import World

DAY = 86_400.0


def rows(world: World, sql: str, *args: object) -> list[sqlite3.Row]:
    return world.svc._conn.execute(sql, args).fetchall()  # noqa: SLF001 - white-box check


@pytest.mark.parametrize(("first", "second", "question", "answer", "not_answer"), [
    ("라인 2 가동률 87%", "라인 3 가동률 90%", "라인 2 가동률 알려줘", "87%", "90%"),
    ("금형 1호기 세척 주기는 5000샷", "금형 2호기 세척 주기는 3000샷", "2호기 세척 주기?", "3000샷",
     "5000샷"),
    ("LOT 4471 출하 보류", "LOT 4472 출하 승인", "lot 4471 출하 어떻게 됐어?", "보류", "승인"),
    ("X부품 불량률 12%", "Y부품 불량률 12%", "Y부품 불량률은?", "Y부품", "X부품"),
    ("G7 양산 일정 12월 3일", "G8 양산 일정 1월 9일", "G7 양산 언제야", "12월 3일", "1월 9일"),
])
async def test_siblings_are_two_memories_and_each_answers_for_itself(
        world: World, first: str, second: str, question: str, answer: str,
        not_answer: str) -> None:
    """Memories whose identifiers differ never replace each other, and answer only for theirs."""
    await world.say(world.quality, world.kim, f"/remember {first}")
    reply = await world.say(world.quality, world.kim, f"/remember {second}")
    assert "대체" not in (reply.assistant_message or "")
    current = rows(world, "SELECT content FROM memories WHERE valid_to IS NULL"
                   " AND scope = 'room'")
    assert sorted(r["content"] for r in current) == sorted([first, second])
    text = (await world.say(world.quality, world.lee, question)).assistant_message or ""
    assert answer in text and not_answer not in text


async def test_an_update_answers_with_the_current_value_and_says_what_changed(
        world: World) -> None:
    """리드타임 2주 -> 3주: the answer is 3주 with the change date and the old value."""
    await world.say(world.quality, world.kim, "/remember Sunrise 리드타임 2주", post_id="p1",
                    permalink="http://mm/_redirect/pl/p1")
    world.clock.now += 3 * DAY
    await world.say(world.quality, world.lee, "/remember Sunrise 리드타임 3주", post_id="p2",
                    permalink="http://mm/_redirect/pl/p2")
    text = (await world.say(world.quality, world.kim, "sunrise 리드타임 얼마나 걸려?")
            ).assistant_message or ""
    assert "Sunrise 리드타임 3주 (1/4 변경, 이전: 2주)" in text
    assert "lee" in text and "2026-01-04 09:00 KST" in text and "http://mm/_redirect/pl/p2" in text
    assert "Sunrise 리드타임 2주 —" not in text


async def test_history_is_answerable_and_listable(world: World) -> None:
    """'예전에는?' and /memory history list every version with its span and author."""
    await world.say(world.quality, world.kim, "/remember Sunrise 리드타임 2주")
    world.clock.now += 40 * DAY
    await world.say(world.quality, world.lee, "/remember Sunrise 리드타임 3주")
    text = (await world.say(world.quality, world.kim, "sunrise 리드타임 예전에는 얼마였어?")
            ).assistant_message or ""
    assert "[이전]" in text and "2주" in text and "[현재]" in text and "3주" in text
    text = (await world.say(world.quality, world.kim, "지난달 sunrise 리드타임 얼마였지?")
            ).assistant_message or ""
    then = text.splitlines()[1]
    assert then.startswith("그 무렵의 기억: [이전]") and "2주" in then
    listed = await world.say(world.quality, world.kim, "/memory history sunrise 리드타임")
    text = listed.assistant_message or ""
    assert listed.ephemeral and text.index("2주") < text.index("3주")
    assert "kim" in text and "lee" in text


async def test_exact_repeat_changes_nothing(world: World) -> None:
    """Remembering the same text again adds no version and no audit row."""
    await world.say(world.quality, world.kim, "/remember 배포는 금요일")
    before = len(rows(world, "SELECT * FROM memory_audit"))
    reply = await world.say(world.quality, world.kim, "/remember  배포는   금요일 ")
    assert "이미 같은 내용" in (reply.assistant_message or "")
    assert len(rows(world, "SELECT * FROM memories")) == 2
    assert len(rows(world, "SELECT * FROM memory_audit")) == before
    # lee repeats it: the room's memory is unchanged, lee gets a personal copy
    reply = await world.say(world.quality, world.lee, "/remember 배포는 금요일")
    assert "이미 같은 내용" in (reply.assistant_message or "")
    assert len(rows(world, "SELECT * FROM memories WHERE scope = 'room'")) == 1


async def test_forget_is_soft_audited_and_restorable_by_an_admin(world: World) -> None:
    """/forget hides a memory from answers; restore brings it back; both are audited."""
    stored = await world.say(world.quality, world.kim, "/remember X부품 불량률 12%")
    await world.say(world.quality, world.kim, "/forget X부품 불량률")
    text = (await world.say(world.quality, world.lee, "X부품 불량률 몇 %야?")).assistant_message
    assert "12%" not in (text or "")
    room_id = int(stored.extracted_memories[0].id[1:])
    assert await world.svc.restore_memory(room_id, actor="admin")
    assert not await world.svc.restore_memory(room_id, actor="admin")  # not forgotten any more
    text = (await world.say(world.quality, world.lee, "X부품 불량률 몇 %야?")).assistant_message
    assert "12%" in (text or "")
    trail = rows(world, "SELECT action, actor FROM memory_audit WHERE memory_id = ?", room_id)
    assert [(r["action"], r["actor"]) for r in trail] == [
        ("created", world.kim.id), ("forgotten", world.kim.id), ("restored", "admin")]


async def test_an_edit_is_a_new_version(world: World) -> None:
    """Editing a /remember post supersedes its memory; the answer says what it was."""
    await world.say(world.quality, world.kim, "/remember 검사 주기 2주", post_id="p1")
    world.clock.now += DAY
    await world.svc.edit_message(post_id="p1", content="@ai /remember 검사 주기 3주")
    text = (await world.say(world.quality, world.lee, "검사 주기 알려줘")).assistant_message or ""
    assert "검사 주기 3주 (1/2 변경, 이전: 2주)" in text


V1_DDL_MARKER = "v1"
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT,
    email_norm TEXT,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email_norm ON users (email_norm)
    WHERE email_norm IS NOT NULL;
CREATE TABLE IF NOT EXISTS chat_rooms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'channel',
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS room_members (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    joined_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX IF NOT EXISTS room_members_user ON room_members (user_id);
CREATE TABLE IF NOT EXISTS chat_messages (
    id INTEGER PRIMARY KEY,
    room_id TEXT NOT NULL,
    user_id TEXT,
    role TEXT NOT NULL DEFAULT 'user',
    content TEXT NOT NULL,
    mchat_post_id TEXT UNIQUE,
    root_id TEXT,
    created_at INTEGER NOT NULL,
    edited_at INTEGER,
    deleted_at INTEGER
);
CREATE INDEX IF NOT EXISTS chat_messages_room_time ON chat_messages (room_id, created_at);
CREATE TABLE IF NOT EXISTS memories (
    id INTEGER PRIMARY KEY,
    content TEXT NOT NULL,
    norm TEXT NOT NULL DEFAULT '',
    fact_key TEXT NOT NULL DEFAULT '',
    scope TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'remember',
    room_id TEXT,
    owner_id TEXT,
    author_id TEXT,
    source_post_id TEXT,
    permalink TEXT,
    window_key TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX IF NOT EXISTS memories_room ON memories (room_id, scope, updated_at);
CREATE INDEX IF NOT EXISTS memories_owner ON memories (owner_id, scope);
CREATE INDEX IF NOT EXISTS memories_source ON memories (source_post_id);
CREATE INDEX IF NOT EXISTS memories_norm ON memories (norm);
CREATE INDEX IF NOT EXISTS memories_fact_key ON memories (fact_key);
CREATE UNIQUE INDEX IF NOT EXISTS memories_window ON memories (room_id, window_key)
    WHERE window_key IS NOT NULL AND deleted_at IS NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
    words, grams, vis, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_vocab USING fts5vocab(memories_fts, 'row');
CREATE TABLE IF NOT EXISTS chat_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


async def test_a_version_1_database_is_upgraded_in_place(tmp_path) -> None:  # noqa: ANN001
    """A file made by schema version 1 opens: its memories become current versions with a
    subject, nothing is lost, and a new figure then supersedes the old one."""
    path = str(tmp_path / "v1.db")
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.executescript("""
        INSERT INTO users (id, name, email, email_norm, created_at)
            VALUES ('u1', 'kim', NULL, NULL, 1);
        INSERT INTO chat_rooms (id, name, kind, created_at) VALUES ('r1', 'quality', 'channel', 1);
        INSERT INTO room_members (room_id, user_id, joined_at) VALUES ('r1', 'u1', 1);
        INSERT INTO memories (content, norm, fact_key, scope, kind, room_id, owner_id, author_id,
                              created_at, updated_at)
            VALUES ('X부품 불량률 12%', 'x부품 불량률 12%', 'x부품 불량률', 'room', 'remember',
                    'r1', NULL, 'u1', 1000, 1000);
        INSERT INTO memories (content, norm, fact_key, scope, kind, room_id, owner_id, author_id,
                              created_at, updated_at, window_key)
            VALUES ('요약', '요약', '', 'room', 'summary', 'r1', NULL, NULL, 2000, 2000, '24h:1');
        INSERT INTO chat_state (key, value) VALUES ('schema_version', '1');
    """)
    conn.execute("INSERT INTO memories_fts (rowid, words, grams, vis) VALUES (1, 'x부품 불량률',"
                 " '불량 량률', 'v')")
    conn.commit()
    conn.close()
    clock = FakeClock()
    async with open_embedded_chat_service(path, clock=clock) as svc:
        (row,) = svc._conn.execute("SELECT * FROM memories WHERE id = 1").fetchall()  # noqa: SLF001
        assert (row["subject"], row["valid_from"], row["valid_to"]) == ("x부품 불량률", 1000, None)
        version = svc._conn.execute(  # noqa: SLF001
            "SELECT value FROM chat_state WHERE key = 'schema_version'").fetchone()[0]
        assert version == str(SCHEMA_VERSION) == "2"
        result = await svc.send_message("r1", "u1", "@ai /remember X부품 불량률 15%", respond=True,
                                        prompt="/remember X부품 불량률 15%")
        assert "대체" in (result.assistant_message or "")
        old = svc._conn.execute("SELECT * FROM memories WHERE id = 1").fetchone()  # noqa: SLF001
        assert old["content"] == "X부품 불량률 12%" and old["superseded_by"] is not None
    async with open_embedded_chat_service(path, clock=clock) as svc:  # a second open is a no-op
        count = svc._conn.execute("SELECT COUNT(*) FROM memories").fetchone()[0]  # noqa: SLF001
        assert count == 4


async def test_a_forgotten_version_never_shows_in_a_history(world: World) -> None:
    """Forgetting the old version by id hides it from '예전에는?' and /memory history."""
    first = await world.say(world.quality, world.kim, "/remember Sunrise 리드타임 2주")
    world.clock.now += DAY
    await world.say(world.quality, world.kim, "/remember Sunrise 리드타임 3주")
    old_id = int(first.extracted_memories[0].id[1:])
    assert await world.svc.forget_memory(old_id, actor="admin")
    assert await world.svc.forget_memory(old_id + 1, actor="admin")  # the personal copy
    for prompt in ("sunrise 리드타임 예전에는 얼마였어?", "/memory history sunrise 리드타임",
                   "sunrise 리드타임 얼마나 걸려?"):
        text = (await world.say(world.quality, world.kim, prompt)).assistant_message or ""
        assert "3주" in text and "2주" not in text, (prompt, text)
