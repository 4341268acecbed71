"""The mapping area of the runtime's storage: channels to rooms, users to agent users.

Every function takes the ``sqlite_utils.Database`` first and is safe to call inside a caller's
transaction. Writes are idempotent (``INSERT ... ON CONFLICT``), so a replayed event or a
restart never creates a second row.
"""

from __future__ import annotations

import time
from typing import Any

import sqlite_utils


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

