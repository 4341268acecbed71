"""The HTTP surface's read-side and admin queries on PostgreSQL: the twins of
``http.outbox_admin``'s functions and of ``retry_queue.health`` (same arguments, same results),
on the connection ``PgDatabase.run`` lends. ``pg.store.PgStore`` runs them where the HTTP
surface asks for the SQLite ones."""

from __future__ import annotations

import time
from typing import Any

import attrs
from psycopg.rows import dict_row

from ..retry_queue import PENDING
from .outbox_repo import Conn, PgOutbox
from .repos import PgState

_LIST_COLUMNS = ("id, reply_key, channel_id, root_id, trigger_post_id, message, status, "
                 "attempts, created_at, last_attempt_at, next_attempt_at, sent_at, last_error")


@attrs.frozen
class PgAdmin:
    outbox: PgOutbox = attrs.field(factory=PgOutbox)
    state: PgState = attrs.field(factory=PgState)

    def list_rows(self, conn: Conn, status: str, *, limit: int) -> list[dict[str, Any]]:
        """The oldest ``limit`` outbox rows with ``status`` (pending: in sending order)."""
        with conn.cursor(row_factory=dict_row) as cur:
            return list(cur.execute(f"SELECT {_LIST_COLUMNS} FROM outbox WHERE status = %s "
                                    "ORDER BY id LIMIT %s", (status, limit)).fetchall())

    def overview(self, conn: Conn, *, now: float | None = None) -> dict[str, Any]:
        """Counts by status, and the oldest pending row's age in seconds (None when empty)."""
        now = time.time() if now is None else now
        return {"counts": self.outbox.status_counts(conn),
                "oldest_pending_age_s": self.outbox.oldest_pending_age_s(conn, now=now)}

    def retry(self, conn: Conn, row_id: int, *, remote_addr: str) -> str:
        """Requeue a failed row and audit it, in one transaction (the row locked, so two
        replicas' admins racing do it once). ``requeued``, ``not_found`` or the status."""
        with conn.transaction():
            found = conn.execute("SELECT status FROM outbox WHERE id = %s FOR UPDATE",
                                 (row_id,)).fetchone()
            row = self.outbox.get_row(conn, row_id)
            if found is None or row is None:
                return "not_found"
            if not self.outbox.retry_failed(conn, row_id, now=time.time()):
                return row.status
            self.state.audit(conn, actor="admin", action="outbox.retry", target=str(row_id),
                             detail=f"channel {row.channel_id}, reply {row.reply_key}",
                             remote_addr=remote_addr)
        return "requeued"

    def recent_audit(self, conn: Conn, *, limit: int) -> list[dict[str, Any]]:
        with conn.cursor(row_factory=dict_row) as cur:
            return list(cur.execute("SELECT id, at, actor, action, target, detail, remote_addr "
                                    "FROM audit_log ORDER BY id DESC LIMIT %s",
                                    (limit,)).fetchall())

    def retry_health(self, conn: Conn, *, now: float | None = None) -> dict[str, Any]:
        """The retry queue's pending rows, channels waiting, oldest pending row's age."""
        now = time.time() if now is None else now
        row = conn.execute("SELECT COUNT(*), COUNT(DISTINCT channel_id), MIN(created_at) "
                           "FROM mchat_retry WHERE status = %s", (PENDING,)).fetchone()
        n, channels, oldest = row if row is not None else (0, 0, None)
        return {"pending": int(n), "channels": int(channels),
                "oldest_pending_age_s": None if oldest is None
                else round(max(0.0, now - float(oldest)), 3)}
