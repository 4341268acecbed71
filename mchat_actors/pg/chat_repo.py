"""The embedded ChatService's users, rooms, members and messages on PostgreSQL: the functions
of ``chat/repo.py`` (same names, arguments and results) on the connection ``PgDatabase.run``
lends. The first piece of the ChatService on PostgreSQL (docs/postgresql.md, "What is left"):
memories (``chat/memory_store.py``) and the service object around them are not ported yet.

What SQLite's single writer never sees, these handle: two transactions creating the user of
one e-mail give both the one stored user (``ON CONFLICT`` on the unique ``email_norm``
index); two storing one post's message give both the stored one (``ON CONFLICT
(mchat_post_id)``, the later one ``is_new=False``); a member added twice is one row. Rows come
back as dicts (``row["content"]``), as ``sqlite3.Row`` is read by the service.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg.rows import dict_row

from ..chat.audience import RoomInfo
from ..chat.protocol import ChatRoom, ChatUser, StoredMessage
from ..chat.repo import message_from_row, new_id
from ..messages import AgentUserId, RoomId
from .outbox_repo import Conn

Row = dict[str, Any]


def _one(conn: Conn, sql: str, args: Sequence[object]) -> Row | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row: Row | None = cur.execute(sql, args).fetchone()
        return row


def _all(conn: Conn, sql: str, args: Sequence[object]) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(sql, args).fetchall())


# -- users and rooms ------------------------------------------------------------------------------


def user_from_row(row: Row) -> ChatUser:
    return ChatUser(id=row["id"], name=row["name"], email=row["email"])


def find_user_by_email(conn: Conn, email: str) -> ChatUser | None:
    row = _one(conn, "SELECT * FROM users WHERE email_norm = %s", (email.strip().lower(),))
    return user_from_row(row) if row else None


def create_user(conn: Conn, name: str, email: str | None, now_ms: int) -> ChatUser:
    """A new user, or the existing one with this e-mail (e-mails are unique, any case), also
    when another transaction creates it at the same moment."""
    norm = email.strip().lower() if email else None
    if norm:
        existing = find_user_by_email(conn, norm)
        if existing:
            return existing
    user = ChatUser(id=AgentUserId(new_id()), name=name, email=email)
    inserted = conn.execute(
        "INSERT INTO users (id, name, email, email_norm, created_at) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (email_norm) WHERE email_norm IS NOT NULL DO NOTHING RETURNING id",
        (user.id, name, email, norm, now_ms)).fetchone()
    if inserted is None and norm:  # the other transaction's user
        found = find_user_by_email(conn, norm)
        assert found is not None
        return found
    return user


def create_room(conn: Conn, name: str, kind: str, now_ms: int) -> ChatRoom:
    room = ChatRoom(id=RoomId(new_id()), name=name, kind=kind)
    conn.execute("INSERT INTO chat_rooms (id, name, kind, created_at) VALUES (%s, %s, %s, %s)",
                 (room.id, name, kind, now_ms))
    return room


def room_exists(conn: Conn, room: str) -> bool:
    return conn.execute("SELECT 1 FROM chat_rooms WHERE id = %s", (room,)).fetchone() is not None


def user_exists(conn: Conn, user: str) -> bool:
    return conn.execute("SELECT 1 FROM users WHERE id = %s", (user,)).fetchone() is not None


def add_member(conn: Conn, room: str, user: str, now_ms: int) -> None:
    conn.execute("INSERT INTO room_members (room_id, user_id, joined_at) VALUES (%s, %s, %s)"
                 " ON CONFLICT (room_id, user_id) DO NOTHING", (room, user, now_ms))


def remove_member(conn: Conn, room: str, user: str) -> None:
    conn.execute("DELETE FROM room_members WHERE room_id = %s AND user_id = %s", (room, user))


def visible_rooms(conn: Conn, user: str, current_room: str) -> list[str]:
    """The rooms whose memories ``user`` may see: the room asked in, the rooms they are in and
    the public rooms of their teams (team-wide)."""
    found = {str(r[0]) for r in conn.execute(
        "SELECT room_id FROM room_members WHERE user_id = %s", (user,)).fetchall()}
    teams = (user_teams(conn, user) | {room_team(conn, current_room)}) - {""}
    if teams:
        found |= {str(r[0]) for r in conn.execute(
            "SELECT r.id FROM chat_rooms AS r JOIN mchat_channel_mapping AS m"
            " ON m.agent_room_id = r.id WHERE r.kind = 'channel' AND m.mchat_team_id = ANY(%s)",
            (sorted(teams),)).fetchall()}
    return [current_room, *sorted(found - {current_room})]


# -- teams: from the runtime's channel mapping (the same database on PostgreSQL) -----------------


def room_team(conn: Conn, room: str) -> str:
    """The Mattermost team id of the channel mapped to ``room``; "" unknown (or a DM)."""
    row = conn.execute("SELECT mchat_team_id FROM mchat_channel_mapping WHERE agent_room_id = %s",
                       (room,)).fetchone()
    return str(row[0] or "") if row else ""


def user_teams(conn: Conn, user: str) -> frozenset[str]:
    """The teams of the mapped channels ``user`` is a member of."""
    rows = conn.execute(
        "SELECT DISTINCT m.mchat_team_id FROM room_members AS rm JOIN mchat_channel_mapping AS m"
        " ON m.agent_room_id = rm.room_id WHERE rm.user_id = %s AND m.mchat_team_id <> ''",
        (user,)).fetchall()
    return frozenset(str(r[0]) for r in rows)


def member_rooms(conn: Conn, user: str, current_room: str) -> list[str]:
    """The room asked in and the rooms ``user`` is a member of."""
    rows = conn.execute("SELECT room_id FROM room_members WHERE user_id = %s", (user,)).fetchall()
    return [current_room, *sorted(str(r[0]) for r in rows if r[0] != current_room)]


def room_members(conn: Conn, room: str) -> frozenset[str]:
    rows = conn.execute("SELECT user_id FROM room_members WHERE room_id = %s", (room,)).fetchall()
    return frozenset(str(r[0]) for r in rows)


def room_kind(conn: Conn, room: str) -> str:
    row = conn.execute("SELECT kind FROM chat_rooms WHERE id = %s", (room,)).fetchone()
    return str(row[0]) if row else "channel"


def room_infos(conn: Conn, rooms: Iterable[str]) -> dict[str, RoomInfo]:
    """Kind and current members of each of ``rooms`` (unknown rooms are left out)."""
    out = {}
    for room in set(rooms):
        row = conn.execute("SELECT kind FROM chat_rooms WHERE id = %s", (room,)).fetchone()
        if row is not None:
            out[room] = RoomInfo(kind=str(row[0]), members=room_members(conn, room),
                                 team=room_team(conn, room))
    return out


def set_room_members(conn: Conn, room: str, users: Iterable[str],
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


def insert_message(
    conn: Conn, *, room: str, user: str | None, content: str, role: str,
    post_id: str | None, root_id: str | None, created_at_ms: int, permalink: str | None = None,
) -> StoredMessage:
    """Store a message; with a known ``post_id`` the stored one, ``is_new=False`` (also when
    another transaction stores it at the same moment)."""
    if post_id is not None:
        row = message_by_post(conn, post_id)
        if row is not None:
            return stored_message(row, is_new=False)
    row = _one(conn,
               "INSERT INTO chat_messages (room_id, user_id, role, content, mchat_post_id,"
               " root_id, created_at, permalink) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
               " ON CONFLICT (mchat_post_id) DO NOTHING RETURNING *",
               (room, user, role, content, post_id, root_id, created_at_ms, permalink))
    if row is None:  # the post id was stored by a transaction that committed meanwhile
        assert post_id is not None
        row = message_by_post(conn, post_id)
        assert row is not None
        return stored_message(row, is_new=False)
    return stored_message(row)


def message_by_post(conn: Conn, post_id: str) -> Row | None:
    return _one(conn, "SELECT * FROM chat_messages WHERE mchat_post_id = %s", (post_id,))


def room_messages(conn: Conn, room: str, *, since_ms: int = 0, until_ms: int | None = None,
                  limit: int = 500, ids: Sequence[int] | None = None) -> list[Row]:
    """Live user messages of ``room`` (oldest first) with the author's name as ``user_name``."""
    sql = ("SELECT c.*, COALESCE(u.name, '') AS user_name FROM chat_messages AS c"
           " LEFT JOIN users AS u ON u.id = c.user_id WHERE c.room_id = %s AND c.role = 'user'"
           " AND c.deleted_at IS NULL AND c.created_at >= %s")
    args: list[object] = [room, since_ms]
    if until_ms is not None:
        sql += " AND c.created_at <= %s"
        args.append(until_ms)
    if ids is not None:
        sql += " AND c.id = ANY(%s)"
        args.append(list(ids))
    sql += " ORDER BY c.created_at DESC, c.id DESC LIMIT %s"
    args.append(limit)
    return list(reversed(_all(conn, sql, args)))


def edit_message(conn: Conn, post_id: str, content: str, now_ms: int) -> bool:
    cur = conn.execute("UPDATE chat_messages SET content = %s, edited_at = %s"
                       " WHERE mchat_post_id = %s", (content, now_ms, post_id))
    return cur.rowcount > 0


def delete_message(conn: Conn, post_id: str, now_ms: int) -> bool:
    cur = conn.execute("UPDATE chat_messages SET deleted_at = %s WHERE mchat_post_id = %s"
                       " AND deleted_at IS NULL", (now_ms, post_id))
    return cur.rowcount > 0


def stored_message(row: Row, *, is_new: bool = True) -> StoredMessage:
    """``repo.message_from_row`` for a dict row."""
    return message_from_row(row, is_new=is_new)  # type: ignore[arg-type]


def room_names(conn: Conn, rooms: list[str]) -> dict[str, str]:
    return {str(r[0]): str(r[1]) for r in conn.execute(
        "SELECT id, name FROM chat_rooms WHERE id = ANY(%s)", (list(rooms),)).fetchall()}
