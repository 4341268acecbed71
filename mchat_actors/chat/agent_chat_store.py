"""The agent-chat backend's tables (``CHAT_BACKEND=agent-chat``), in the embedded store's file.

Run through ``EmbeddedChatService.db`` (one transaction each). ``CREATE ... IF NOT EXISTS``:
opening an existing database is always safe.

- ``agent_chat_users``: our (embedded) user id -> the AI Memory Agent's user id, and the e-mail
  it was matched or created by.
- ``agent_chat_rooms``: our room id -> the agent's chat room id.
- ``agent_chat_members``: memberships already made on the agent (so each is asked for once).
- ``agent_chat_posts``: one row per Mattermost post sent to the agent: ``state`` ``sending``
  (written before the POST) or ``sent`` (after it, with the agent's message id and answer);
  ``content_hash`` with the remote room and user lets a restart count how many copies of the
  same text the agent already holds from us (see ``chat.agent_chat``).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_chat_users (
    user_id TEXT PRIMARY KEY,
    remote_user_id TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_chat_rooms (
    room_id TEXT PRIMARY KEY,
    remote_room_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_chat_members (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE TABLE IF NOT EXISTS agent_chat_posts (
    post_id TEXT PRIMARY KEY,
    remote_room_id TEXT NOT NULL,
    remote_user_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    remote_message_id TEXT,
    answer TEXT,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_chat_posts_text
    ON agent_chat_posts (remote_room_id, remote_user_id, content_hash, state);
"""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ensure_schema(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


def _one(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> Any:
    row = conn.execute(sql, args).fetchone()
    return None if row is None else row[0]


def remote_user(conn: sqlite3.Connection, user: str) -> str | None:
    found = _one(conn, "SELECT remote_user_id FROM agent_chat_users WHERE user_id = ?", (user,))
    return None if found is None else str(found)


def put_remote_user(conn: sqlite3.Connection, user: str, remote: str, email: str) -> None:
    conn.execute("INSERT INTO agent_chat_users (user_id, remote_user_id, email, created_at) "
                 "VALUES (?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET "
                 "remote_user_id = excluded.remote_user_id, email = excluded.email",
                 (user, remote, email, time.time()))


def local_user(conn: sqlite3.Connection, user: str) -> tuple[str, str | None] | None:
    """(name, e-mail) of one of our users (the embedded ``users`` table)."""
    row = conn.execute("SELECT name, email FROM users WHERE id = ?", (user,)).fetchone()
    return None if row is None else (str(row[0]), row[1])


def remote_room(conn: sqlite3.Connection, room: str) -> str | None:
    found = _one(conn, "SELECT remote_room_id FROM agent_chat_rooms WHERE room_id = ?", (room,))
    return None if found is None else str(found)


def put_remote_room(conn: sqlite3.Connection, room: str, remote: str) -> None:
    conn.execute("INSERT INTO agent_chat_rooms (room_id, remote_room_id, created_at) "
                 "VALUES (?, ?, ?) ON CONFLICT(room_id) DO NOTHING", (room, remote, time.time()))


def local_room_name(conn: sqlite3.Connection, room: str) -> str | None:
    found = _one(conn, "SELECT name FROM chat_rooms WHERE id = ?", (room,))
    return None if found is None else str(found)


def member_known(conn: sqlite3.Connection, room: str, user: str) -> bool:
    return _one(conn, "SELECT 1 FROM agent_chat_members WHERE room_id = ? AND user_id = ?",
                (room, user)) is not None


def put_member(conn: sqlite3.Connection, room: str, user: str) -> None:
    conn.execute("INSERT INTO agent_chat_members (room_id, user_id) VALUES (?, ?) "
                 "ON CONFLICT DO NOTHING", (room, user))


def drop_member(conn: sqlite3.Connection, room: str, user: str) -> None:
    conn.execute("DELETE FROM agent_chat_members WHERE room_id = ? AND user_id = ?",
                 (room, user))


def post_state(conn: sqlite3.Connection, post_id: str) -> tuple[str, str | None] | None:
    """(state, answer) of a post already handed to the agent, or None."""
    row = conn.execute("SELECT state, answer FROM agent_chat_posts WHERE post_id = ?",
                       (post_id,)).fetchone()
    return None if row is None else (str(row[0]), row[1])


def begin_post(conn: sqlite3.Connection, post_id: str, remote_room_id: str,
               remote_user_id: str, text: str) -> int:
    """Mark ``post_id`` as being sent; how many copies of ``text`` the agent already holds from
    this user in this room through us (rows ``sent`` before)."""
    digest = content_hash(text)
    conn.execute("INSERT INTO agent_chat_posts (post_id, remote_room_id, remote_user_id, "
                 "content_hash, state, updated_at) VALUES (?, ?, ?, ?, 'sending', ?) "
                 "ON CONFLICT(post_id) DO NOTHING",
                 (post_id, remote_room_id, remote_user_id, digest, time.time()))
    return int(_one(conn, "SELECT count(*) FROM agent_chat_posts WHERE remote_room_id = ? AND "
                    "remote_user_id = ? AND content_hash = ? AND state = 'sent'",
                    (remote_room_id, remote_user_id, digest)))


def finish_post(conn: sqlite3.Connection, post_id: str, remote_message_id: str | None,
                answer: str | None) -> None:
    conn.execute("UPDATE agent_chat_posts SET state = 'sent', remote_message_id = ?, "
                 "answer = ?, updated_at = ? WHERE post_id = ?",
                 (remote_message_id, answer, time.time(), post_id))


__all__ = [
    "begin_post",
    "content_hash",
    "drop_member",
    "ensure_schema",
    "finish_post",
    "local_room_name",
    "local_user",
    "member_known",
    "post_state",
    "put_member",
    "put_remote_room",
    "put_remote_user",
    "remote_room",
    "remote_user",
]
