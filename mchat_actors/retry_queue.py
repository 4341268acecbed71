"""The durable retry queue of inbound events that are not done yet (table ``mchat_retry``).

An event is done only when it is durably stored. When handling fails (the ChatService cannot
store the post, the database is busy, a bug), the channel's serializer parks the event here, and
every later event of that channel behind it, in arrival order, so the channel's backfill cursor
never passes a post that is not stored. The serializer retries the channel's head with backoff
until it succeeds or an admin resolves it (retry now, or discard: both audited).

Row life: ``pending`` --(done)--> deleted; ``pending`` --(discard, admin)--> ``discarded`` (kept
for the record; the post is recorded as handled with status ``discarded``).

Two layers, so another database can follow: pure functions over a ``sqlite_utils.Database``
(the SQL), and ``SqliteRetryQueue``, the async ``RetryQueue`` the dispatcher is given.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Protocol

import attrs
import orjson
import sqlite_utils

from . import posts
from .messages import (
    ChannelCreated,
    ChannelDeleted,
    ChannelId,
    InboundEvent,
    MemberJoined,
    MemberLeft,
    Post,
    PostCreated,
    PostDeleted,
    PostEdited,
    channel_of,
)
from .store import Store, audit, transaction

PENDING = "pending"
DISCARDED = "discarded"
BACKOFF_S = (2.0, 4.0, 8.0, 16.0, 30.0, 60.0, 120.0, 300.0)

_KINDS: dict[str, type[Any]] = {cls.__name__: cls for cls in (
    PostCreated, PostEdited, PostDeleted, MemberJoined, MemberLeft, ChannelCreated,
    ChannelDeleted)}


def backoff_s(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed tries (2 s doubling, 5 min cap)."""
    return BACKOFF_S[min(max(attempts, 1), len(BACKOFF_S)) - 1]


# ---------------------------------------------------------------------------- event codec
def encode_event(event: InboundEvent) -> tuple[str, str]:
    """(kind, JSON payload) of ``event``; ``decode_event`` turns them back into it."""
    kind = type(event).__name__
    if kind not in _KINDS:
        raise TypeError(f"cannot park {kind}")
    return kind, orjson.dumps(attrs.asdict(event)).decode()


def decode_event(kind: str, payload: str) -> InboundEvent:
    data = orjson.loads(payload)
    cls = _KINDS[kind]
    if "post" in data:
        post = dict(data["post"])
        post["file_ids"] = tuple(post.get("file_ids") or ())
        data["post"] = Post(**post)
    event: InboundEvent = cls(**data)
    return event


def event_key(event: InboundEvent) -> str:
    """What makes two deliveries the same event (a replayed post is parked once)."""
    match event:
        case PostCreated(post=post):
            return f"created:{post.id}"
        case PostEdited(post=post) | PostDeleted(post=post):
            return f"{type(event).__name__}:{post.id}:{post.update_at}:{post.delete_at}"
        case _:
            return f"{type(event).__name__}:{uuid.uuid4().hex}"


def _post_id(event: InboundEvent) -> str | None:
    post = getattr(event, "post", None)
    return str(post.id) if isinstance(post, Post) else None


@attrs.frozen(kw_only=True)
class ParkedEvent:
    id: int
    channel_id: ChannelId
    event: InboundEvent
    attempts: int
    next_attempt_at: float
    last_error: str


# ---------------------------------------------------------------------------- SQL
def park(db: sqlite_utils.Database, event: InboundEvent, *, attempts: int, error: str,
         next_attempt_at: float, now: float) -> bool:
    """Append ``event`` to its channel's queue unless it is there already. True if added."""
    kind, payload = encode_event(event)
    cursor = db.conn.execute(
        "INSERT INTO mchat_retry (channel_id, event_key, kind, post_id, payload, status,"
        " attempts, next_attempt_at, last_error, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(event_key) DO NOTHING",
        (str(channel_of(event)), event_key(event), kind, _post_id(event), payload, PENDING,
         attempts, next_attempt_at, error[:500], now, now))
    return cursor.rowcount == 1


def parked_channels(db: sqlite_utils.Database) -> list[str]:
    return [str(r[0]) for r in db.conn.execute(
        "SELECT DISTINCT channel_id FROM mchat_retry WHERE status = ? ORDER BY channel_id",
        (PENDING,))]


def head(db: sqlite_utils.Database, channel_id: str) -> ParkedEvent | None:
    """The channel's oldest pending event (the one to try next)."""
    row = db.conn.execute(
        "SELECT id, channel_id, kind, payload, attempts, next_attempt_at, last_error"
        " FROM mchat_retry WHERE status = ? AND channel_id = ? ORDER BY id LIMIT 1",
        (PENDING, channel_id)).fetchone()
    if row is None:
        return None
    return ParkedEvent(id=row[0], channel_id=ChannelId(row[1]),
                       event=decode_event(row[2], row[3]), attempts=row[4],
                       next_attempt_at=row[5], last_error=row[6])


def record_failure(db: sqlite_utils.Database, row_id: int, *, error: str,
                   next_attempt_at: float, now: float) -> None:
    db.conn.execute(
        "UPDATE mchat_retry SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
        " updated_at = ? WHERE id = ? AND status = ?",
        (next_attempt_at, error[:500], now, row_id, PENDING))


def remove(db: sqlite_utils.Database, row_id: int) -> None:
    """The event is done: it leaves the queue."""
    db.conn.execute("DELETE FROM mchat_retry WHERE id = ? AND status = ?", (row_id, PENDING))


def listing(db: sqlite_utils.Database, *, limit: int = 200) -> list[dict[str, Any]]:
    """Pending and discarded rows for the admin API: no message text (it may be private)."""
    return [dict(r) for r in db.query(
        "SELECT id, channel_id, kind, post_id, status, attempts, next_attempt_at, last_error,"
        " created_at, updated_at FROM mchat_retry ORDER BY status DESC, channel_id, id"
        " LIMIT ?", (limit,))]


def counts(db: sqlite_utils.Database) -> dict[str, int]:
    out = {PENDING: 0, DISCARDED: 0}
    for status, n in db.conn.execute("SELECT status, COUNT(*) FROM mchat_retry GROUP BY status"):
        out[str(status)] = int(n)
    return out


def health(db: sqlite_utils.Database, *, now: float | None = None) -> dict[str, Any]:
    """Pending rows, channels waiting, and the oldest pending row's age (None when empty)."""
    now = time.time() if now is None else now
    n, channels, oldest = db.conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT channel_id), MIN(created_at) FROM mchat_retry"
        " WHERE status = ?", (PENDING,)).fetchone()
    return {"pending": int(n), "channels": int(channels),
            "oldest_pending_age_s": None if oldest is None else round(max(0.0, now - oldest), 3)}


def retry_now(db: sqlite_utils.Database, row_id: int, *, remote_addr: str,
              now: float | None = None) -> str:
    """Admin action: try this pending row at once. ``"requeued"``, ``"not_found"`` or
    ``"already <status>"``."""
    now = time.time() if now is None else now
    with transaction(db.conn):
        row = db.conn.execute("SELECT status, channel_id, post_id FROM mchat_retry WHERE id = ?",
                              (row_id,)).fetchone()
        if row is None:
            return "not_found"
        if row[0] != PENDING:
            return f"already {row[0]}"
        db.conn.execute("UPDATE mchat_retry SET next_attempt_at = ?, updated_at = ? WHERE id = ?",
                        (now, now, row_id))
        audit(db, actor="admin", action="retry_queue.retry", target=str(row_id),
              detail=f"channel {row[1]}, post {row[2] or '-'}", remote_addr=remote_addr)
    return "requeued"


def discard(db: sqlite_utils.Database, row_id: int, *, remote_addr: str,
            now: float | None = None) -> str:
    """Admin action: give up on a pending row. The post is recorded as handled with status
    ``discarded`` (a backfill does not bring it back) without moving the channel's cursor (later
    parked posts stay ahead of it). ``"discarded"``, ``"not_found"`` or ``"already <status>"``.
    """
    now = time.time() if now is None else now
    with transaction(db.conn):
        row = db.conn.execute(
            "SELECT status, channel_id, post_id, kind, payload FROM mchat_retry WHERE id = ?",
            (row_id,)).fetchone()
        if row is None:
            return "not_found"
        if row[0] != PENDING:
            return f"already {row[0]}"
        db.conn.execute("UPDATE mchat_retry SET status = ?, updated_at = ? WHERE id = ?",
                        (DISCARDED, now, row_id))
        event = decode_event(row[3], row[4])
        if isinstance(event, PostCreated):
            posts.record_post(db, event.post, status="discarded", source=event.source,
                                move_cursor=False)
        audit(db, actor="admin", action="retry_queue.discard", target=str(row_id),
              detail=f"channel {row[1]}, post {row[2] or '-'}", remote_addr=remote_addr)
    return "discarded"


# ---------------------------------------------------------------------------- the interface
class RetryQueue(Protocol):
    """What the dispatcher needs from the durable retry queue (times are wall seconds)."""

    async def park(self, event: InboundEvent, *, attempts: int, error: str,
                   next_attempt_at: float) -> bool: ...
    async def channels(self) -> list[str]: ...
    async def head(self, channel_id: str) -> ParkedEvent | None: ...
    async def failed(self, row_id: int, *, error: str, next_attempt_at: float) -> None: ...
    async def done(self, row_id: int) -> None: ...


@attrs.frozen
class SqliteRetryQueue:
    """``RetryQueue`` over the runtime's SQLite store."""

    store: Store

    async def park(self, event: InboundEvent, *, attempts: int, error: str,
                   next_attempt_at: float) -> bool:
        return await self.store.run(park, event, attempts=attempts, error=error,
                                    next_attempt_at=next_attempt_at, now=time.time())

    async def channels(self) -> list[str]:
        return await self.store.run(parked_channels)

    async def head(self, channel_id: str) -> ParkedEvent | None:
        return await self.store.run(head, channel_id)

    async def failed(self, row_id: int, *, error: str, next_attempt_at: float) -> None:
        await self.store.run(record_failure, row_id, error=error,
                             next_attempt_at=next_attempt_at, now=time.time())

    async def done(self, row_id: int) -> None:
        await self.store.run(remove, row_id)

