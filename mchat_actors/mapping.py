"""Queries over the runtime's mapping and seen-post tables (run through ``Store.run``).

Every function takes the ``sqlite_utils.Database`` first and is safe to call inside a caller's
transaction. Writes are idempotent (``INSERT ... ON CONFLICT``), so a replayed event or a
restart never creates a second row.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlite_utils

from .messages import Post


def _channel_row(row: dict[str, Any]) -> dict[str, Any]:
    row["sync_enabled"] = bool(row["sync_enabled"])  # SQLite stores 0/1
    return row


def get_channel(db: sqlite_utils.Database, channel_id: str) -> dict[str, Any] | None:
    rows = db.query("SELECT * FROM mchat_channel_mapping WHERE mchat_channel_id = ?",
                    [channel_id])
    row = next(iter(rows), None)
    return None if row is None else _channel_row(row)


def insert_channel(db: sqlite_utils.Database, *, channel_id: str, team_id: str, name: str,
                   display_name: str, channel_type: str, room_id: str) -> dict[str, Any]:
    """Insert a mapping unless one exists; returns the row that is now stored."""
    now = time.time()
    db.conn.execute(
        "INSERT INTO mchat_channel_mapping (mchat_channel_id, mchat_team_id, mchat_channel_name,"
        " mchat_display_name, channel_type, agent_room_id, sync_enabled, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT(mchat_channel_id) DO NOTHING",
        (channel_id, team_id, name, display_name, channel_type, room_id, now, now),
    )
    row = get_channel(db, channel_id)
    assert row is not None
    return row


def set_channel_sync(db: sqlite_utils.Database, channel_id: str, enabled: bool) -> bool:
    """Turn a channel's intake on or off; False when the channel is not mapped."""
    cur = db.conn.execute(
        "UPDATE mchat_channel_mapping SET sync_enabled = ?, updated_at = ? "
        "WHERE mchat_channel_id = ?", (1 if enabled else 0, time.time(), channel_id))
    return cur.rowcount > 0


def list_channels(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [_channel_row(r) for r in db.query("SELECT * FROM mchat_channel_mapping ORDER BY id")]


def get_user(db: sqlite_utils.Database, user_id: str) -> dict[str, Any] | None:
    rows = db.query("SELECT * FROM mchat_user_mapping WHERE mchat_user_id = ?", [user_id])
    return next(iter(rows), None)


def insert_user(db: sqlite_utils.Database, *, user_id: str, username: str, email: str | None,
                agent_user_id: str, matched_by: str) -> dict[str, Any]:
    now = time.time()
    db.conn.execute(
        "INSERT INTO mchat_user_mapping (mchat_user_id, mchat_username, mchat_email,"
        " agent_user_id, matched_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(mchat_user_id) DO NOTHING",
        (user_id, username, email, agent_user_id, matched_by, now, now),
    )
    row = get_user(db, user_id)
    assert row is not None
    return row


def list_users(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM mchat_user_mapping ORDER BY id"))


def is_post_seen(db: sqlite_utils.Database, post_id: str) -> bool:
    row = db.conn.execute("SELECT 1 FROM mchat_posts WHERE post_id = ?", (post_id,)).fetchone()
    return row is not None


def seen_among(db: sqlite_utils.Database, post_ids: Sequence[str]) -> set[str]:
    """The ids of ``post_ids`` handled before (one query for a lane's batch)."""
    if not post_ids:
        return set()
    marks = ", ".join("?" * len(post_ids))
    return {str(r[0]) for r in db.conn.execute(
        f"SELECT post_id FROM mchat_posts WHERE post_id IN ({marks})", tuple(post_ids))}


def record_post(db: sqlite_utils.Database, post: Post, *, status: str, source: str,
                move_cursor: bool = True) -> None:
    """Mark ``post`` handled and move its channel's backfill cursor forward (never back)."""
    db.conn.execute(
        "INSERT INTO mchat_posts (post_id, channel_id, create_at, update_at, status, source,"
        " processed_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(post_id) DO UPDATE SET"
        " update_at = MAX(update_at, excluded.update_at)",
        (post.id, post.channel_id, post.create_at, post.update_at, status, source, time.time()),
    )
    if not move_cursor:
        return
    db.conn.execute(
        "UPDATE mchat_channel_mapping SET last_post_id = ?, last_post_at = ?, updated_at = ?"
        " WHERE mchat_channel_id = ? AND last_post_at <= ?",
        (post.id, post.create_at, time.time(), post.channel_id, post.create_at),
    )


def channel_cursor(db: sqlite_utils.Database, channel_id: str) -> str | None:
    """The id of the channel's last handled post (None: unmapped, or nothing handled yet)."""
    row = db.conn.execute("SELECT last_post_id FROM mchat_channel_mapping"
                          " WHERE mchat_channel_id = ?", (channel_id,)).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def cursors_with_times(db: sqlite_utils.Database) -> list[tuple[str, str | None, float, int]]:
    """(channel id, last handled post id or None, mapping created_at, last handled post's
    create_at in ms) for every mapped channel."""
    return [(r[0], r[1], r[2], int(r[3] or 0)) for r in db.conn.execute(
        "SELECT mchat_channel_id, last_post_id, created_at, last_post_at"
        " FROM mchat_channel_mapping ORDER BY id")]


def cursors(db: sqlite_utils.Database) -> list[tuple[str, str | None, float]]:
    """(channel id, last handled post id or None, mapping created_at) for every mapped channel."""
    return [(r[0], r[1], r[2]) for r in db.conn.execute(
        "SELECT mchat_channel_id, last_post_id, created_at FROM mchat_channel_mapping"
        " ORDER BY id")]

