"""Synchronous queries of the embedded ChatService (run in its database thread).

Every function takes the connection first and never opens a transaction itself: the service runs
each unit of work inside one ``schema.transaction``. Memories are masked here, in ``save_memory``,
so no code path can store an unmasked memory.
"""

from __future__ import annotations

import difflib
import re
import sqlite3
import uuid
from collections.abc import Sequence

from ..messages import AgentUserId, RoomId
from .analysis import normalize
from .masking import mask_sensitive
from .protocol import ChatRoom, ChatUser, MemoryRecord, StoredMessage
from .search import index_memory, memory_from_row, search_memories, unindex_memory

# A new memory replaces an existing one of the same place when their normalised texts are equal,
# differ only in their numbers ("X부품 불량률 12%" -> "15%"), or are this similar.
NEAR_DUPLICATE_RATIO = 0.9
_NON_LETTERS = re.compile(r"[\d\W_]+")


def new_id() -> str:
    return uuid.uuid4().hex


def _tidy(text: str) -> str:
    """Runs of spaces and tabs collapsed, lines stripped, outer blank lines dropped."""
    return "\n".join(" ".join(line.split()) for line in text.strip().splitlines())


def fact_key(norm: str) -> str:
    """``norm`` without numbers and punctuation: equal keys are the same fact, updated."""
    key = " ".join(_NON_LETTERS.sub(" ", norm).split())
    return key if len(key.replace(" ", "")) >= 4 else ""


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
    """The rooms whose memories ``user`` may see: the room asked in and the rooms they are in."""
    rows = conn.execute("SELECT room_id FROM room_members WHERE user_id = ?", (user,)).fetchall()
    return [current_room, *(r[0] for r in rows if r[0] != current_room)]


# -- messages -------------------------------------------------------------------------------------


def message_from_row(row: sqlite3.Row, *, is_new: bool = True) -> StoredMessage:
    return StoredMessage(
        id=str(row["id"]), room_id=row["room_id"], user_id=AgentUserId(row["user_id"] or ""),
        content=row["content"], mchat_post_id=row["mchat_post_id"],
        created_at_ms=row["created_at"], is_new=is_new,
    )


def insert_message(
    conn: sqlite3.Connection, *, room: str, user: str | None, content: str, role: str,
    post_id: str | None, root_id: str | None, created_at_ms: int,
) -> StoredMessage:
    """Store a message; with a known ``post_id`` the stored one, ``is_new=False``."""
    if post_id is not None:
        row = conn.execute("SELECT * FROM chat_messages WHERE mchat_post_id = ?",
                           (post_id,)).fetchone()
        if row is not None:
            return message_from_row(row, is_new=False)
    cur = conn.execute(
        "INSERT INTO chat_messages (room_id, user_id, role, content, mchat_post_id, root_id,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (room, user, role, content, post_id, root_id, created_at_ms),
    )
    row = conn.execute("SELECT * FROM chat_messages WHERE id = ?", (cur.lastrowid,)).fetchone()
    return message_from_row(row)


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


# -- memories -------------------------------------------------------------------------------------


def get_memory(conn: sqlite3.Connection, memory_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM memories WHERE id = ? AND deleted_at IS NULL", (memory_id,)).fetchone()
    return row


def _near_duplicate(
    conn: sqlite3.Connection, norm: str, key: str, *, scope: str, kind: str, room: str | None,
    owner: str | None, now_ms: int,
) -> sqlite3.Row | None:
    place = "room_id = ?" if scope == "room" else "owner_id = ?"
    where = f"deleted_at IS NULL AND scope = ? AND kind = ? AND {place}"
    args = (scope, kind, room if scope == "room" else owner)
    row: sqlite3.Row | None = conn.execute(
        f"SELECT * FROM memories WHERE {where} AND norm = ? ORDER BY id LIMIT 1",
        (*args, norm)).fetchone()
    if row is None and key:
        row = conn.execute(
            f"SELECT * FROM memories WHERE {where} AND fact_key = ?"
            " ORDER BY updated_at DESC LIMIT 1",
            (*args, key)).fetchone()
    if row is not None:
        return row
    found = search_memories(conn, norm, rooms=[room] if scope == "room" and room else [],
                            owner=owner if scope == "personal" else None, current_room=room,
                            now_ms=now_ms, limit=5)
    for memory in found:
        if memory.scope != scope or difflib.SequenceMatcher(
                None, norm, normalize(memory.content)).ratio() < NEAR_DUPLICATE_RATIO:
            continue
        candidate = get_memory(conn, int(memory.id[1:]))
        if candidate is not None and candidate["kind"] == kind:
            return candidate
    return None


def save_memory(
    conn: sqlite3.Connection, content: str, *, scope: str, kind: str, room: str | None,
    owner: str | None, author: str | None, source_post_id: str | None, permalink: str | None,
    now_ms: int, window_key: str | None = None,
) -> tuple[MemoryRecord, bool]:
    """Store ``content`` masked; ``(memory, replaced)``.

    A near-duplicate in the same place (the room for room memories, the owner for personal ones)
    or the same summary window is updated in place instead of adding a second memory.
    """
    content = _tidy(mask_sensitive(content))
    norm = normalize(content)
    key = fact_key(norm)
    if window_key is not None:
        existing = conn.execute(
            "SELECT * FROM memories WHERE room_id = ? AND window_key = ? AND deleted_at IS NULL",
            (room, window_key)).fetchone()
    else:
        existing = _near_duplicate(conn, norm, key, scope=scope, kind=kind, room=room,
                                   owner=owner, now_ms=now_ms)
    if existing is not None:
        conn.execute(
            "UPDATE memories SET content = ?, norm = ?, fact_key = ?, author_id = ?,"
            " source_post_id = COALESCE(?, source_post_id), permalink = COALESCE(?, permalink),"
            " updated_at = ? WHERE id = ?",
            (content, norm, key, author, source_post_id, permalink, now_ms, existing["id"]))
        memory_id = existing["id"]
    else:
        cur = conn.execute(
            "INSERT INTO memories (content, norm, fact_key, scope, kind, room_id, owner_id,"
            " author_id, source_post_id, permalink, window_key, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (content, norm, key, scope, kind, room, owner, author, source_post_id, permalink,
             window_key, now_ms, now_ms))
        memory_id = cur.lastrowid
    row = get_memory(conn, memory_id)
    assert row is not None  # written just above, in the same transaction
    index_memory(conn, memory_id, content, scope=row["scope"], room=row["room_id"],
                 owner=row["owner_id"])
    return memory_from_row(row), existing is not None


def update_memory_content(conn: sqlite3.Connection, memory_id: int, content: str,
                          now_ms: int) -> None:
    content = _tidy(mask_sensitive(content))
    norm = normalize(content)
    conn.execute("UPDATE memories SET content = ?, norm = ?, fact_key = ?, updated_at = ?"
                 " WHERE id = ?", (content, norm, fact_key(norm), now_ms, memory_id))
    row = get_memory(conn, memory_id)
    if row is not None:
        index_memory(conn, memory_id, content, scope=row["scope"], room=row["room_id"],
                     owner=row["owner_id"])


def delete_memory(conn: sqlite3.Connection, memory_id: int, now_ms: int) -> None:
    conn.execute("UPDATE memories SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
                 (now_ms, memory_id))
    unindex_memory(conn, memory_id)


def memories_from_post(conn: sqlite3.Connection, post_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM memories WHERE source_post_id = ? AND deleted_at IS NULL",
                        (post_id,)).fetchall()


def twins(conn: sqlite3.Connection, row: sqlite3.Row, user: str) -> list[sqlite3.Row]:
    """The other copies of a memory ``user`` stored with /remember (room <-> personal)."""
    if row["scope"] == "room":
        sql = "scope = 'personal' AND owner_id = ?"
        args: tuple[object, ...] = (user,)
    else:
        sql = "scope = 'room' AND room_id = ? AND author_id = ?"
        args = (row["room_id"], user)
    return conn.execute(
        f"SELECT * FROM memories WHERE deleted_at IS NULL AND norm = ? AND id != ? AND {sql}",
        (row["norm"], row["id"], *args)).fetchall()


def recent_room_memories(conn: sqlite3.Connection, room: str, limit: int) -> list[MemoryRecord]:
    rows = conn.execute(
        "SELECT * FROM memories WHERE room_id = ? AND scope = 'room' AND deleted_at IS NULL"
        " ORDER BY updated_at DESC, id DESC LIMIT ?", (room, limit)).fetchall()
    return [memory_from_row(r) for r in rows]
