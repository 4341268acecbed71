"""The durable outbox of replies: pure functions over the ``outbox`` table.

Every function takes the ``sqlite_utils.Database`` first, so it runs through
``await store.run(fn, ...)`` (or, for ``enqueue_replies``, inside another store function's
transaction). Times are wall-clock seconds (``time.time()``) passed in by the caller.

Row life: ``pending`` --(mark_sent)--> ``sent``; ``pending`` --(mark_failed)--> ``failed``
--(retry_failed, an admin action)--> ``pending``. Rows are never deleted here, so a reply key
is never posted twice. A reply longer than ``max_chars`` becomes chunk rows keyed
``<reply_key>#0``, ``<reply_key>#1`` ... (reply keys should not themselves end in ``#<n>``).
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
import sqlite_utils

from .mattermost.split import split_message
from .messages import ChannelId, PostId, SendReply

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
STATUSES = (PENDING, SENT, FAILED)

_COLUMNS = (
    "id, reply_key, channel_id, root_id, trigger_post_id, message, pending_post_id, status, "
    "attempts, created_at, first_attempt_at, last_attempt_at, next_attempt_at, sent_at, "
    "mm_post_id, last_error"
)


@attrs.frozen
class AnswerClock:
    """A live question's time in this process: ``received_at``, the trio time its frame
    arrived; ``chat_s``, the seconds its ChatService took. The runtime added
    (the reply's POST written to the server's socket - ``received_at`` - ``chat_s``); the
    server's own handling of that POST is not the runtime's."""

    received_at: float
    chat_s: float

    def added_s(self, now: float) -> float:
        return max(0.0, now - self.received_at - self.chat_s)


@attrs.frozen(kw_only=True)
class OutboxRow:
    """One post to make (a whole reply, or one chunk of a long one)."""

    id: int
    reply_key: str
    channel_id: ChannelId
    message: str
    pending_post_id: str
    root_id: PostId | None = None
    trigger_post_id: PostId | None = None
    status: str = PENDING
    attempts: int = 0
    created_at: float = 0.0
    first_attempt_at: float | None = None
    last_attempt_at: float | None = None
    next_attempt_at: float = 0.0
    sent_at: float | None = None
    mm_post_id: str | None = None
    last_error: str | None = None
    # not a column: the commit that created the row also recorded its first attempt
    # (``premark_attempt``) and nobody has posted it yet; the sender then posts it without
    # marking again. Rows read back from the table never carry it.
    marked_unsent: bool = attrs.field(default=False, eq=False)
    # not a column: the live question's clock, from the handler's commit to the sender, which
    # counts the latency the runtime added once the POST is answered; rows read back: None
    clock: AnswerClock | None = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def from_db(cls, row: dict[str, Any]) -> OutboxRow:
        return cls(**row)


def enqueue_replies(
    db: sqlite_utils.Database,
    replies: Sequence[SendReply],
    *,
    max_chars: int,
    now: float | None = None,
) -> list[int]:
    """Insert the rows of ``replies`` unless their reply key is already there; idempotent.

    Safe inside a caller's transaction (it uses a savepoint, which commits on its own only
    when no transaction is open).

    Returns:
        The row ids of every given reply, new or already present, in posting order.
    """
    now = time.time() if now is None else now
    ids: list[int] = []
    with _savepoint(db.conn, "outbox_enqueue"):
        for reply in replies:
            existing = _row_ids_of(db.conn, reply.reply_key)
            if existing:
                ids.extend(existing)
                continue
            chunks = split_message(reply.message, max_chars)
            keys = (
                [reply.reply_key]
                if len(chunks) == 1
                else [f"{reply.reply_key}#{n}" for n in range(len(chunks))]
            )
            for key, chunk in zip(keys, chunks, strict=True):
                cursor = db.conn.execute(
                    "INSERT INTO outbox (reply_key, channel_id, root_id, trigger_post_id, "
                    "message, pending_post_id, status, created_at, next_attempt_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(reply_key) DO NOTHING",
                    (key, reply.channel_id, reply.root_id, reply.trigger_post_id, chunk,
                     uuid.uuid4().hex, PENDING, now, now),
                )
                if cursor.rowcount == 1 and cursor.lastrowid is not None:
                    ids.append(cursor.lastrowid)
    return ids


def _row_ids_of(conn: sqlite3.Connection, reply_key: str) -> list[int]:
    """Ids of the rows of one reply: the key itself, or its ``#<n>`` chunks."""
    chunk = re.compile(re.escape(reply_key) + r"#\d+")
    rows = conn.execute(
        "SELECT id, reply_key FROM outbox WHERE reply_key = ? "
        "OR (reply_key >= ? AND reply_key < ?) ORDER BY id",
        (reply_key, reply_key + "#", reply_key + "$"),
    ).fetchall()
    return [row_id for row_id, key in rows if key == reply_key or chunk.fullmatch(key)]


@contextmanager
def _savepoint(conn: sqlite3.Connection, name: str) -> Iterator[None]:
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


def load_pending(
    db: sqlite_utils.Database, *, ids: Sequence[int] | None = None
) -> list[OutboxRow]:
    """Pending rows (all of them, or those among ``ids``) in id order: per channel FIFO."""
    if ids is None:
        query = db.query(
            f"SELECT {_COLUMNS} FROM outbox WHERE status = ? ORDER BY id", (PENDING,)
        )
        return [OutboxRow.from_db(row) for row in query]
    rows: list[OutboxRow] = []
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), 500):
        batch = wanted[start: start + 500]
        marks = ", ".join("?" * len(batch))
        query = db.query(
            f"SELECT {_COLUMNS} FROM outbox WHERE status = ? AND id IN ({marks}) ORDER BY id",
            (PENDING, *batch),
        )
        rows.extend(OutboxRow.from_db(row) for row in query)
    return rows


def get_row(db: sqlite_utils.Database, row_id: int) -> OutboxRow | None:
    rows = list(db.query(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (row_id,)))
    return OutboxRow.from_db(rows[0]) if rows else None


def mark_attempt(db: sqlite_utils.Database, row_id: int, *, now: float) -> None:
    """Record that a send is about to start (before the network call, so a crash mid-send
    leaves ``attempts > 0`` and the next run checks for the post before posting again)."""
    db.conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, "
        "first_attempt_at = COALESCE(first_attempt_at, ?), last_attempt_at = ? WHERE id = ?",
        (now, now, row_id),
    )


def premark_attempt(db: sqlite_utils.Database, row: OutboxRow, *, now: float) -> OutboxRow:
    """``mark_attempt`` for a row never attempted (in the transaction that wrote it), the row as
    it is now with ``marked_unsent``; a row attempted before is returned unchanged."""
    if row.attempts:
        return row
    mark_attempt(db, row.id, now=now)
    return attrs.evolve(row, attempts=1, first_attempt_at=now, last_attempt_at=now,
                        marked_unsent=True)


def mark_retry(
    db: sqlite_utils.Database, row_id: int, *, next_attempt_at: float, error: str
) -> None:
    """A transient failure: keep the row pending, not before ``next_attempt_at``."""
    db.conn.execute(
        "UPDATE outbox SET next_attempt_at = ?, last_error = ? WHERE id = ? AND status = ?",
        (next_attempt_at, error[:500], row_id, PENDING),
    )


def mark_sent(db: sqlite_utils.Database, row_id: int, *, mm_post_id: str, now: float) -> None:
    db.conn.execute(
        "UPDATE outbox SET status = ?, mm_post_id = ?, sent_at = ? WHERE id = ?",
        (SENT, mm_post_id, now, row_id),
    )


def mark_failed(db: sqlite_utils.Database, row_id: int, *, error: str) -> None:
    """A permanent error (400/403/404): stop trying until an admin retries the row."""
    db.conn.execute(
        "UPDATE outbox SET status = ?, last_error = ? WHERE id = ? AND status = ?",
        (FAILED, error[:500], row_id, PENDING),
    )


def retry_failed(db: sqlite_utils.Database, row_id: int, *, now: float) -> bool:
    """Admin action: put a failed row back in the queue (same ``pending_post_id``).

    ``attempts`` and ``first_attempt_at`` are kept, so the sender still looks for an earlier
    copy of the post before posting (a 403 can follow a post whose response was lost).

    Returns:
        Whether a failed row was found and requeued.
    """
    cursor = db.conn.execute(
        "UPDATE outbox SET status = ?, next_attempt_at = ? WHERE id = ? AND status = ?",
        (PENDING, now, row_id, FAILED),
    )
    return cursor.rowcount == 1


def status_counts(db: sqlite_utils.Database) -> dict[str, int]:
    """Rows per status (every status present, zero when empty)."""
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in db.conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status"):
        counts[str(status)] = int(count)
    return counts


def oldest_pending_age_s(db: sqlite_utils.Database, *, now: float) -> float | None:
    """Seconds since the oldest pending row was enqueued (None when nothing is pending)."""
    (oldest,) = db.conn.execute(
        "SELECT MIN(created_at) FROM outbox WHERE status = ?", (PENDING,)
    ).fetchone()
    return None if oldest is None else max(0.0, now - float(oldest))


def mark_delivered_elsewhere(db: sqlite_utils.Database, reply_key: str, *, how: str,
                             now: float | None = None) -> int:
    """Record a reply's pending rows as sent without a REST post (e.g. answered in a webhook's
    HTTP response), so the sender never posts them. ``how`` is kept in ``last_error`` as
    ``delivered: <how>`` (the table has no separate note column); ``mm_post_id`` stays NULL.

    Returns:
        How many rows were marked.
    """
    now = time.time() if now is None else now
    marked = 0
    for row_id in _row_ids_of(db.conn, reply_key):
        marked += db.conn.execute(
            "UPDATE outbox SET status = ?, sent_at = ?, last_error = ? WHERE id = ? AND status = ?",
            (SENT, now, f"delivered: {how}"[:500], row_id, PENDING),
        ).rowcount
    return marked


def summary(db: sqlite_utils.Database, *, now: float | None = None) -> dict[str, object]:
    """Counts by status plus the oldest pending row's age, for health and metrics."""
    now = time.time() if now is None else now
    out: dict[str, object] = dict(status_counts(db))
    out["oldest_pending_age_s"] = oldest_pending_age_s(db, now=now)
    return out
