"""Versioned memories on PostgreSQL: ``chat/memory_store.py``'s functions (same rules, same
results) on the connection ``PgDatabase.run`` lends, indexed by ``pg.search`` (the analyzer
is passed in: SQLite's functions read it from their connection).

What SQLite's single writer never sees: two transactions saving into one place (a room's
memories, or one owner's personal ones) at once. ``save_memory`` takes a transaction-scoped
advisory lock on the place first, so the "unchanged / superseded / added" decision and the
write are one step per place: two saves of one subject end as two versions in a chain, never
as two current memories. Not wired into a ChatService yet (docs/postgresql.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.rows import dict_row

from ..chat.analysis import Analyzer, normalize
from ..chat.masking import mask_for_storage
from ..chat.memory_store import ADDED, CURRENT, SUPERSEDED, UNCHANGED, tidy
from ..chat.protocol import MemoryRecord
from ..chat.search import memory_from_row
from ..chat.subject import subject_of
from .outbox_repo import Conn
from .search import index_memory, unindex_memory

Row = dict[str, Any]


Args = Sequence[object] | dict[str, object]


def _one(conn: Conn, sql: str, args: Args) -> Row | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row: Row | None = cur.execute(sql, args).fetchone()
        return row


def _all(conn: Conn, sql: str, args: Args) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(sql, args).fetchall())


def record(row: Row) -> MemoryRecord:
    return memory_from_row(row)  # type: ignore[arg-type]  # a dict reads like sqlite3.Row


def audit(conn: Conn, memory_id: int, action: str, *, actor: str | None, now_ms: int,
          detail: str = "") -> None:
    conn.execute("INSERT INTO memory_audit (memory_id, action, actor, at, detail)"
                 " VALUES (%s, %s, %s, %s, %s)", (memory_id, action, actor or "", now_ms, detail))


def _place(scope: str, room: str | None, owner: str | None) -> tuple[str, tuple[object, ...]]:
    if scope == "personal":
        return "scope = 'personal' AND owner_id = %s", (owner,)
    return "scope = %s AND room_id = %s", (scope, room)


def _lock_place(conn: Conn, scope: str, room: str | None, owner: str | None) -> None:
    key = f"memories:personal:{owner}" if scope == "personal" else f"memories:{scope}:{room}"
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))


def get_memory(conn: Conn, memory_id: int, *, current: bool = True) -> Row | None:
    where = f" AND {CURRENT}" if current else ""
    return _one(conn, f"SELECT * FROM memories WHERE id = %s{where}", (memory_id,))


def save_memory(
    conn: Conn, analyzer: Analyzer, content: str, *, scope: str, kind: str, room: str | None,
    owner: str | None, author: str | None, source_post_id: str | None, permalink: str | None,
    now_ms: int, window_key: str | None = None, supersedes: int | None = None,
) -> tuple[MemoryRecord, str]:
    """``chat.memory_store.save_memory`` on PostgreSQL: ``(memory, outcome)``."""
    content = tidy(mask_for_storage(content))
    norm = normalize(content)
    subject = "" if kind == "summary" else subject_of(content)
    _lock_place(conn, scope, room, owner)
    place, args = _place(scope, room, owner)
    same = _one(conn, f"SELECT * FROM memories WHERE {CURRENT} AND {place} AND norm = %s"
                " ORDER BY id LIMIT 1", (*args, norm))
    if same is not None and (window_key is None or same["window_key"] == window_key):
        return record(same), UNCHANGED
    old: Row | None = None
    if supersedes is not None:
        old = get_memory(conn, supersedes)
    elif window_key is not None:
        old = _one(conn, f"SELECT * FROM memories WHERE {CURRENT} AND room_id = %s"
                   " AND window_key = %s", (room, window_key))
    elif subject:
        old = _one(conn, f"SELECT * FROM memories WHERE {CURRENT} AND {place} AND subject = %s"
                   " AND kind <> 'summary' ORDER BY valid_from DESC, id DESC LIMIT 1",
                   (*args, subject))
    if old is not None:  # leaves the current set first (the window index is unique)
        conn.execute("UPDATE memories SET valid_to = %s WHERE id = %s", (now_ms, old["id"]))
        unindex_memory(conn, old["id"])
    inserted = conn.execute(
        "INSERT INTO memories (content, norm, subject, scope, kind, room_id, owner_id,"
        " author_id, source_post_id, permalink, window_key, created_at, updated_at,"
        " valid_from) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING id",
        (content, norm, subject, scope, kind, room, owner, author, source_post_id, permalink,
         window_key, now_ms, now_ms, now_ms)).fetchone()
    assert inserted is not None
    memory_id = int(inserted[0])
    audit(conn, memory_id, "created", actor=author, now_ms=now_ms)
    if old is not None:
        conn.execute("UPDATE memories SET superseded_by = %s WHERE id = %s",
                     (memory_id, old["id"]))
        audit(conn, old["id"], "superseded", actor=author, now_ms=now_ms,
              detail=f"by m{memory_id}")
    index_memory(conn, analyzer, memory_id, content, scope=scope, room=room, owner=owner)
    row = get_memory(conn, memory_id)
    assert row is not None  # written just above, in the same transaction
    return record(row), SUPERSEDED if old is not None else ADDED


def retract_memory(conn: Conn, memory_id: int, now_ms: int, *, reason: str) -> None:
    cur = conn.execute("UPDATE memories SET deleted_at = %s WHERE id = %s"
                       " AND deleted_at IS NULL", (now_ms, memory_id))
    if cur.rowcount:
        unindex_memory(conn, memory_id)
        audit(conn, memory_id, "retracted", actor=None, now_ms=now_ms, detail=reason)


def forget_memory(conn: Conn, memory_id: int, *, actor: str, now_ms: int) -> bool:
    cur = conn.execute("UPDATE memories SET forgotten_at = %s, forgotten_by = %s WHERE id = %s"
                       " AND forgotten_at IS NULL", (now_ms, actor, memory_id))
    if not cur.rowcount:
        return False
    unindex_memory(conn, memory_id)
    audit(conn, memory_id, "forgotten", actor=actor, now_ms=now_ms)
    return True


def restore_memory(conn: Conn, analyzer: Analyzer, memory_id: int, *, actor: str,
                   now_ms: int) -> bool:
    cur = conn.execute("UPDATE memories SET forgotten_at = NULL, forgotten_by = NULL"
                       " WHERE id = %s AND forgotten_at IS NOT NULL", (memory_id,))
    if not cur.rowcount:
        return False
    row = get_memory(conn, memory_id)
    if row is not None:
        index_memory(conn, analyzer, memory_id, row["content"], scope=row["scope"],
                     room=row["room_id"], owner=row["owner_id"])
    audit(conn, memory_id, "restored", actor=actor, now_ms=now_ms)
    return True


def versions(conn: Conn, memory_id: int) -> list[Row]:
    """Every version of ``memory_id``'s subject chain, oldest first (forgotten ones included)."""
    return _all(conn,
                "WITH RECURSIVE back(id) AS (SELECT %(id)s::bigint UNION SELECT m.id"
                " FROM memories AS m JOIN back ON m.superseded_by = back.id),"
                " fwd(id) AS (SELECT %(id)s::bigint UNION SELECT m.superseded_by"
                " FROM memories AS m JOIN fwd ON m.id = fwd.id"
                " WHERE m.superseded_by IS NOT NULL)"
                " SELECT m.*, COALESCE(u.name, '') AS author_name,"
                " COALESCE(r.name, '') AS room_name FROM memories AS m"
                " LEFT JOIN users AS u ON u.id = m.author_id"
                " LEFT JOIN chat_rooms AS r ON r.id = m.room_id"
                " WHERE m.id IN (SELECT id FROM back UNION SELECT id FROM fwd)"
                " ORDER BY m.valid_from, m.id", {"id": memory_id})


def previous_version(conn: Conn, memory_id: int) -> Row | None:
    return _one(conn, "SELECT * FROM memories WHERE superseded_by = %s AND forgotten_at IS NULL"
                " AND deleted_at IS NULL", (memory_id,))


def audit_trail(conn: Conn, memory_id: int) -> list[Row]:
    return _all(conn, "SELECT * FROM memory_audit WHERE memory_id = %s ORDER BY id",
                (memory_id,))


def memories_from_post(conn: Conn, post_id: str) -> list[Row]:
    return _all(conn, f"SELECT * FROM memories WHERE source_post_id = %s AND {CURRENT}",
                (post_id,))


def recent_room_memories(conn: Conn, room: str, limit: int) -> list[MemoryRecord]:
    rows = _all(conn, f"SELECT * FROM memories WHERE room_id = %s AND scope = 'room'"
                f" AND {CURRENT} ORDER BY valid_from DESC, id DESC LIMIT %s", (room, limit))
    return [record(r) for r in rows]


def twins(conn: Conn, row: Row, user: str) -> list[Row]:
    """The other current copies of a memory ``user`` stored with /remember (room <-> personal)."""
    if row["scope"] == "room":
        sql = "scope = 'personal' AND owner_id = %s"
        args: tuple[object, ...] = (user,)
    else:
        sql = "scope = 'room' AND room_id = %s AND author_id = %s"
        args = (row["room_id"], user)
    return _all(conn, f"SELECT * FROM memories WHERE {CURRENT} AND norm = %s AND id <> %s"
                f" AND {sql}", (row["norm"], row["id"], *args))


def room_has_current(conn: Conn, room: str, norm: str, subject: str) -> bool:
    """Whether the room has a current memory of this normalized text or of this subject."""
    return _one(conn, f"SELECT 1 AS found FROM memories WHERE scope = 'room' AND room_id = %s"
                f" AND {CURRENT} AND (norm = %s OR (subject <> '' AND subject = %s))",
                (room, norm, subject)) is not None


_ADMIN_STATES = {
    "current": CURRENT,
    "forgotten": "forgotten_at IS NOT NULL",
    "superseded": "valid_to IS NOT NULL",
    "retracted": "deleted_at IS NOT NULL",
    "all": "TRUE",
}


def admin_list(conn: Conn, *, query: str, state: str, limit: int) -> list[Row]:
    """``chat.memory_store.admin_list`` on PostgreSQL (``strpos``: a substring, no pattern)."""
    where = _ADMIN_STATES[state]
    return _all(conn,
                "SELECT m.*, COALESCE(u.name, '') AS author_name,"
                " COALESCE(r.name, '') AS room_name"
                " FROM memories AS m LEFT JOIN users AS u ON u.id = m.author_id"
                " LEFT JOIN chat_rooms AS r ON r.id = m.room_id"
                f" WHERE {where} AND strpos(m.norm, %s) > 0 ORDER BY m.id DESC LIMIT %s",
                (normalize(query), limit))
