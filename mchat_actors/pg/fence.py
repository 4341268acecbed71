"""Writes fenced by the lease (MCHAT_REPLICAS=on): a replica acts on a channel only while the
database still says its lease is this replica's, at the epoch it took it with.

A replica believes it owns a channel until its local deadline (``pg.leases``), which passes
before the database lets another replica take it. But a replica paused (GC, SIGSTOP, a slow
machine) or cut off can wake with work in flight, an answer computed before the pause, and
write it after another replica took the channel over. So the writes that act on ownership
check the lease row inside their own transaction (``FOR SHARE``: a taker skips the row while
the write commits, ``pg.leases.acquire``'s ``SKIP LOCKED``), and are refused with
``errors.LeaseLost`` when it is no longer theirs:

- the answer commit and every other post's record, with the cursor's advance
  (``finish_post``, ``store_plain_posts``);
- the outbox claim (``mark_attempt``: recorded before a row is posted, so a refused claim
  posts nothing).

Not fenced: ``mark_sent`` (the post is made: recording it keeps the new owner from posting
it again) and ``mark_retry``/``mark_failed`` (they only delay or stop a row; the new owner
reads it again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import psycopg

from ..chat.protocol import SharedStorage, StoredMessage
from ..errors import LeaseLost
from ..messages import Post, SendReply
from ..outbox import OutboxRow
from ..posts import PlainPost
from .outbox_repo import PgOutbox
from .repos import PgPosts

Conn = psycopg.Connection[Any]


@attrs.frozen
class Fence:
    """A lease as this replica took it: its resource, owner and epoch."""

    resource: str
    owner: str
    epoch: int


FenceOf = Callable[[str], "Fence | None"]  # channel id -> its lease, None when not held


def check(conn: Conn, fence: Fence | None, channel_id: str) -> None:
    """In the caller's transaction: the lease is still ``fence``'s, unexpired; the row is
    locked until the transaction ends (nobody takes it meanwhile).

    Raises:
        LeaseLost: it is not (or ``fence`` is None: not held by this replica's own view).
    """
    if fence is None:
        raise LeaseLost(f"channel {channel_id}: its lease is not held")
    row = conn.execute(
        "SELECT 1 FROM leases WHERE resource = %s AND owner = %s AND epoch = %s AND"
        " expires_at > extract(epoch FROM clock_timestamp()) FOR SHARE",
        (fence.resource, fence.owner, fence.epoch)).fetchone()
    if row is None:
        raise LeaseLost(f"channel {channel_id}: {fence.resource} (epoch {fence.epoch}) is no "
                        f"longer this replica's")


@attrs.frozen
class FencedPosts(PgPosts):
    """``PgPosts`` whose writes check the channel's lease first (same transaction)."""

    fence_of: FenceOf = attrs.field(kw_only=True)

    def finish_post(self, conn: Conn, post: Post, *, status: str, source: str,
                    replies: tuple[SendReply, ...], max_chars: int,
                    delivered_in_response: bool = False,
                    chat_work: Callable[[Conn], object] | None = None,
                    unless_seen: bool = False, attempt_at: float | None = None
                    ) -> list[OutboxRow]:
        with conn.transaction():
            check(conn, self.fence_of(str(post.channel_id)), str(post.channel_id))
            return super().finish_post(
                conn, post, status=status, source=source, replies=replies,
                max_chars=max_chars, delivered_in_response=delivered_in_response,
                chat_work=chat_work, unless_seen=unless_seen, attempt_at=attempt_at)

    def store_plain_posts(self, conn: Conn, items: Sequence[PlainPost], chat: SharedStorage
                          ) -> tuple[set[str], list[StoredMessage]]:
        with conn.transaction():
            for channel_id in sorted({str(i.post.channel_id) for i in items}):
                check(conn, self.fence_of(channel_id), channel_id)
            return super().store_plain_posts(conn, items, chat)


@attrs.frozen
class FencedOutbox(PgOutbox):
    """``PgOutbox`` whose claim of a row (``mark_attempt``) checks its channel's lease."""

    fence_of: FenceOf = attrs.field(kw_only=True)

    def mark_attempt(self, conn: Conn, row_id: int, *, now: float) -> None:
        with conn.transaction():
            row = conn.execute("SELECT channel_id FROM outbox WHERE id = %s",
                               (row_id,)).fetchone()
            if row is not None:
                check(conn, self.fence_of(str(row[0])), str(row[0]))
            super().mark_attempt(conn, row_id, now=now)
