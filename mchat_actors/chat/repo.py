"""Synchronous queries of the embedded ChatService (run in its database thread).

Every function takes the connection first and never opens a transaction itself: the service runs
each unit of work inside one ``schema.transaction``. Memories live in ``chat.memory_store``
(re-exported here), which masks them in ``save_memory``: no code path stores an unmasked memory.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Sequence

from ..messages import AgentUserId, RoomId
from .audience import RoomInfo
from .memory_store import (  # the memory functions' old home
    forget_memory,
    get_memory,
    memories_from_post,
    previous_version,
    recent_room_memories,
    retract_memory,
    room_has_current,
    save_memory,
    twins,
    versions,
)
from .protocol import ChatRoom, ChatUser, NewMessage, StoredMessage
from .search import analyzer_of, search_memories, search_scoped  # what the units search with


def new_id() -> str:
    return uuid.uuid4().hex


# -- users and rooms ------------------------------------------------------------------------------


def user_from_row(row: sqlite3.Row) -> ChatUser:
    return ChatUser(id=row["id"], name=row["name"], email=row["email"])


def find_user_by_email(conn: sqlite3.Connection, email: str) -> ChatUser | None:
    row = conn.execute("SELECT * FROM users WHERE email_norm = ?",
                       (email.strip().lower(),)).fetchone()
    return user_from_row(row) if row else None


def create_user(conn: sqlite3.Connection, name: str, email: str | None, now_ms: int) -> ChatUser:
    """A new user, or the existing one with this e-mail (e-mails are unique, any case)."""
    if email:
        existing = find_user_by_email(conn, email)
        if existing:
            return existing
    user = ChatUser(id=AgentUserId(new_id()), name=name, email=email)
    conn.execute(
        "INSERT INTO users (id, name, email, email_norm, created_at) VALUES (?, ?, ?, ?, ?)",
        (user.id, name, email, email.strip().lower() if email else None, now_ms),
    )
    return user


def create_room(conn: sqlite3.Connection, name: str, kind: str, now_ms: int) -> ChatRoom:
    room = ChatRoom(id=RoomId(new_id()), name=name, kind=kind)
    conn.execute("INSERT INTO chat_rooms (id, name, kind, created_at) VALUES (?, ?, ?, ?)",
                 (room.id, name, kind, now_ms))
    return room


def room_exists(conn: sqlite3.Connection, room: str) -> bool:
    return conn.execute("SELECT 1 FROM chat_rooms WHERE id = ?", (room,)).fetchone() is not None


def user_exists(conn: sqlite3.Connection, user: str) -> bool:
    return conn.execute("SELECT 1 FROM users WHERE id = ?", (user,)).fetchone() is not None


def add_member(conn: sqlite3.Connection, room: str, user: str, now_ms: int) -> None:
    conn.execute("INSERT OR IGNORE INTO room_members (room_id, user_id, joined_at)"
                 " VALUES (?, ?, ?)", (room, user, now_ms))


def remove_member(conn: sqlite3.Connection, room: str, user: str) -> None:
    conn.execute("DELETE FROM room_members WHERE room_id = ? AND user_id = ?", (room, user))


def visible_rooms(conn: sqlite3.Connection, user: str, current_room: str) -> list[str]:
    """The rooms whose memories ``user`` may see: the room asked in, the rooms they are in and
    the public rooms of their teams (team-wide)."""
    rows = conn.execute("SELECT room_id FROM room_members WHERE user_id = ?", (user,)).fetchall()
    found = {r[0] for r in rows}
    teams = (user_teams(conn, user) | {room_team(conn, current_room)}) - {""}
    if teams and _has_channel_mapping(conn):
        marks = ",".join("?" * len(teams))
        found |= {r[0] for r in conn.execute(
            "SELECT r.id FROM chat_rooms AS r JOIN mchat_channel_mapping AS m"
            f" ON m.agent_room_id = r.id WHERE r.kind = 'channel' AND m.mchat_team_id IN ({marks})",
            sorted(teams))}
    return [current_room, *sorted(found - {current_room})]


# -- teams: read from the runtime's channel mapping (same SQLite file; absent: no team known) ----


def _has_channel_mapping(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                        " AND name = 'mchat_channel_mapping'").fetchone() is not None


def room_team(conn: sqlite3.Connection, room: str) -> str:
    """The Mattermost team id of the channel mapped to ``room``; "" unknown (or a DM)."""
    if not _has_channel_mapping(conn):
        return ""
    row = conn.execute("SELECT mchat_team_id FROM mchat_channel_mapping WHERE agent_room_id = ?",
                       (room,)).fetchone()
    return str(row[0] or "") if row else ""


def user_teams(conn: sqlite3.Connection, user: str) -> frozenset[str]:
    """The teams ``user`` belongs to as far as we know: those of the mapped channels they are a
    member of (a channel's members are members of its team)."""
    if not _has_channel_mapping(conn):
        return frozenset()
    rows = conn.execute(
        "SELECT DISTINCT m.mchat_team_id FROM room_members AS rm JOIN mchat_channel_mapping AS m"
        " ON m.agent_room_id = rm.room_id WHERE rm.user_id = ? AND m.mchat_team_id != ''",
        (user,))
    return frozenset(str(r[0]) for r in rows)


def member_rooms(conn: sqlite3.Connection, user: str, current_room: str) -> list[str]:
    """The room asked in and the rooms ``user`` is a member of."""
    rows = conn.execute("SELECT room_id FROM room_members WHERE user_id = ?", (user,))
    return [current_room, *sorted(r[0] for r in rows if r[0] != current_room)]


def room_members(conn: sqlite3.Connection, room: str) -> frozenset[str]:
    rows = conn.execute("SELECT user_id FROM room_members WHERE room_id = ?", (room,))
    return frozenset(r[0] for r in rows)


def room_kind(conn: sqlite3.Connection, room: str) -> str:
    row = conn.execute("SELECT kind FROM chat_rooms WHERE id = ?", (room,)).fetchone()
    return str(row[0]) if row else "channel"


def room_infos(conn: sqlite3.Connection, rooms: Iterable[str]) -> dict[str, RoomInfo]:
    """Kind and current members of each of ``rooms`` (unknown rooms are left out)."""
    out = {}
    for room in set(rooms):
        row = conn.execute("SELECT kind FROM chat_rooms WHERE id = ?", (room,)).fetchone()
        if row is not None:
            out[room] = RoomInfo(kind=row[0], members=room_members(conn, room),
                                 team=room_team(conn, room))
    return out


def set_room_members(conn: sqlite3.Connection, room: str, users: Iterable[str],
                     now_ms: int) -> tuple[int, int]:
    """Make ``users`` the room's members; ``(added, removed)``."""
    wanted = set(users)
    have = room_members(conn, room)
    for user in wanted - have:
        add_member(conn, room, user, now_ms)
    for user in have - wanted:
        remove_member(conn, room, user)
    return len(wanted - have), len(have - wanted)


# -- messages -------------------------------------------------------------------------------------


def room_names(conn: sqlite3.Connection, rooms: list[str]) -> dict[str, str]:
    marks = ",".join("?" * len(rooms))
    rows = conn.execute(f"SELECT id, name FROM chat_rooms WHERE id IN ({marks})", rooms)
    return {row["id"]: row["name"] for row in rows}


def message_from_row(row: sqlite3.Row, *, is_new: bool = True) -> StoredMessage:
    return StoredMessage(
        id=str(row["id"]), room_id=row["room_id"], user_id=AgentUserId(row["user_id"] or ""),
        content=row["content"], mchat_post_id=row["mchat_post_id"],
        created_at_ms=row["created_at"], is_new=is_new,
    )


def insert_message(
    conn: sqlite3.Connection, *, room: str, user: str | None, content: str, role: str,
    post_id: str | None, root_id: str | None, created_at_ms: int, permalink: str | None = None,
) -> StoredMessage:
    """Store a message; with a known ``post_id`` the stored one, ``is_new=False``."""
    if post_id is not None:
        row = conn.execute("SELECT * FROM chat_messages WHERE mchat_post_id = ?",
                           (post_id,)).fetchone()
        if row is not None:
            return message_from_row(row, is_new=False)
    cur = conn.execute(
        "INSERT INTO chat_messages (room_id, user_id, role, content, mchat_post_id, root_id,"
        " created_at, permalink) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (room, user, role, content, post_id, root_id, created_at_ms, permalink),
    )
    row = conn.execute("SELECT * FROM chat_messages WHERE id = ?", (cur.lastrowid,)).fetchone()
    return message_from_row(row)


def insert_user_messages(conn: sqlite3.Connection, messages: Sequence[NewMessage]
                         ) -> list[StoredMessage]:
    """``insert_message`` (role ``user``) for each of ``messages`` in order, one statement
    each: an insert that returns its row, or nothing when the post id is stored (then that
    row is read: ``is_new=False``)."""
    stored: list[StoredMessage] = []
    for m in messages:
        row = conn.execute(
            "INSERT INTO chat_messages (room_id, user_id, role, content, mchat_post_id, root_id,"
            " created_at, permalink) VALUES (?, ?, 'user', ?, ?, ?, ?, ?)"
            " ON CONFLICT (mchat_post_id) DO NOTHING RETURNING *",
            (m.room, m.user, m.content, m.post_id, m.root_id, m.created_at_ms or 0,
             m.permalink)).fetchone()
        if row is not None:
            stored.append(message_from_row(row))
            continue
        old = message_by_post(conn, m.post_id) if m.post_id is not None else None
        assert old is not None  # the conflict was on the post id, committed or in this batch
        stored.append(message_from_row(old, is_new=False))
    return stored


def message_by_post(conn: sqlite3.Connection, post_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM chat_messages WHERE mchat_post_id = ?", (post_id,)).fetchone()
    return row


def room_messages(
    conn: sqlite3.Connection, room: str, *, since_ms: int = 0, until_ms: int | None = None,
    limit: int = 500, ids: Sequence[int] | None = None,
) -> list[sqlite3.Row]:
    """Live user messages of ``room`` (oldest first) with the author's name as ``user_name``."""
    sql = ("SELECT c.*, COALESCE(u.name, '') AS user_name FROM chat_messages AS c"
           " LEFT JOIN users AS u ON u.id = c.user_id WHERE c.room_id = ? AND c.role = 'user'"
           " AND c.deleted_at IS NULL AND c.created_at >= ?")
    args: list[object] = [room, since_ms]
    if until_ms is not None:
        sql += " AND c.created_at <= ?"
        args.append(until_ms)
    if ids is not None:
        sql += f" AND c.id IN ({','.join('?' * len(ids))})"
        args.extend(ids)
    sql += " ORDER BY c.created_at DESC, c.id DESC LIMIT ?"
    args.append(limit)
    return list(reversed(conn.execute(sql, args).fetchall()))


def edit_message(conn: sqlite3.Connection, post_id: str, content: str, now_ms: int) -> bool:
    cur = conn.execute("UPDATE chat_messages SET content = ?, edited_at = ?"
                       " WHERE mchat_post_id = ?", (content, now_ms, post_id))
    return cur.rowcount > 0


def delete_message(conn: sqlite3.Connection, post_id: str, now_ms: int) -> bool:
    cur = conn.execute("UPDATE chat_messages SET deleted_at = ? WHERE mchat_post_id = ?"
                       " AND deleted_at IS NULL", (now_ms, post_id))
    return cur.rowcount > 0


__all__ = [
    "add_member", "create_room", "create_user", "delete_message", "edit_message",
    "find_user_by_email", "forget_memory", "get_memory", "insert_message", "insert_user_messages",
    "memories_from_post",
    "message_by_post", "message_from_row", "new_id", "recent_room_memories", "remove_member",
    "member_rooms", "retract_memory", "room_exists", "room_infos", "room_kind", "room_members",
    "room_team", "set_room_members", "room_messages", "save_memory", "twins", "user_exists",
    "user_teams",
    "versions", "visible_rooms", "previous_version", "room_has_current", "room_names",
    "analyzer_of", "search_memories", "search_scoped",
]
