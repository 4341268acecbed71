"""The posts-and-cursors area of the runtime's storage (the SQLite implementation).

Which Mattermost posts were handled (``mchat_posts``) and each channel's backfill cursor; and
the handler's units of work that record a post's outcome together with its reply rows and,
for plain posts, the ChatService's message rows: each is ONE request to the storage actor.
Every function takes the transaction handle first (``repository.Tx``; here the store's
``sqlite_utils.Database``) and is safe inside a caller's transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence

import attrs
import sqlite_utils

from . import outbox
from .chat.protocol import NewMessage, SharedStorage, StoredMessage
from .errors import PostAlreadyHandled
from .messages import Post, SendReply
from .writer import transaction


def is_post_seen(db: sqlite_utils.Database | sqlite3.Connection, post_id: str) -> bool:
    """Whether ``post_id`` is recorded; also on a plain connection to the same file (the
    embedded ChatService's read snapshot, ``SharedStorage.prepare_answer``)."""
    conn = db if isinstance(db, sqlite3.Connection) else db.conn
    row = conn.execute("SELECT 1 FROM mchat_posts WHERE post_id = ?", (post_id,)).fetchone()
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


def finish_post(db: sqlite_utils.Database, post: Post, *, status: str, source: str,
                replies: tuple[SendReply, ...], max_chars: int,
                delivered_in_response: bool = False,
                chat_work: Callable[[sqlite_utils.Database], object] | None = None,
                unless_seen: bool = False, attempt_at: float | None = None
                ) -> list[outbox.OutboxRow]:
    """Mark handled + advance the cursor + write the outbox rows, atomically.

    ``delivered_in_response``: the reply went back in a webhook's HTTP response; its outbox
    rows are recorded as sent so the sender never posts them.
    ``chat_work``: the ChatService's unit of work for this post (the question and its answer,
    ``SharedStorage.prepare_answer``), run first in the same transaction.
    ``unless_seen``: raise ``PostAlreadyHandled`` (writing nothing) when the post is recorded.
    ``attempt_at``: record the first send attempt (at this wall time) of the rows not attempted
    before, as the sender does before posting (``outbox.mark_attempt``), so the sender posts
    them without a round trip of its own; those rows come back with ``marked_unsent`` set.
    Marking before the post is the safe side: a crash then makes the next run look for the
    post first (``in_doubt``), and an early ``first_attempt_at`` only widens that look-up.

    Returns:
        The replies' pending outbox rows as committed (for the sender: no re-read).
    """
    with transaction(db.conn):
        if unless_seen and is_post_seen(db, post.id):
            raise PostAlreadyHandled(post.id)
        if chat_work is not None:
            chat_work(db)
        record_post(db, post, status=status, source=source)
        if not replies:
            return []
        ids = outbox.enqueue_replies(db, replies, max_chars=max_chars)
        if delivered_in_response:
            for reply in replies:
                outbox.mark_delivered_elsewhere(db, reply.reply_key, how="webhook-response")
            return []
        rows = outbox.load_pending(db, ids=ids)
        if attempt_at is None:
            return rows
        return [outbox.premark_attempt(db, row, now=attempt_at) for row in rows]


def answer_post(db: sqlite_utils.Database, post: Post, *, source: str,
                compose: Callable[[sqlite_utils.Database], tuple[str, StoredMessage]],
                reply_of: Callable[[str], SendReply], max_chars: int, attempt_at: float
                ) -> tuple[SendReply, StoredMessage, list[outbox.OutboxRow]]:
    """A question answered in ONE unit of work (``PreparedAnswer.compose``): unless the post
    is recorded (``PostAlreadyHandled``, nothing written), the ChatService reads, words and
    stores the question and its answer, then ``finish_post`` records the post, moves the cursor
    and writes the reply's outbox row with its first attempt (``attempt_at``).

    Returns:
        (the reply, the question as stored, the reply's pending rows as committed).
    """
    with transaction(db.conn):
        if is_post_seen(db, post.id):
            raise PostAlreadyHandled(post.id)
        answer, stored = compose(db)
        reply = reply_of(answer)
        rows = finish_post(db, post, status="answered", source=source, replies=(reply,),
                           max_chars=max_chars, attempt_at=attempt_at)
        return reply, stored, rows


@attrs.frozen
class PlainPost:
    """A post of a lane's batch that is stored without an answer (or not stored at all)."""

    post: Post
    status: str
    source: str
    message: NewMessage | None  # None: own/system post or sync off (recorded, not stored)


def store_plain_posts(db: sqlite_utils.Database, items: Sequence[PlainPost],
                      chat: SharedStorage) -> tuple[set[str], list[StoredMessage]]:
    """One request for a lane's run of plain posts (run by the storage actor): skip those
    handled before, store the others' messages in the ChatService's tables, mark them handled
    and move the cursor, all in the request's transaction.

    Returns:
        (ids handled before, the messages stored now).
    """
    seen = seen_among(db, [i.post.id for i in items])
    fresh = list({i.post.id: i for i in reversed(items) if i.post.id not in seen}.values())
    fresh.reverse()  # in order, each post once (one may come twice: socket and catch-up)
    messages = [i.message for i in fresh if i.message is not None]
    stored = chat.store_messages_work(messages)(db) if messages else []
    record_posts(db, fresh)
    return seen, stored


def record_posts(db: sqlite_utils.Database, items: Sequence[PlainPost]) -> None:
    """``record_post`` for each of ``items`` (in order): the marks in one statement, each
    channel's cursor moved once, to the post the moves one by one would leave it at (the last
    of those with the newest ``create_at``)."""
    now = time.time()
    db.conn.executemany(
        "INSERT INTO mchat_posts (post_id, channel_id, create_at, update_at, status, source,"
        " processed_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(post_id) DO UPDATE SET"
        " update_at = MAX(update_at, excluded.update_at)",
        [(i.post.id, i.post.channel_id, i.post.create_at, i.post.update_at, i.status, i.source,
          now) for i in items])
    last: dict[str, Post] = {}
    for item in items:
        held = last.get(item.post.channel_id)
        if held is None or held.create_at <= item.post.create_at:
            last[item.post.channel_id] = item.post
    for post in last.values():
        db.conn.execute(
            "UPDATE mchat_channel_mapping SET last_post_id = ?, last_post_at = ?, updated_at = ?"
            " WHERE mchat_channel_id = ? AND last_post_at <= ?",
            (post.id, post.create_at, now, post.channel_id, post.create_at))


