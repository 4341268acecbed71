"""Versioned memories: stored masked, never overwritten, forgotten softly, every change audited.

Synchronous (run in the embedded service's database thread, inside its transaction).

A memory row is one *version*. ``save_memory`` decides, for a new text in a place (a room for
room memories, an owner for personal ones):

- ``unchanged``: the place's current memories already hold exactly this text: nothing changes;
- ``superseded``: a current memory of the same place has the same subject (``chat.subject``):
  the new version is inserted, the old one gets ``valid_to`` and ``superseded_by`` and leaves
  the search index, but stays in the table with who wrote it, where and when;
- ``added``: otherwise, a new memory beside the others.

Current = ``valid_to IS NULL AND forgotten_at IS NULL AND deleted_at IS NULL``; only current
memories are in the search index. ``deleted_at`` marks a memory whose source post was deleted
(retracted); ``forgotten_at``/``forgotten_by`` a ``/forget``, which an admin may undo. Every
creation, supersession, retraction, forget and restore appends a ``memory_audit`` row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .analysis import normalize
from .masking import mask_for_storage
from .protocol import MemoryRecord
from .search import index_memory, memory_from_row, unindex_memory
from .subject import subject_of

CURRENT = "valid_to IS NULL AND forgotten_at IS NULL AND deleted_at IS NULL"
ADDED, SUPERSEDED, UNCHANGED = "added", "superseded", "unchanged"


def tidy(text: str) -> str:
    """Runs of spaces and tabs collapsed, lines stripped, outer blank lines dropped."""
    return "\n".join(" ".join(line.split()) for line in text.strip().splitlines())


def audit(conn: sqlite3.Connection, memory_id: int, action: str, *, actor: str | None,
          now_ms: int, detail: str = "") -> None:
    conn.execute("INSERT INTO memory_audit (memory_id, action, actor, at, detail)"
                 " VALUES (?, ?, ?, ?, ?)", (memory_id, action, actor or "", now_ms, detail))


def _place(scope: str, room: str | None, owner: str | None) -> tuple[str, tuple[object, ...]]:
    if scope == "personal":
        return "scope = 'personal' AND owner_id = ?", (owner,)
    return "scope = ? AND room_id = ?", (scope, room)


def get_memory(conn: sqlite3.Connection, memory_id: int, *,
               current: bool = True) -> sqlite3.Row | None:
    """The memory ``memory_id``; with ``current`` only while it is current."""
    where = f" AND {CURRENT}" if current else ""
    row: sqlite3.Row | None = conn.execute(
        f"SELECT * FROM memories WHERE id = ?{where}", (memory_id,)).fetchone()
    return row


def save_memory(
    conn: sqlite3.Connection, content: str, *, scope: str, kind: str, room: str | None,
    owner: str | None, author: str | None, source_post_id: str | None, permalink: str | None,
    now_ms: int, window_key: str | None = None, supersedes: int | None = None,
) -> tuple[MemoryRecord, str]:
    """Store ``content`` (masked) as a memory; ``(memory, outcome)``, see the module doc.

    Args:
        window_key: a summary's window: a new summary of the same window supersedes the old.
        supersedes: the id of a current memory this one replaces whatever its subject (the
            memory of a post that was edited).
    """
    content = tidy(mask_for_storage(content))
    norm = normalize(content)
    subject = "" if kind == "summary" else subject_of(content)
    place, args = _place(scope, room, owner)
    same = conn.execute(
        f"SELECT * FROM memories WHERE {CURRENT} AND {place} AND norm = ? ORDER BY id LIMIT 1",
        (*args, norm)).fetchone()
    if same is not None and (window_key is None or same["window_key"] == window_key):
        return memory_from_row(same), UNCHANGED
    old: sqlite3.Row | None = None
    if supersedes is not None:
        old = get_memory(conn, supersedes)
    elif window_key is not None:
        old = conn.execute(f"SELECT * FROM memories WHERE {CURRENT} AND room_id = ?"
                           " AND window_key = ?", (room, window_key)).fetchone()
    elif subject:
        old = conn.execute(
            f"SELECT * FROM memories WHERE {CURRENT} AND {place} AND subject = ?"
            " AND kind != 'summary' ORDER BY valid_from DESC, id DESC LIMIT 1",
            (*args, subject)).fetchone()
    if old is not None:  # leaves the current set first (the window index is unique)
        conn.execute("UPDATE memories SET valid_to = ? WHERE id = ?", (now_ms, old["id"]))
        unindex_memory(conn, old["id"])
    cur = conn.execute(
        "INSERT INTO memories (content, norm, subject, scope, kind, room_id, owner_id,"
        " author_id, source_post_id, permalink, window_key, created_at, updated_at,"
        " valid_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (content, norm, subject, scope, kind, room, owner, author, source_post_id, permalink,
         window_key, now_ms, now_ms, now_ms))
    memory_id = int(cur.lastrowid or 0)
    audit(conn, memory_id, "created", actor=author, now_ms=now_ms)
    if old is not None:
        conn.execute("UPDATE memories SET superseded_by = ? WHERE id = ?", (memory_id, old["id"]))
        audit(conn, old["id"], "superseded", actor=author, now_ms=now_ms,
              detail=f"by m{memory_id}")
    index_memory(conn, memory_id, content, scope=scope, room=room, owner=owner)
    row = get_memory(conn, memory_id)
    assert row is not None  # written just above, in the same transaction
    return memory_from_row(row), SUPERSEDED if old is not None else ADDED


def retract_memory(conn: sqlite3.Connection, memory_id: int, now_ms: int, *,
                   reason: str) -> None:
    """Mark a memory whose source is gone (its post deleted or edited into something else)."""
    cur = conn.execute("UPDATE memories SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
                       (now_ms, memory_id))
    if cur.rowcount:
        unindex_memory(conn, memory_id)
        audit(conn, memory_id, "retracted", actor=None, now_ms=now_ms, detail=reason)


def forget_memory(conn: sqlite3.Connection, memory_id: int, *, actor: str,
                  now_ms: int) -> bool:
    """Mark ``memory_id`` forgotten (answers never use it); False if it already was."""
    cur = conn.execute("UPDATE memories SET forgotten_at = ?, forgotten_by = ? WHERE id = ?"
                       " AND forgotten_at IS NULL", (now_ms, actor, memory_id))
    if not cur.rowcount:
        return False
    unindex_memory(conn, memory_id)
    audit(conn, memory_id, "forgotten", actor=actor, now_ms=now_ms)
    return True


def restore_memory(conn: sqlite3.Connection, memory_id: int, *, actor: str,
                   now_ms: int) -> bool:
    """Undo a forget (an admin's); False when the memory is not forgotten."""
    cur = conn.execute("UPDATE memories SET forgotten_at = NULL, forgotten_by = NULL"
                       " WHERE id = ? AND forgotten_at IS NOT NULL", (memory_id,))
    if not cur.rowcount:
        return False
    row = get_memory(conn, memory_id)
    if row is not None:
        index_memory(conn, memory_id, row["content"], scope=row["scope"], room=row["room_id"],
                     owner=row["owner_id"])
    audit(conn, memory_id, "restored", actor=actor, now_ms=now_ms)
    return True


def versions(conn: sqlite3.Connection, memory_id: int) -> list[sqlite3.Row]:
    """Every version of ``memory_id``'s subject chain, oldest first (forgotten ones included)."""
    return conn.execute(
        "WITH RECURSIVE back(id) AS (SELECT ? UNION SELECT m.id FROM memories AS m"
        " JOIN back ON m.superseded_by = back.id),"
        " fwd(id) AS (SELECT ? UNION SELECT m.superseded_by FROM memories AS m"
        " JOIN fwd ON m.id = fwd.id WHERE m.superseded_by IS NOT NULL)"
        " SELECT m.*, COALESCE(u.name, '') AS author_name, COALESCE(r.name, '') AS room_name"
        " FROM memories AS m LEFT JOIN users AS u ON u.id = m.author_id"
        " LEFT JOIN chat_rooms AS r ON r.id = m.room_id"
        " WHERE m.id IN (SELECT id FROM back UNION SELECT id FROM fwd)"
        " ORDER BY m.valid_from, m.id", (memory_id, memory_id)).fetchall()


def previous_version(conn: sqlite3.Connection, memory_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM memories WHERE superseded_by = ? AND forgotten_at IS NULL"
        " AND deleted_at IS NULL", (memory_id,)).fetchone()
    return row


def audit_trail(conn: sqlite3.Connection, memory_id: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM memory_audit WHERE memory_id = ? ORDER BY id",
                        (memory_id,)).fetchall()


def memories_from_post(conn: sqlite3.Connection, post_id: str) -> list[sqlite3.Row]:
    """The current memories whose source is ``post_id``."""
    return conn.execute(f"SELECT * FROM memories WHERE source_post_id = ? AND {CURRENT}",
                        (post_id,)).fetchall()


def twins(conn: sqlite3.Connection, row: sqlite3.Row, user: str) -> list[sqlite3.Row]:
    """The other current copies of a memory ``user`` stored with /remember (room <-> personal)."""
    if row["scope"] == "room":
        sql = "scope = 'personal' AND owner_id = ?"
        args: tuple[object, ...] = (user,)
    else:
        sql = "scope = 'room' AND room_id = ? AND author_id = ?"
        args = (row["room_id"], user)
    return conn.execute(
        f"SELECT * FROM memories WHERE {CURRENT} AND norm = ? AND id != ? AND {sql}",
        (row["norm"], row["id"], *args)).fetchall()


def room_has_current(conn: sqlite3.Connection, room: str, norm: str, subject: str) -> bool:
    """Whether the room has a current memory of this normalized text or of this subject."""
    return conn.execute(
        f"SELECT 1 FROM memories WHERE scope = 'room' AND room_id = ? AND {CURRENT}"
        " AND (norm = ? OR (subject != '' AND subject = ?))", (room, norm, subject)
    ).fetchone() is not None


def recent_room_memories(conn: sqlite3.Connection, room: str, limit: int) -> list[MemoryRecord]:
    rows = conn.execute(
        f"SELECT * FROM memories WHERE room_id = ? AND scope = 'room' AND {CURRENT}"
        " ORDER BY valid_from DESC, id DESC LIMIT ?", (room, limit)).fetchall()
    return [memory_from_row(r) for r in rows]


_ADMIN_STATES = {
    "current": CURRENT,
    "forgotten": "forgotten_at IS NOT NULL",
    "superseded": "valid_to IS NOT NULL",
    "retracted": "deleted_at IS NOT NULL",
    "all": "1 = 1",
}


def admin_list(conn: sqlite3.Connection, *, query: str, state: str,
               limit: int) -> list[sqlite3.Row]:
    """Memories for the admin view, newest first: ``state`` is current, forgotten, superseded,
    retracted or all; ``query`` a case-insensitive substring of the text ('' for any)."""
    where = _ADMIN_STATES[state]
    return conn.execute(
        "SELECT m.*, COALESCE(u.name, '') AS author_name, COALESCE(r.name, '') AS room_name"
        " FROM memories AS m LEFT JOIN users AS u ON u.id = m.author_id"
        " LEFT JOIN chat_rooms AS r ON r.id = m.room_id"
        f" WHERE {where} AND instr(m.norm, ?) > 0 ORDER BY m.id DESC LIMIT ?",
        (normalize(query), limit)).fetchall()


def find_memories(conn: sqlite3.Connection, ids: Sequence[int]) -> list[sqlite3.Row]:
    marks = ",".join("?" * len(ids))
    return conn.execute(f"SELECT * FROM memories WHERE id IN ({marks})", list(ids)).fetchall()


__all__ = [
    "ADDED", "CURRENT", "SUPERSEDED", "UNCHANGED", "admin_list", "audit", "audit_trail",
    "find_memories",
    "forget_memory", "get_memory", "memories_from_post", "previous_version",
    "recent_room_memories", "restore_memory", "room_has_current", "retract_memory",
    "save_memory", "tidy", "twins",
    "versions",
]
