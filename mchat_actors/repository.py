"""The runtime's storage interface: what actors may ask of the database, one Protocol per area.

Actors never hold SQL: they get a ``Repositories`` at construction and send its functions to
the store (``await store.run(repos.posts.record_post, post, ...)``, or ``store.read`` for a
read that needs no write lock). Every function takes the transaction handle first (``Tx``:
whatever the store's storage actor passes a unit of work; the SQLite store passes its
``sqlite_utils.Database``) and is safe inside the batch's transaction, so several calls
compose into ONE request (``posts.finish_post``, ``posts.store_plain_posts``).

The SQLite implementation is the modules ``posts``, ``mapping``, ``outbox`` and ``store``'s
state functions (a module satisfies a Protocol of functions); ``sqlite_repositories()``
bundles them. A PostgreSQL implementation provides objects with the same functions on its own
handle; nothing in the interface assumes SQLite: results are ids, rows as mappings and attrs
records, never ``rowid``s or cursors, and idempotence ("record twice, one row") is a promise of
each write, not a statement the caller must phrase.

The memories/chat area is the ChatService's (``chat.protocol.ChatService``; in-process, its
``SharedStorage`` joins the runtime's requests).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs

from .chat.protocol import SharedStorage, StoredMessage
from .messages import Post, SendReply
from .outbox import OutboxRow
from .posts import PlainPost

Tx = Any  # the handle a unit of work gets from the store's storage actor
Row = dict[str, Any]


class PostsRepo(Protocol):
    """Handled posts (exactly-once intake) and each channel's backfill cursor."""

    def is_post_seen(self, tx: Tx, post_id: str) -> bool: ...

    def seen_among(self, tx: Tx, post_ids: Sequence[str]) -> set[str]: ...

    def record_post(self, tx: Tx, post: Post, *, status: str, source: str,
                    move_cursor: bool = True) -> None:
        """Idempotent: a post recorded twice is one row; the cursor never moves back."""
        ...

    def channel_cursor(self, tx: Tx, channel_id: str) -> str | None: ...

    def cursors_with_times(self, tx: Tx) -> list[tuple[str, str | None, float, int]]: ...

    def finish_post(self, tx: Tx, post: Post, *, status: str, source: str,
                    replies: tuple[SendReply, ...], max_chars: int,
                    delivered_in_response: bool = False,
                    chat_work: Callable[[Tx], object] | None = None,
                    unless_seen: bool = False, attempt_at: float | None = None
                    ) -> list[OutboxRow]:
        """Record the post and its reply rows together; the rows as committed. ``chat_work``
        (the ChatService's rows for the post) runs first in the same transaction;
        ``unless_seen``: raise ``errors.PostAlreadyHandled`` when the post is recorded;
        ``attempt_at``: new rows get their first attempt recorded (``marked_unsent``)."""
        ...

    def answer_post(self, tx: Tx, post: Post, *, source: str,
                    compose: Callable[[Tx], tuple[str, StoredMessage]],
                    reply_of: Callable[[str], SendReply], max_chars: int, attempt_at: float
                    ) -> tuple[SendReply, StoredMessage, list[OutboxRow]]:
        """A question read, answered and recorded in one unit (``compose``: the ChatService's
        part); ``errors.PostAlreadyHandled`` when the post is recorded."""
        ...

    def store_plain_posts(self, tx: Tx, items: Sequence[PlainPost], chat: SharedStorage
                          ) -> tuple[set[str], list[StoredMessage]]:
        """A lane's plain posts in one request: (ids seen before, messages stored now)."""
        ...


class MappingRepo(Protocol):
    """Mattermost channels and users to the ChatService's rooms and users."""

    def get_channel(self, tx: Tx, channel_id: str) -> Row | None: ...

    def insert_channel(self, tx: Tx, *, channel_id: str, team_id: str, name: str,
                       display_name: str, channel_type: str, room_id: str) -> Row:
        """Insert unless present (idempotent); the row now stored."""
        ...

    def set_channel_sync(self, tx: Tx, channel_id: str, enabled: bool) -> bool: ...

    def list_channels(self, tx: Tx) -> list[Row]: ...

    def get_user(self, tx: Tx, user_id: str) -> Row | None: ...

    def insert_user(self, tx: Tx, *, user_id: str, username: str, email: str | None,
                    agent_user_id: str, matched_by: str) -> Row:
        """Insert unless present (idempotent); the row now stored."""
        ...

    def list_users(self, tx: Tx) -> list[Row]:
        """Every mapped user, oldest first (the admin API)."""
        ...


class OutboxRepo(Protocol):
    """Replies waiting for the sender; ``reply_key`` makes each reply exactly-once."""

    def enqueue_replies(self, tx: Tx, replies: Sequence[SendReply], *, max_chars: int,
                        now: float | None = None) -> list[int]: ...

    def load_pending(self, tx: Tx, *, ids: Sequence[int] | None = None) -> list[OutboxRow]: ...

    def mark_attempt(self, tx: Tx, row_id: int, *, now: float) -> None: ...

    def mark_retry(self, tx: Tx, row_id: int, *, next_attempt_at: float, error: str) -> None: ...

    def mark_sent(self, tx: Tx, row_id: int, *, mm_post_id: str, now: float) -> None: ...

    def mark_failed(self, tx: Tx, row_id: int, *, error: str) -> None: ...

    # administration and health (the admin API, /mchat/health, metrics)

    def get_row(self, tx: Tx, row_id: int) -> OutboxRow | None: ...

    def retry_failed(self, tx: Tx, row_id: int, *, now: float) -> bool:
        """A failed row back in the queue (same ``pending_post_id``); False: none was failed."""
        ...

    def mark_delivered_elsewhere(self, tx: Tx, reply_key: str, *, how: str,
                                 now: float | None = None) -> int:
        """A reply's pending rows recorded as sent without a REST post; how many."""
        ...

    def status_counts(self, tx: Tx) -> dict[str, int]: ...

    def oldest_pending_age_s(self, tx: Tx, *, now: float) -> float | None: ...

    def summary(self, tx: Tx, *, now: float | None = None) -> dict[str, object]:
        """Counts by status and the oldest pending row's age."""
        ...


class StateRepo(Protocol):
    """Small named values (the sweeper's read horizon) and the audit log."""

    def get_state(self, tx: Tx, key: str) -> str | None: ...

    def set_state(self, tx: Tx, key: str, value: str) -> None: ...

    def audit(self, tx: Tx, *, actor: str, action: str, target: str = "", detail: str = "",
              remote_addr: str = "") -> None:
        """Append an audit row (who, what, when, from where)."""
        ...


@attrs.frozen
class Repositories:
    posts: PostsRepo
    mapping: MappingRepo
    outbox: OutboxRepo
    state: StateRepo


def sqlite_repositories() -> Repositories:
    """The SQLite implementation of every area."""
    from . import mapping, outbox, posts, store

    return Repositories(posts=posts, mapping=mapping, outbox=outbox, state=store)
