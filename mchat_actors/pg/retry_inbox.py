"""The durable retry queue (``mchat_retry``) and the webhook inbox (``webhook_inbox``) on
PostgreSQL: the functions of ``retry_queue.py`` and ``webhook_inbox.py`` with the same promises,
on the connection ``PgDatabase.run`` lends, and ``PgRetryQueue``, the dispatcher's
``retry_queue.RetryQueue`` over a ``PgDatabase``.

Events are encoded as on SQLite (``retry_queue.encode_event``/``event_key``), so a parked
event means the same on both backends. Parking is idempotent on the event key also against a
concurrent transaction (``ON CONFLICT DO NOTHING`` waits for it). The admin actions lock the
row (``FOR UPDATE``) so a retry-now and a discard racing on two replicas do one thing each.
"""

from __future__ import annotations

import time
from typing import Any

import attrs
import orjson
from psycopg.rows import dict_row

from ..messages import ChannelId, InboundEvent, Post, PostCreated, channel_of
from ..retry_queue import DISCARDED, PENDING, ParkedEvent, decode_event, encode_event, event_key
from .database import PgDatabase
from .outbox_repo import Conn
from .repos import PgPosts, PgState


def _post_id(event: InboundEvent) -> str | None:
    post = getattr(event, "post", None)
    return str(post.id) if isinstance(post, Post) else None


@attrs.frozen
class PgRetryRows:
    """The SQL of the retry queue (``retry_queue``'s functions)."""

    posts: PgPosts = attrs.field(factory=PgPosts)
    state: PgState = attrs.field(factory=PgState)

    def park(self, conn: Conn, event: InboundEvent, *, attempts: int, error: str,
             next_attempt_at: float, now: float) -> bool:
        """Append ``event`` to its channel's queue unless it is there already. True if added."""
        kind, payload = encode_event(event)
        cur = conn.execute(
            "INSERT INTO mchat_retry (channel_id, event_key, kind, post_id, payload, status,"
            " attempts, next_attempt_at, last_error, created_at, updated_at) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_key) DO NOTHING",
            (str(channel_of(event)), event_key(event), kind, _post_id(event), payload, PENDING,
             attempts, next_attempt_at, error[:500], now, now))
        return cur.rowcount == 1

    def parked_channels(self, conn: Conn) -> list[str]:
        return [str(r[0]) for r in conn.execute(
            "SELECT DISTINCT channel_id FROM mchat_retry WHERE status = %s ORDER BY channel_id",
            (PENDING,))]

    def head(self, conn: Conn, channel_id: str) -> ParkedEvent | None:
        row = conn.execute(
            "SELECT id, channel_id, kind, payload, attempts, next_attempt_at, last_error"
            " FROM mchat_retry WHERE status = %s AND channel_id = %s ORDER BY id LIMIT 1",
            (PENDING, channel_id)).fetchone()
        if row is None:
            return None
        return ParkedEvent(id=int(row[0]), channel_id=ChannelId(row[1]),
                           event=decode_event(row[2], row[3]), attempts=int(row[4]),
                           next_attempt_at=float(row[5]), last_error=str(row[6]))

    def record_failure(self, conn: Conn, row_id: int, *, error: str, next_attempt_at: float,
                       now: float) -> None:
        conn.execute("UPDATE mchat_retry SET attempts = attempts + 1, next_attempt_at = %s,"
                     " last_error = %s, updated_at = %s WHERE id = %s AND status = %s",
                     (next_attempt_at, error[:500], now, row_id, PENDING))

    def remove(self, conn: Conn, row_id: int) -> None:
        conn.execute("DELETE FROM mchat_retry WHERE id = %s AND status = %s", (row_id, PENDING))

    def listing(self, conn: Conn, *, limit: int = 200) -> list[dict[str, Any]]:
        """Pending and discarded rows for the admin API: no message text."""
        with conn.cursor(row_factory=dict_row) as cur:
            return list(cur.execute(
                "SELECT id, channel_id, kind, post_id, status, attempts, next_attempt_at,"
                " last_error, created_at, updated_at FROM mchat_retry"
                " ORDER BY status DESC, channel_id, id LIMIT %s", (limit,)).fetchall())

    def counts(self, conn: Conn) -> dict[str, int]:
        out = {PENDING: 0, DISCARDED: 0}
        for status, n in conn.execute("SELECT status, COUNT(*) FROM mchat_retry"
                                      " GROUP BY status").fetchall():
            out[str(status)] = int(n)
        return out

    def retry_now(self, conn: Conn, row_id: int, *, remote_addr: str,
                  now: float | None = None) -> str:
        """Admin: try this pending row at once. ``requeued``, ``not_found``, ``already <s>``."""
        now = time.time() if now is None else now
        with conn.transaction():
            row = conn.execute("SELECT status, channel_id, post_id FROM mchat_retry"
                               " WHERE id = %s FOR UPDATE", (row_id,)).fetchone()
            if row is None:
                return "not_found"
            if row[0] != PENDING:
                return f"already {row[0]}"
            conn.execute("UPDATE mchat_retry SET next_attempt_at = %s, updated_at = %s"
                         " WHERE id = %s", (now, now, row_id))
            self.state.audit(conn, actor="admin", action="retry_queue.retry",
                             target=str(row_id), detail=f"channel {row[1]}, post {row[2] or '-'}",
                             remote_addr=remote_addr)
        return "requeued"

    def discard(self, conn: Conn, row_id: int, *, remote_addr: str,
                now: float | None = None) -> str:
        """Admin: give up on a pending row; its post is recorded handled (``discarded``)
        without moving the cursor. ``discarded``, ``not_found`` or ``already <status>``."""
        now = time.time() if now is None else now
        with conn.transaction():
            row = conn.execute("SELECT status, channel_id, post_id, kind, payload"
                               " FROM mchat_retry WHERE id = %s FOR UPDATE",
                               (row_id,)).fetchone()
            if row is None:
                return "not_found"
            if row[0] != PENDING:
                return f"already {row[0]}"
            conn.execute("UPDATE mchat_retry SET status = %s, updated_at = %s WHERE id = %s",
                         (DISCARDED, now, row_id))
            event = decode_event(row[3], row[4])
            if isinstance(event, PostCreated):
                self.posts.record_post(conn, event.post, status="discarded",
                                       source=event.source, move_cursor=False)
            self.state.audit(conn, actor="admin", action="retry_queue.discard",
                             target=str(row_id), detail=f"channel {row[1]}, post {row[2] or '-'}",
                             remote_addr=remote_addr)
        return "discarded"


@attrs.frozen
class PgRetryQueue:
    """``retry_queue.RetryQueue`` over PostgreSQL (each call its own transaction)."""

    db: PgDatabase
    rows: PgRetryRows = attrs.field(factory=PgRetryRows)

    async def park(self, event: InboundEvent, *, attempts: int, error: str,
                   next_attempt_at: float) -> bool:
        return await self.db.run(self.rows.park, event, attempts=attempts, error=error,
                                 next_attempt_at=next_attempt_at, now=time.time())

    async def channels(self) -> list[str]:
        return await self.db.run(self.rows.parked_channels)

    async def head(self, channel_id: str) -> ParkedEvent | None:
        return await self.db.run(self.rows.head, channel_id)

    async def failed(self, row_id: int, *, error: str, next_attempt_at: float) -> None:
        await self.db.run(self.rows.record_failure, row_id, error=error,
                          next_attempt_at=next_attempt_at, now=time.time())

    async def done(self, row_id: int) -> None:
        await self.db.run(self.rows.remove, row_id)


@attrs.frozen
class PgWebhookInbox:
    """``webhook_inbox``'s functions: payloads kept until their post is handled."""

    def keep(self, conn: Conn, post_id: str, fields: dict[str, Any], encoding: str, *,
             now: float) -> None:
        """Keep a payload (its ``token`` dropped); a second copy of a post id is ignored."""
        kept = {k: v for k, v in fields.items() if k != "token"}
        conn.execute("INSERT INTO webhook_inbox (post_id, payload, received_at)"
                     " VALUES (%s, %s, %s) ON CONFLICT (post_id) DO NOTHING",
                     (post_id, orjson.dumps({"fields": kept, "encoding": encoding}).decode(),
                      now))

    def pending(self, conn: Conn, *, received_before: float
                ) -> list[tuple[dict[str, Any], str]]:
        """(fields, encoding) of payloads not handled yet, received before the given time,
        oldest first; the handled ones are deleted."""
        conn.execute("DELETE FROM webhook_inbox WHERE post_id IN"
                     " (SELECT post_id FROM mchat_posts)")
        rows = conn.execute("SELECT payload FROM webhook_inbox WHERE received_at < %s"
                            " ORDER BY received_at, post_id", (received_before,)).fetchall()
        out = []
        for (raw,) in rows:
            data = orjson.loads(raw)
            out.append((data["fields"], data["encoding"]))
        return out
