"""Opens the configured ChatService: the embedded one, or a remote adapter over it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from .chat.protocol import LLM, ChatService
from .config import Config
from .errors import ChatServiceError
from .storage_backend import chat_store, is_postgres

if TYPE_CHECKING:
    from .chat.embedded import EmbeddedChatService
    from .store import Store

logger = logging.getLogger(__name__)


@asynccontextmanager
async def open_chat_service(config: Config, store: Store | None = None
                            ) -> AsyncIterator[ChatService]:
    """The configured ChatService: embedded, or the remote adapter over the embedded store.

    ``store``: the runtime's store; the embedded service's writes then join its group commits.
    """
    from .chat.embedded import open_embedded_chat_service

    llm_cm: AbstractAsyncContextManager[LLM] | None = None
    if config.chat.llm_base_url:
        from .chat.llm import open_llm

        llm_cm = open_llm(config.chat)
    remote = config.chat.backend in ("remote", "agent-chat")
    async with _maybe(llm_cm) as llm, _maybe_embeddings(config, remote) as embeddings:
        # remote, agent-chat: the local store keeps users/rooms/messages only; memories live
        # remotely, so the local service must not extract memories of its own (no LLM for it;
        # agent-chat's summaries are then the built-in ones)
        if store is not None and is_postgres(store) and config.chat.backend == "remote":
            from .chat.remote import open_remote_chat_service

            # the local store in the runtime's PostgreSQL database: nothing in a local file
            async with _open_pg_local(config, store) as pg_local, \
                    open_remote_chat_service(config.chat, local=pg_local, llm=llm) as svc:
                yield svc
            return
        if store is not None and is_postgres(store) and config.chat.backend == "agent-chat":
            from .chat.agent_chat import open_agent_chat_service

            # its local store (users, rooms, messages, the mapping tables) on PostgreSQL
            async with _open_pg_embedded(config, store, None, None) as pg_local, \
                    open_agent_chat_service(config.chat, local=pg_local) as agent_chat:
                yield agent_chat
            return
        if store is not None and is_postgres(store) and config.chat.backend == "embedded":
            # users, rooms, messages and memories in the runtime's PostgreSQL database
            async with _open_pg_embedded(config, store, llm, embeddings) as svc:
                yield svc
            return
        async with open_embedded_chat_service(
                config.db_path, llm=None if remote else llm, timezone=config.chat.timezone,
                mask_llm=config.chat.mask_llm, glossary_path=config.chat.glossary_path,
                embeddings=embeddings,
                store=None if store is None else chat_store(store)) as local:
            if not remote:
                yield local
                return
            if config.chat.backend == "agent-chat":
                from .chat.agent_chat import open_agent_chat_service

                async with open_agent_chat_service(config.chat, local=local) as agent_chat:
                    yield agent_chat
                return
            from .chat.remote import open_remote_chat_service

            async with open_remote_chat_service(
                    config.chat, local=local, llm=llm,
                    max_connections=max(8, config.queues.max_concurrent_chats)) as svc:
                yield svc


async def _load_analyzer(config: Config) -> Any:
    import functools

    import trio

    from .chat.morph import KiwiAnalyzer

    glossary = {"glossary_path": config.chat.glossary_path} if config.chat.glossary_path else {}
    return await trio.to_thread.run_sync(functools.partial(KiwiAnalyzer.load, **glossary))


@asynccontextmanager
async def _open_pg_embedded(config: Config, store: Store, llm: LLM | None, embeddings: Any
                            ) -> AsyncIterator[EmbeddedChatService]:
    """The embedded ChatService on the runtime's PostgreSQL (``pg.chat_db``), with hybrid
    retrieval when ``embeddings`` (an ``Embedder``) is given."""
    from .pg.chat_db import open_pg_embedded_chat_service
    from .pg.store import PgStore

    assert isinstance(store, PgStore)
    if embeddings is not None:
        logger.info("chat: vector search on PostgreSQL: an exact scan of the visible vectors")
    async with open_pg_embedded_chat_service(
            store.database, analyzer=await _load_analyzer(config), llm=llm,
            timezone=config.chat.timezone, mask_llm=config.chat.mask_llm,
            embeddings=embeddings) as svc:
        yield svc


@asynccontextmanager
async def _open_pg_local(config: Config, store: Store) -> AsyncIterator[ChatService]:
    """The remote service's local store on the runtime's PostgreSQL (``pg.chat_local``)."""
    from .pg.chat_local import PgLocalChat
    from .pg.store import PgStore

    assert isinstance(store, PgStore)
    yield PgLocalChat(store.database, analyzer=await _load_analyzer(config),
                      timezone=config.chat.timezone, mask_llm=config.chat.mask_llm)


@asynccontextmanager
async def _maybe_embeddings(config: Config, remote: bool) -> AsyncIterator[Any]:
    """What memories are embedded with (embedded backend only: a remote backend searches its
    own memories): the EMBEDDINGS_BASE_URL endpoint when set, else the sentence encoder that
    ships in the wheel (``chat.local_embeddings``) unless MCHAT_LOCAL_EMBEDDINGS=off; none
    when it cannot load (logged: the search stays lexical)."""
    if remote:
        yield None
        return
    if config.chat.embeddings_base_url:
        from .chat.embeddings import open_embeddings

        async with open_embeddings(config.chat) as client:
            yield client
        return
    if not config.chat.local_embeddings:
        yield None
        return
    from .chat.local_embeddings import LocalEmbedder

    try:
        embedder = await trio.to_thread.run_sync(LocalEmbedder.load)
    except ChatServiceError as exc:
        logger.warning("chat: the local sentence encoder did not load (%s); the search stays "
                       "lexical", exc)
        yield None
        return
    logger.info("chat: local sentence encoder %s loaded in %.1f s", embedder.model,
                embedder.load_seconds)
    yield embedder


@asynccontextmanager
async def _maybe(cm: AbstractAsyncContextManager[LLM] | None) -> AsyncIterator[LLM | None]:
    if cm is None:
        yield None
    else:
        async with cm as value:
            yield value
