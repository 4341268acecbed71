"""The runtime's repositories on PostgreSQL (``repository.Repositories``; ``pg_repositories()``).

Same functions and promises as the SQLite modules ``posts``, ``mapping``, ``outbox`` and
``store``'s state functions, on the psycopg connection ``PgDatabase.run`` lends (one
transaction): ``await db.run(repos.posts.record_post, post, status=..., source=...)``.
The contract tests (``tests/test_repository_contract.py``) run the same tests on both.

Several transactions run at once here (replicas, the pool), which SQLite's single writer never
sees; each write keeps its promise under READ COMMITTED (the pool's default):

- ``record_post``: two transactions recording one post make one row (the second's insert waits
  on the key, then updates ``update_at`` to the larger). The cursor's ``UPDATE ... WHERE
  last_post_at <= %s`` is re-checked by the server on the row as the other transaction left it,
  so the cursor never moves back, whatever the commit order.
- ``insert_channel``/``insert_user``: ``ON CONFLICT DO NOTHING`` then a read in a new statement,
  which sees the row a concurrent transaction committed: both callers get the one stored row.
- the outbox: see ``outbox_repo``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from psycopg.rows import dict_row

from ..chat.protocol import SharedStorage, StoredMessage
from ..errors import PostAlreadyHandled
from ..messages import Post, SendReply
from ..outbox import OutboxRow
from ..posts import PlainPost
from ..repository import Repositories
from .outbox_repo import Conn, PgOutbox

Row = dict[str, Any]


def _one(conn: Conn, sql: str, args: Sequence[object]) -> Row | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row: Row | None = cur.execute(sql, args).fetchone()
        return row


def _all(conn: Conn, sql: str, args: Sequence[object] = ()) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(sql, args).fetchall())


@attrs.frozen
class PgPosts:
    """``repository.PostsRepo``: handled posts and each channel's backfill cursor."""

    outbox: PgOutbox = attrs.field(factory=PgOutbox)

    def is_post_seen(self, conn: Conn, post_id: str) -> bool:
        return conn.execute("SELECT 1 FROM mchat_posts WHERE post_id = %s",
                            (post_id,)).fetchone() is not None

    def seen_among(self, conn: Conn, post_ids: Sequence[str]) -> set[str]:
        if not post_ids:
            return set()
        return {str(r[0]) for r in conn.execute(
            "SELECT post_id FROM mchat_posts WHERE post_id = ANY(%s)", (list(post_ids),))}

    def record_post(self, conn: Conn, post: Post, *, status: str, source: str,
                    move_cursor: bool = True) -> None:
        """Mark ``post`` handled (idempotent) and move its channel's cursor forward, never back."""
        now = time.time()
        conn.execute(
            "INSERT INTO mchat_posts (post_id, channel_id, create_at, update_at, status, source,"
            " processed_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (post_id) DO UPDATE"
            " SET update_at = GREATEST(mchat_posts.update_at, excluded.update_at)",
            (post.id, post.channel_id, post.create_at, post.update_at, status, source, now))
        if not move_cursor:
            return
        conn.execute(
            "UPDATE mchat_channel_mapping SET last_post_id = %s, last_post_at = %s,"
            " updated_at = %s WHERE mchat_channel_id = %s AND last_post_at <= %s",
            (post.id, post.create_at, now, post.channel_id, post.create_at))

    def channel_cursor(self, conn: Conn, channel_id: str) -> str | None:
        row = conn.execute("SELECT last_post_id FROM mchat_channel_mapping"
                           " WHERE mchat_channel_id = %s", (channel_id,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def cursors_with_times(self, conn: Conn) -> list[tuple[str, str | None, float, int]]:
        return [(str(r[0]), None if r[1] is None else str(r[1]), float(r[2]), int(r[3] or 0))
                for r in conn.execute("SELECT mchat_channel_id, last_post_id, created_at,"
                                      " last_post_at FROM mchat_channel_mapping ORDER BY id")]

    def finish_post(self, conn: Conn, post: Post, *, status: str, source: str,
                    replies: tuple[SendReply, ...], max_chars: int,
                    delivered_in_response: bool = False,
                    chat_work: Callable[[Conn], object] | None = None,
                    unless_seen: bool = False, attempt_at: float | None = None
                    ) -> list[OutboxRow]:
        """Mark handled + advance the cursor + write the outbox rows, atomically (a savepoint
        inside the caller's transaction); the replies' pending rows as committed. The options
        as in ``posts.finish_post``."""
        with conn.transaction():
            if unless_seen and self.is_post_seen(conn, post.id):
                raise PostAlreadyHandled(post.id)
            if chat_work is not None:
                chat_work(conn)
            self.record_post(conn, post, status=status, source=source)
            if not replies:
                return []
            ids = self.outbox.enqueue_replies(conn, replies, max_chars=max_chars)
            if delivered_in_response:
                for reply in replies:
                    self.outbox.mark_delivered_elsewhere(conn, reply.reply_key,
                                                         how="webhook-response")
                return []
            rows = self.outbox.load_pending(conn, ids=ids)
            if attempt_at is None:
                return rows
            for row in rows:
                if not row.attempts:
                    self.outbox.mark_attempt(conn, row.id, now=attempt_at)
            return [row if row.attempts else attrs.evolve(
                row, attempts=1, first_attempt_at=attempt_at, last_attempt_at=attempt_at,
                marked_unsent=True) for row in rows]

    def answer_post(self, conn: Conn, post: Post, *, source: str,
                    compose: Callable[[Conn], tuple[str, StoredMessage]],
                    reply_of: Callable[[str], SendReply], max_chars: int, attempt_at: float
                    ) -> tuple[SendReply, StoredMessage, list[OutboxRow]]:
        """As ``posts.answer_post`` (a savepoint inside the caller's transaction)."""
        with conn.transaction():
            if self.is_post_seen(conn, post.id):
                raise PostAlreadyHandled(post.id)
            answer, stored = compose(conn)
            reply = reply_of(answer)
            rows = self.finish_post(conn, post, status="answered", source=source,
                                    replies=(reply,), max_chars=max_chars,
                                    attempt_at=attempt_at)
            return reply, stored, rows

    def store_plain_posts(self, conn: Conn, items: Sequence[PlainPost], chat: SharedStorage
                          ) -> tuple[set[str], list[StoredMessage]]:
        """A lane's plain posts in one request: skip those handled before, store the others'
        messages through ``chat`` (whose unit of work must run on this connection:
        ``pg.chat_messages.PgSharedMessages``), mark them handled, move the cursor.

        Returns:
            (ids handled before, the messages stored now).
        """
        with conn.transaction():
            seen = self.seen_among(conn, [i.post.id for i in items])
            fresh = list({i.post.id: i for i in reversed(items)
                          if i.post.id not in seen}.values())
            fresh.reverse()  # in order, each post once (socket and catch-up may both bring it)
            messages = [i.message for i in fresh if i.message is not None]
            stored = chat.store_messages_work(messages)(conn) if messages else []
            for item in fresh:
                self.record_post(conn, item.post, status=item.status, source=item.source)
        return seen, stored


def _channel_row(row: Row) -> Row:
    row["sync_enabled"] = bool(row["sync_enabled"])
    return row


@attrs.frozen
class PgMapping:
    """``repository.MappingRepo``: channels to rooms, users to agent users."""

    def get_channel(self, conn: Conn, channel_id: str) -> Row | None:
        row = _one(conn, "SELECT * FROM mchat_channel_mapping WHERE mchat_channel_id = %s",
                   (channel_id,))
        return None if row is None else _channel_row(row)

    def insert_channel(self, conn: Conn, *, channel_id: str, team_id: str, name: str,
                       display_name: str, channel_type: str, room_id: str) -> Row:
        """Insert unless present (idempotent, also against a concurrent insert); the row."""
        now = time.time()
        conn.execute(
            "INSERT INTO mchat_channel_mapping (mchat_channel_id, mchat_team_id,"
            " mchat_channel_name, mchat_display_name, channel_type, agent_room_id, sync_enabled,"
            " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, 1, %s, %s)"
            " ON CONFLICT (mchat_channel_id) DO NOTHING",
            (channel_id, team_id, name, display_name, channel_type, room_id, now, now))
        row = self.get_channel(conn, channel_id)
        assert row is not None
        return row

    def set_channel_sync(self, conn: Conn, channel_id: str, enabled: bool) -> bool:
        cur = conn.execute("UPDATE mchat_channel_mapping SET sync_enabled = %s, updated_at = %s"
                           " WHERE mchat_channel_id = %s",
                           (1 if enabled else 0, time.time(), channel_id))
        return cur.rowcount > 0

    def list_channels(self, conn: Conn) -> list[Row]:
        return [_channel_row(r) for r in _all(conn, "SELECT * FROM mchat_channel_mapping"
                                                    " ORDER BY id")]

    def get_user(self, conn: Conn, user_id: str) -> Row | None:
        return _one(conn, "SELECT * FROM mchat_user_mapping WHERE mchat_user_id = %s",
                    (user_id,))

    def insert_user(self, conn: Conn, *, user_id: str, username: str, email: str | None,
                    agent_user_id: str, matched_by: str) -> Row:
        now = time.time()
        conn.execute(
            "INSERT INTO mchat_user_mapping (mchat_user_id, mchat_username, mchat_email,"
            " agent_user_id, matched_by, created_at, updated_at) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (mchat_user_id) DO NOTHING",
            (user_id, username, email, agent_user_id, matched_by, now, now))
        row = self.get_user(conn, user_id)
        assert row is not None
        return row

    def list_users(self, conn: Conn) -> list[Row]:
        return _all(conn, "SELECT * FROM mchat_user_mapping ORDER BY id")


@attrs.frozen
class PgState:
    """``repository.StateRepo``: small named values and the audit log."""

    def get_state(self, conn: Conn, key: str) -> str | None:
        row = conn.execute("SELECT value FROM mchat_state WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_state(self, conn: Conn, key: str, value: str) -> None:
        conn.execute("INSERT INTO mchat_state (key, value) VALUES (%s, %s)"
                     " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def audit(self, conn: Conn, *, actor: str, action: str, target: str = "",
              detail: str = "", remote_addr: str = "") -> None:
        conn.execute("INSERT INTO audit_log (at, actor, action, target, detail, remote_addr)"
                     " VALUES (%s, %s, %s, %s, %s, %s)",
                     (time.time(), actor, action, target, detail, remote_addr))


def pg_repositories() -> Repositories:
    """The PostgreSQL implementation of every area (for ``PgDatabase.run``)."""
    outbox = PgOutbox()
    return Repositories(posts=PgPosts(outbox), mapping=PgMapping(), outbox=outbox,
                        state=PgState())
