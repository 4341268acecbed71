"""The embedded ChatService's tables, in the runtime's SQLite file.

The runtime (``mchat_actors.store``) owns the other tables of the same file; the two share it
through WAL. Everything here is ``CREATE ... IF NOT EXISTS``: nothing is ever dropped, so opening
an existing database is always safe.

Ids: users and rooms are opaque hex strings; messages and memories have an integer key
(``chat_messages.id``, ``memories.id``), shown to people as ``m<id>`` for memories. Times are
milliseconds since the epoch.

``memories_fts`` is the search index (see ``chat.search``): one row per live memory, ``rowid`` =
``memories.id``, columns ``words`` (the analyzer's terms: Kiwi's content morphemes and
stemmed English words), ``grams`` (Hangul character bigrams of those terms) and ``vis`` (one
token naming the room, or the owner of a personal memory, so a search only scores what the
asker may see), all under the unicode61 tokenizer. ``memories_vocab`` (fts5vocab) gives
document frequencies for ranking.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ChatServiceError
from ..migrations import Migration, statements, upgrade
from ..store import transaction as transaction  # the one transaction helper
from .analysis import Analyzer, PlainAnalyzer
from .memory_versions import SCHEMA_VERSION as SCHEMA_VERSION  # noqa: PLC0414 - re-exported
from .memory_versions import memory_versions
from .vector_cache import VectorCache

if TYPE_CHECKING:
    from .search import TermCounts


_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT,
    email_norm TEXT,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email_norm ON users (email_norm)
    WHERE email_norm IS NOT NULL;
CREATE TABLE IF NOT EXISTS chat_rooms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'channel',
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS room_members (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    joined_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX IF NOT EXISTS room_members_user ON room_members (user_id);
CREATE TABLE IF NOT EXISTS chat_messages (
    id INTEGER PRIMARY KEY,
    room_id TEXT NOT NULL,
    user_id TEXT,
    role TEXT NOT NULL DEFAULT 'user',
    content TEXT NOT NULL,
    mchat_post_id TEXT UNIQUE,
    root_id TEXT,
    created_at INTEGER NOT NULL,
    edited_at INTEGER,
    deleted_at INTEGER
);
CREATE INDEX IF NOT EXISTS chat_messages_room_time ON chat_messages (room_id, created_at);
CREATE TABLE IF NOT EXISTS memories (
    id INTEGER PRIMARY KEY,
    content TEXT NOT NULL,
    norm TEXT NOT NULL DEFAULT '',
    fact_key TEXT NOT NULL DEFAULT '',
    scope TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'remember',
    room_id TEXT,
    owner_id TEXT,
    author_id TEXT,
    source_post_id TEXT,
    permalink TEXT,
    window_key TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX IF NOT EXISTS memories_room ON memories (room_id, scope, updated_at);
CREATE INDEX IF NOT EXISTS memories_owner ON memories (owner_id, scope);
CREATE INDEX IF NOT EXISTS memories_source ON memories (source_post_id);
CREATE INDEX IF NOT EXISTS memories_norm ON memories (norm);
CREATE INDEX IF NOT EXISTS memories_fact_key ON memories (fact_key);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
    words, grams, vis, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_vocab USING fts5vocab(memories_fts, 'row');
CREATE TABLE IF NOT EXISTS memory_audit (
    id INTEGER PRIMARY KEY,
    memory_id INTEGER NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL DEFAULT '',
    at INTEGER NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS memory_audit_memory ON memory_audit (memory_id, id);
CREATE TABLE IF NOT EXISTS chat_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class ChatConnection(sqlite3.Connection):
    """A connection that knows the analyzer its search index is built with, and keeps the
    search's document counts (``chat.search.TermCounts``)."""

    analyzer: Analyzer
    term_counts: TermCounts
    vectors: VectorCache  # the embeddings read so far (``chat.embeddings.nearest``)
    sqlite_vec: bool  # sqlite-vec is loaded: vector search runs in SQL (``chat.embeddings``)
    sqlite_vec_missing: str | None  # else why not


def connect(path: str, analyzer: Analyzer | None = None) -> sqlite3.Connection:
    """Open ``path`` (WAL, autocommit, usable from one thread at a time) and create the tables.

    The search index is rebuilt when it was built by another analyzer or version of it
    (``chat.search.ensure_index``); ``analyzer`` defaults to the plain one (no model).

    Raises:
        ChatServiceError: the file cannot be opened or migrated.
    """
    try:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0, isolation_level=None,
                               factory=ChatConnection)
        conn.analyzer = analyzer if analyzer is not None else PlainAnalyzer()
        from .search import TermCounts

        conn.term_counts = TermCounts()
        conn.vectors = VectorCache()
        from .embeddings import load_sqlite_vec

        conn.sqlite_vec_missing = load_sqlite_vec(conn)
        conn.sqlite_vec = conn.sqlite_vec_missing is None
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn)
        from .search import ensure_index

        ensure_index(conn)
    except (sqlite3.Error, ValueError) as exc:  # ValueError: made by a newer release
        raise ChatServiceError(f"cannot open the chat database {path}: {exc}") from exc
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    """Create the ChatService's tables if missing and upgrade older ones (``migrations``,
    area ``chat``). Never drops anything. Idempotent."""
    upgrade(conn, "chat", MIGRATIONS)


class _SqliteStep:
    """``chat.memory_versions.StepDatabase`` over a SQLite connection."""

    integer = "INTEGER"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def columns(self, table: str) -> set[str]:
        return {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}

    def rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._conn.execute(sql, tuple(args)).fetchall()]


def _memory_versions(conn: sqlite3.Connection) -> None:
    """Version 1 -> 2 (``chat.memory_versions``, shared with PostgreSQL)."""
    memory_versions(_SqliteStep(conn))


# Version 3 (release 5e193d6, #9): the optional dense vectors of memories (``chat.embeddings``).
_SCHEMA_V3 = """
CREATE TABLE IF NOT EXISTS memory_embeddings (
    memory_id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    vector BLOB NOT NULL
);
"""


# The ChatService's schema history: append, never edit a released step.
MIGRATIONS = (
    Migration(1, "chat tables of release ca5a05a", statements(_SCHEMA)),
    Migration(2, "versioned memories, soft forget, permalinks", _memory_versions),
    Migration(3, "memory embeddings", statements(_SCHEMA_V3)),
)
