"""The outbox on PostgreSQL: ``repository.OutboxRepo`` with the promises of ``outbox.py``.

Every method takes the psycopg connection ``PgDatabase.run`` lends (inside its transaction)
first. Row life, chunk keys (``<reply_key>#<n>``) and times are those of ``outbox.py``; the rows
are the same ``outbox.OutboxRow``.

What differs from SQLite, and why:

- SQLite has one writer, PostgreSQL has several transactions at once (replicas, the pool). A
  reply enqueued by two transactions together is still ONE row set: the second one's
  ``INSERT ... ON CONFLICT DO NOTHING`` waits for the first to commit, finds the key taken,
  rolls its own rows of that reply back (a savepoint) and answers with the committed rows' ids
  (READ COMMITTED, the pool's default: the next statement sees them). Under REPEATABLE READ the
  server raises a serialization failure instead, which ``PgDatabase.run`` reports as
  ``StoreUnavailable`` (retry).
- A reply's chunk rows are found by their exact keys (``= ANY``), not by a range of text
  (``>= key#`` ``< key$``): a range over text follows the database's collation, and in a
  non-C collation ``#`` and ``$`` do not sort by code point.
- ``id`` order is the order in which rows were inserted, not committed: per-channel FIFO holds
  because one transaction at a time writes a channel's replies (its lane, and across replicas
  its lease).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import attrs
import psycopg
from psycopg.rows import dict_row

from ..mattermost.split import split_message
from ..messages import SendReply
from ..outbox import FAILED, PENDING, SENT, STATUSES, OutboxRow

Conn = psycopg.Connection[Any]

_COLUMNS = (
    "id, reply_key, channel_id, root_id, trigger_post_id, message, pending_post_id, status, "
    "attempts, created_at, first_attempt_at, last_attempt_at, next_attempt_at, sent_at, "
    "mm_post_id, last_error"
)
_CHUNK_BATCH = 100  # chunk keys looked up per query when finding a reply's rows


class _TakenMeanwhile(Exception):
    """Another transaction committed this reply's key while ours was inserting it."""


def _rows(conn: Conn, sql: str, args: Sequence[object]) -> list[OutboxRow]:
    with conn.cursor(row_factory=dict_row) as cur:
        return [OutboxRow.from_db(row) for row in cur.execute(sql, args).fetchall()]


@attrs.frozen
class PgOutbox:
    """``repository.OutboxRepo`` on PostgreSQL."""

    def enqueue_replies(self, conn: Conn, replies: Sequence[SendReply], *, max_chars: int,
                        now: float | None = None) -> list[int]:
        """Insert the rows of ``replies`` unless their reply key is already there; idempotent,
        also against a concurrent transaction enqueuing the same reply.

        Returns:
            The row ids of every given reply, new or already present, in posting order.
        """
        now = time.time() if now is None else now
        ids: list[int] = []
        with conn.transaction():
            for reply in replies:
                existing = self.row_ids_of(conn, reply.reply_key)
                if existing:
                    ids.extend(existing)
                    continue
                try:
                    ids.extend(self._insert_reply(conn, reply, max_chars, now))
                except _TakenMeanwhile:
                    ids.extend(self.row_ids_of(conn, reply.reply_key))
        return ids

    def _insert_reply(self, conn: Conn, reply: SendReply, max_chars: int, now: float
                      ) -> list[int]:
        chunks = split_message(reply.message, max_chars)
        keys = ([reply.reply_key] if len(chunks) == 1
                else [f"{reply.reply_key}#{n}" for n in range(len(chunks))])
        ids: list[int] = []
        with conn.transaction():  # a savepoint: all of this reply's rows, or none
            for key, chunk in zip(keys, chunks, strict=True):
                row = conn.execute(
                    "INSERT INTO outbox (reply_key, channel_id, root_id, trigger_post_id, "
                    "message, pending_post_id, status, created_at, next_attempt_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (reply_key) DO NOTHING RETURNING id",
                    (key, reply.channel_id, reply.root_id, reply.trigger_post_id, chunk,
                     uuid.uuid4().hex, PENDING, now, now),
                ).fetchone()
                if row is None:
                    raise _TakenMeanwhile(key)
                ids.append(int(row[0]))
        return ids

    def row_ids_of(self, conn: Conn, reply_key: str) -> list[int]:
        """Ids of the rows of one reply (the key itself, or its ``#<n>`` chunks), in id order."""
        found: list[int] = []
        start = 0
        while True:
            keys = [f"{reply_key}#{n}" for n in range(start, start + _CHUNK_BATCH)]
            if start == 0:
                keys.append(reply_key)
            rows = conn.execute("SELECT id, reply_key FROM outbox WHERE reply_key = ANY(%s)",
                                (keys,)).fetchall()
            found.extend(int(row[0]) for row in rows)
            chunks = sum(1 for row in rows if row[1] != reply_key)
            if chunks < _CHUNK_BATCH:
                return sorted(found)
            start += _CHUNK_BATCH

    def load_pending(self, conn: Conn, *, ids: Sequence[int] | None = None
                     ) -> list[OutboxRow]:
        """Pending rows (all of them, or those among ``ids``) in id order: per channel FIFO."""
        if ids is None:
            return _rows(conn, f"SELECT {_COLUMNS} FROM outbox WHERE status = %s ORDER BY id",
                         (PENDING,))
        if not ids:
            return []
        return _rows(conn, f"SELECT {_COLUMNS} FROM outbox WHERE status = %s AND id = ANY(%s)"
                     " ORDER BY id", (PENDING, sorted(set(ids))))

    def get_row(self, conn: Conn, row_id: int) -> OutboxRow | None:
        rows = _rows(conn, f"SELECT {_COLUMNS} FROM outbox WHERE id = %s", (row_id,))
        return rows[0] if rows else None

    def mark_attempt(self, conn: Conn, row_id: int, *, now: float) -> None:
        conn.execute("UPDATE outbox SET attempts = attempts + 1, first_attempt_at = "
                     "COALESCE(first_attempt_at, %s), last_attempt_at = %s WHERE id = %s",
                     (now, now, row_id))

    def mark_retry(self, conn: Conn, row_id: int, *, next_attempt_at: float, error: str
                   ) -> None:
        conn.execute("UPDATE outbox SET next_attempt_at = %s, last_error = %s "
                     "WHERE id = %s AND status = %s",
                     (next_attempt_at, error[:500], row_id, PENDING))

    def mark_sent(self, conn: Conn, row_id: int, *, mm_post_id: str, now: float) -> None:
        conn.execute("UPDATE outbox SET status = %s, mm_post_id = %s, sent_at = %s "
                     "WHERE id = %s", (SENT, mm_post_id, now, row_id))

    def mark_failed(self, conn: Conn, row_id: int, *, error: str) -> None:
        conn.execute("UPDATE outbox SET status = %s, last_error = %s "
                     "WHERE id = %s AND status = %s", (FAILED, error[:500], row_id, PENDING))

    def retry_failed(self, conn: Conn, row_id: int, *, now: float) -> bool:
        """Admin action: a failed row back in the queue (same ``pending_post_id``)."""
        cur = conn.execute("UPDATE outbox SET status = %s, next_attempt_at = %s "
                           "WHERE id = %s AND status = %s", (PENDING, now, row_id, FAILED))
        return cur.rowcount == 1

    def mark_delivered_elsewhere(self, conn: Conn, reply_key: str, *, how: str,
                                 now: float | None = None) -> int:
        """A reply's pending rows recorded as sent without a REST post; how many."""
        now = time.time() if now is None else now
        ids = self.row_ids_of(conn, reply_key)
        if not ids:
            return 0
        cur = conn.execute("UPDATE outbox SET status = %s, sent_at = %s, last_error = %s "
                           "WHERE id = ANY(%s) AND status = %s",
                           (SENT, now, f"delivered: {how}"[:500], ids, PENDING))
        return cur.rowcount

    def status_counts(self, conn: Conn) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for status, count in conn.execute("SELECT status, COUNT(*) FROM outbox "
                                          "GROUP BY status").fetchall():
            counts[str(status)] = int(count)
        return counts

    def oldest_pending_age_s(self, conn: Conn, *, now: float) -> float | None:
        """Seconds since the oldest pending row was enqueued (None when nothing is pending)."""
        row = conn.execute("SELECT MIN(created_at) FROM outbox WHERE status = %s",
                           (PENDING,)).fetchone()
        return None if row is None or row[0] is None else max(0.0, now - float(row[0]))

    def summary(self, conn: Conn, *, now: float | None = None) -> dict[str, object]:
        """Counts by status plus the oldest pending row's age, for health and metrics."""
        now = time.time() if now is None else now
        out: dict[str, object] = dict(self.status_counts(conn))
        out["oldest_pending_age_s"] = self.oldest_pending_age_s(conn, now=now)
        return out
