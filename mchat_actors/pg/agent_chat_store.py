"""The agent-chat backend's tables on PostgreSQL: ``chat.agent_chat_store``'s functions (same
arguments, same results) on the connection ``PgDatabase.run`` lends, run as their twins by
``pg.chat_db.PgChatDatabase`` (the local store agent-chat is given on PostgreSQL is the
embedded service there, with no LLM).

Like SQLite's, the tables are created when the service opens (``ensure_schema``, ``IF NOT
EXISTS``), under a transaction-level advisory lock: replicas starting at once would otherwise
race on PostgreSQL's catalog. Types follow ``pg.schema``: ``REAL`` times are ``DOUBLE
PRECISION``.
"""

from __future__ import annotations

import time
from typing import Any

from ..chat.agent_chat_store import content_hash
from .outbox_repo import Conn

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_chat_users (
    user_id TEXT PRIMARY KEY,
    remote_user_id TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_chat_rooms (
    room_id TEXT PRIMARY KEY,
    remote_room_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
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
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_chat_posts_text
    ON agent_chat_posts (remote_room_id, remote_user_id, content_hash, state)
"""


def ensure_schema(conn: Conn) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('agent_chat:schema', 0))")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement.encode())


def _one(conn: Conn, sql: str, args: tuple[Any, ...]) -> Any:
    row = conn.execute(sql.encode(), args).fetchone()
    return None if row is None else row[0]


def remote_user(conn: Conn, user: str) -> str | None:
    found = _one(conn, "SELECT remote_user_id FROM agent_chat_users WHERE user_id = %s", (user,))
    return None if found is None else str(found)


def put_remote_user(conn: Conn, user: str, remote: str, email: str) -> None:
    conn.execute("INSERT INTO agent_chat_users (user_id, remote_user_id, email, created_at)"
                 " VALUES (%s, %s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET"
                 " remote_user_id = excluded.remote_user_id, email = excluded.email",
                 (user, remote, email, time.time()))


def local_user(conn: Conn, user: str) -> tuple[str, str | None] | None:
    """(name, e-mail) of one of our users (the embedded ``users`` table)."""
    row = conn.execute("SELECT name, email FROM users WHERE id = %s", (user,)).fetchone()
    return None if row is None else (str(row[0]), row[1])


def remote_room(conn: Conn, room: str) -> str | None:
    found = _one(conn, "SELECT remote_room_id FROM agent_chat_rooms WHERE room_id = %s",
                 (room,))
    return None if found is None else str(found)


def put_remote_room(conn: Conn, room: str, remote: str) -> None:
    conn.execute("INSERT INTO agent_chat_rooms (room_id, remote_room_id, created_at)"
                 " VALUES (%s, %s, %s) ON CONFLICT (room_id) DO NOTHING",
                 (room, remote, time.time()))


def local_room_name(conn: Conn, room: str) -> str | None:
    found = _one(conn, "SELECT name FROM chat_rooms WHERE id = %s", (room,))
    return None if found is None else str(found)


def member_known(conn: Conn, room: str, user: str) -> bool:
    return _one(conn, "SELECT 1 FROM agent_chat_members WHERE room_id = %s AND user_id = %s",
                (room, user)) is not None


def put_member(conn: Conn, room: str, user: str) -> None:
    conn.execute("INSERT INTO agent_chat_members (room_id, user_id) VALUES (%s, %s)"
                 " ON CONFLICT DO NOTHING", (room, user))


def drop_member(conn: Conn, room: str, user: str) -> None:
    conn.execute("DELETE FROM agent_chat_members WHERE room_id = %s AND user_id = %s",
                 (room, user))


def post_state(conn: Conn, post_id: str) -> tuple[str, str | None] | None:
    """(state, answer) of a post already handed to the agent, or None."""
    row = conn.execute("SELECT state, answer FROM agent_chat_posts WHERE post_id = %s",
                       (post_id,)).fetchone()
    return None if row is None else (str(row[0]), row[1])


def begin_post(conn: Conn, post_id: str, remote_room_id: str, remote_user_id: str,
               text: str) -> int:
    """``chat.agent_chat_store.begin_post`` on PostgreSQL: mark ``post_id`` as being sent; how
    many copies of ``text`` the agent already holds from this user in this room through us.
    The (room, user) pair is locked for the transaction: on SQLite one writer orders two
    replicas' counts, here the lock does."""
    digest = content_hash(text)
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                 (f"agent_chat:{remote_room_id}:{remote_user_id}",))
    conn.execute("INSERT INTO agent_chat_posts (post_id, remote_room_id, remote_user_id,"
                 " content_hash, state, updated_at) VALUES (%s, %s, %s, %s, 'sending', %s)"
                 " ON CONFLICT (post_id) DO NOTHING",
                 (post_id, remote_room_id, remote_user_id, digest, time.time()))
    return int(_one(conn, "SELECT count(*) FROM agent_chat_posts WHERE remote_room_id = %s"
                    " AND remote_user_id = %s AND content_hash = %s AND state = 'sent'",
                    (remote_room_id, remote_user_id, digest)))


def finish_post(conn: Conn, post_id: str, remote_message_id: str | None,
                answer: str | None) -> None:
    conn.execute("UPDATE agent_chat_posts SET state = 'sent', remote_message_id = %s,"
                 " answer = %s, updated_at = %s WHERE post_id = %s",
                 (remote_message_id, answer, time.time(), post_id))


__all__ = ["begin_post", "drop_member", "ensure_schema", "finish_post", "local_room_name",
           "local_user", "member_known", "post_state", "put_member", "put_remote_room",
           "put_remote_user", "remote_room", "remote_user"]
