"""Admin views of the outbox and the audit log (store functions: ``db`` first).

Row changes go through ``outbox.py`` (``retry_failed``); this module only adds the read-side
queries the admin API needs, plus the audited retry.
"""

from __future__ import annotations

import time
from typing import Any

import sqlite_utils

from .. import outbox
from ..store import audit, transaction

_LIST_COLUMNS = ("id, reply_key, channel_id, root_id, trigger_post_id, message, status, "
                 "attempts, created_at, last_attempt_at, next_attempt_at, sent_at, last_error")


def list_rows(db: sqlite_utils.Database, status: str, *, limit: int) -> list[dict[str, Any]]:
    """The oldest ``limit`` rows with ``status`` (pending: in sending order)."""
    return list(db.query(f"SELECT {_LIST_COLUMNS} FROM outbox WHERE status = ? "
                         "ORDER BY id LIMIT ?", (status, limit)))


def overview(db: sqlite_utils.Database, *, now: float | None = None) -> dict[str, Any]:
    """Counts by status, and the oldest pending row's age in seconds (None when empty)."""
    now = time.time() if now is None else now
    return {"counts": outbox.status_counts(db),
            "oldest_pending_age_s": outbox.oldest_pending_age_s(db, now=now)}


def retry(db: sqlite_utils.Database, row_id: int, *, remote_addr: str) -> str:
    """Requeue a failed row and audit it, in one transaction.

    Returns:
        ``"requeued"``, ``"not_found"`` or the row's current status when it is not failed.
    """
    with transaction(db.conn):
        row = outbox.get_row(db, row_id)
        if row is None:
            result = "not_found"
        elif outbox.retry_failed(db, row_id, now=time.time()):
            audit(db, actor="admin", action="outbox.retry", target=str(row_id),
                  detail=f"channel {row.channel_id}, reply {row.reply_key}",
                  remote_addr=remote_addr)
            result = "requeued"
        else:
            result = row.status
    return result


def recent_audit(db: sqlite_utils.Database, *, limit: int) -> list[dict[str, Any]]:
    return list(db.query("SELECT id, at, actor, action, target, detail, remote_addr "
                         "FROM audit_log ORDER BY id DESC LIMIT ?", (limit,)))
