"""The embedded ChatService on PostgreSQL (``CHAT_BACKEND=embedded`` with MCHAT_DATABASE_URL).

``chat.embedded.EmbeddedChatService`` reaches its tables through a handle: on SQLite
``chat.chat_db.ChatDatabase``, here ``PgChatDatabase`` over the runtime's ``PgDatabase``. The
service (and its handlers) names ``chat``'s functions; this handle runs each one's PostgreSQL
twin (``_twins``): the unit-of-work functions of ``chat.units``, ``chat.handlers`` and
``chat.questions`` themselves, given ``PgQueries`` instead of the ``chat.repo`` module (so
the rules, the audience above all, have one implementation on both backends), and the plain
queries' twins in ``pg.chat_repo``/``pg.memory_store``. A ``chat`` function without a twin is
refused (``ChatServiceError``), never run on a psycopg connection.

Every call is one transaction on a pooled connection (reads too: READ COMMITTED, each
statement sees what is committed). Like the SQLite service it joins the runtime's
transactions (``shares_store``): plain posts (``pg.chat_messages.store_user_messages``) and a
question's answer (``prepare_answer``'s unit, over ``PgQueries``) are stored inside the
runtime's ``finish_post``/``store_plain_posts`` transaction on the same connection.
With an embeddings endpoint (EMBEDDINGS_BASE_URL), the service's embedder stores vectors
through ``pg.embeddings`` (the twins of ``chat.embeddings.pending``/``store``) and searches
fuse the nearest visible vectors with the lexical lists as on SQLite (``pg.search``).

It is also agent-chat's local store on PostgreSQL (``CHAT_BACKEND=agent-chat``, no LLM): the
mapping tables of ``chat.agent_chat_store`` run as ``pg.agent_chat_store``'s twins.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
import trio

from ..chat import agent_chat_store, embeddings, handlers, memory_store, questions, repo, units
from ..chat.analysis import Analyzer
from ..chat.embedded import EmbeddedChatService
from ..chat.embeddings import Embedder
from ..chat.protocol import LLM, MemoryRecord, NewMessage, StoredMessage
from ..chat.summary import DEFAULT_TIMEZONE
from ..chat.vector_cache import VectorCache
from ..errors import ChatServiceError, StoreError
from . import agent_chat_store as pg_agent_chat
from . import chat_repo, search
from . import embeddings as pg_embeddings
from . import memory_store as pg_memory
from .chat_messages import store_user_messages
from .database import PgDatabase
from .outbox_repo import Conn

T = TypeVar("T")


class PgQueries:
    """``chat.repo``'s names on PostgreSQL, for ``chat.units``' ``q``: the analyzer is bound
    where SQLite reads it from its connection."""

    create_user = staticmethod(chat_repo.create_user)
    create_room = staticmethod(chat_repo.create_room)
    add_member = staticmethod(chat_repo.add_member)
    remove_member = staticmethod(chat_repo.remove_member)
    room_exists = staticmethod(chat_repo.room_exists)
    user_exists = staticmethod(chat_repo.user_exists)
    insert_message = staticmethod(chat_repo.insert_message)
    message_by_post = staticmethod(chat_repo.message_by_post)
    edit_message = staticmethod(chat_repo.edit_message)
    delete_message = staticmethod(chat_repo.delete_message)
    visible_rooms = staticmethod(chat_repo.visible_rooms)
    member_rooms = staticmethod(chat_repo.member_rooms)
    room_infos = staticmethod(chat_repo.room_infos)
    room_kind = staticmethod(chat_repo.room_kind)
    room_members = staticmethod(chat_repo.room_members)
    room_team = staticmethod(chat_repo.room_team)
    user_teams = staticmethod(chat_repo.user_teams)
    room_names = staticmethod(chat_repo.room_names)
    get_memory = staticmethod(pg_memory.get_memory)
    retract_memory = staticmethod(pg_memory.retract_memory)
    forget_memory = staticmethod(pg_memory.forget_memory)
    memories_from_post = staticmethod(pg_memory.memories_from_post)
    previous_version = staticmethod(pg_memory.previous_version)
    versions = staticmethod(pg_memory.versions)
    twins = staticmethod(pg_memory.twins)
    room_has_current = staticmethod(pg_memory.room_has_current)

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.vectors = pg_embeddings.VectorCache()  # the embeddings read so far (this process)

    def analyzer_of(self, conn: Conn) -> Analyzer:
        return self.analyzer

    def save_memory(self, conn: Conn, content: str, **kwargs: Any) -> tuple[MemoryRecord, str]:
        return pg_memory.save_memory(conn, self.analyzer, content, **kwargs)

    def restore_memory(self, conn: Conn, memory_id: int, **kwargs: Any) -> bool:
        return pg_memory.restore_memory(conn, self.analyzer, memory_id, **kwargs)

    def search_scoped(self, conn: Conn, text: str, **kwargs: Any
                      ) -> tuple[list[MemoryRecord], list[MemoryRecord]]:
        return search.search_scoped(conn, self.analyzer, text,
                                    **{"vectors": self.vectors, **kwargs})

    def search_memories(self, conn: Conn, text: str, **kwargs: Any) -> list[MemoryRecord]:
        return search.search_memories(conn, self.analyzer, text, **kwargs)


def _twins(q: PgQueries) -> dict[Callable[..., Any], Callable[..., Any]]:
    """Each ``chat`` function the embedded service runs through ``db``/``read``, and what runs
    on PostgreSQL instead."""
    with_q: list[Callable[..., Any]] = [
        units.store_user_message, units.search_for_audience, units.audience_scope,
        units.with_versions, units.apply_edit, units.apply_delete, units.save_extracted,
        handlers._update_candidates, handlers._remember_both,  # noqa: SLF001
        handlers._room_names, handlers._forget_best, handlers._chains,  # noqa: SLF001
        questions._answer_context, questions._searched,  # noqa: SLF001
    ]
    twins: dict[Callable[..., Any], Callable[..., Any]] = {
        fn: functools.partial(fn, q=q) for fn in with_q}
    twins.update({
        repo.find_user_by_email: chat_repo.find_user_by_email,
        repo.create_user: chat_repo.create_user,
        repo.create_room: chat_repo.create_room,
        repo.add_member: chat_repo.add_member,
        repo.remove_member: chat_repo.remove_member,
        repo.set_room_members: chat_repo.set_room_members,
        repo.message_by_post: chat_repo.message_by_post,
        repo.insert_message: chat_repo.insert_message,
        repo.room_messages: chat_repo.room_messages,
        repo.room_members: chat_repo.room_members,
        memory_store.save_memory: q.save_memory,
        memory_store.recent_room_memories: pg_memory.recent_room_memories,
        memory_store.forget_memory: pg_memory.forget_memory,
        memory_store.restore_memory: q.restore_memory,
        memory_store.admin_list: pg_memory.admin_list,
        memory_store.audit_trail: pg_memory.audit_trail,
        memory_store.versions: pg_memory.versions,
        embeddings.pending: pg_embeddings.pending,
        embeddings.store: pg_embeddings.store,
        embeddings.stored_vectors: pg_embeddings.stored_vectors,
    })
    twins.update({getattr(agent_chat_store, name): getattr(pg_agent_chat, name)
                  for name in pg_agent_chat.__all__})
    return twins


class PgChatDatabase:
    """``chat.embedded.ChatHandle`` on PostgreSQL (module docstring)."""

    def __init__(self, database: PgDatabase, *, analyzer: Analyzer,
                 clock: Callable[[], float]) -> None:
        self._database = database
        self._clock = clock
        self.analyzer = analyzer
        self.queries = PgQueries(analyzer)
        self._twins = _twins(self.queries)

    @property
    def vectors(self) -> VectorCache:
        return self.queries.vectors

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn``'s twin (``fn`` itself when it is not ``chat``'s) in one transaction.

        Raises:
            ChatServiceError: the database failed, or ``fn`` has no PostgreSQL twin.
        """
        try:
            result: T = await self._database.run(self._twin(fn), *args, **kwargs)
        except StoreError as exc:
            raise ChatServiceError(f"chat database: {exc}") from exc
        return result

    read = db  # a transaction of its own, as every call

    def _twin(self, fn: Callable[..., T]) -> Callable[..., T]:
        """What runs on PostgreSQL for ``fn``: its twin; ``fn`` itself when it is no ``chat``
        module's own function (a closure the service built over ``queries``, a runtime one).

        Raises:
            ChatServiceError: ``fn`` is a ``chat`` module's function without a twin.
        """
        twin = self._twins.get(fn)
        if twin is not None:
            return twin
        module = getattr(fn, "__module__", "") or ""
        name = getattr(fn, "__name__", "")
        if module.startswith("mchat_actors.chat.") and \
                getattr(sys.modules.get(module), name, None) is fn:
            raise ChatServiceError(f"{module}.{name} has no PostgreSQL twin (pg/chat_db.py)")
        return fn

    # -- shared storage: units of work inside the runtime's transaction -----------------------

    def shares_store(self) -> bool:
        return True

    def store_messages_work(self, messages: Sequence[NewMessage]
                            ) -> Callable[[Any], list[StoredMessage]]:
        """Plain posts stored on the runtime's connection, in its transaction."""
        now = self.now_ms()
        items = tuple(m if m.created_at_ms is not None else attrs.evolve(m, created_at_ms=now)
                      for m in messages)
        return lambda conn: store_user_messages(conn, items)

    def shared_work(self, fn: Callable[..., T], *args: Any) -> Callable[[Any], T]:
        """``fn(conn, *args)`` (its twin) on the runtime's connection, in its transaction."""
        work = self._twin(fn)
        return lambda conn: work(conn, *args)


def _ensure_index(conn: Conn, analyzer: Analyzer) -> int:
    """Rebuild the search index when another analyzer (or version) built it."""
    row = conn.execute("SELECT value FROM chat_state WHERE key = 'index_version'").fetchone()
    if row is not None and row[0] == analyzer.index_version:
        return 0
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('memories:reindex', 0))")
    return search.reindex(conn, analyzer)


@asynccontextmanager
async def open_pg_embedded_chat_service(
    database: PgDatabase, *, analyzer: Analyzer, llm: LLM | None = None,
    extraction_debounce_s: float = 5.0, clock: Callable[[], float] | None = None,
    timezone: str = DEFAULT_TIMEZONE, mask_llm: bool = True,
    embeddings: Embedder | None = None,
) -> AsyncIterator[EmbeddedChatService]:
    """The embedded ChatService on ``database`` (the runtime's; migrated by ``open_database``).
    ``embeddings``: hybrid retrieval (module docstring); None: lexical only.

    Raises:
        ChatServiceError: the database failed while the index was checked.
    """
    import time

    handle = PgChatDatabase(database, analyzer=analyzer, clock=clock or time.time)
    try:
        await database.run(_ensure_index, analyzer)
    except StoreError as exc:
        raise ChatServiceError(f"chat database: {exc}") from exc
    async with trio.open_nursery() as nursery:
        yield EmbeddedChatService(handle, llm=llm, nursery=nursery,
                                  extraction_debounce_s=extraction_debounce_s,
                                  timezone=timezone, mask_llm=mask_llm,
                                  embeddings=embeddings)
        nursery.cancel_scope.cancel()
