"""agent-chat's mapping tables on PostgreSQL (``pg.agent_chat_store``): every function of
``chat.agent_chat_store`` that takes a connection has a twin ``PgChatDatabase`` runs, with the
same signature (so a function added on SQLite only is caught here, not at a user's first
message). The tables themselves are exercised on PostgreSQL by every test of
``tests/chat/test_remote_agent_chat.py`` (parametrized over both backends)."""

from __future__ import annotations

import inspect

import pytest

from mchat_actors.chat import agent_chat_store
from mchat_actors.pg import agent_chat_store as pg_agent_chat
from mchat_actors.pg.chat_db import PgQueries, _twins

pytestmark = pytest.mark.pg


def test_every_sqlite_function_has_a_postgresql_twin(kiwi: object) -> None:
    twins = _twins(PgQueries(kiwi))  # type: ignore[arg-type]
    sqlite_functions = [getattr(agent_chat_store, name) for name in agent_chat_store.__all__
                        if "conn" in inspect.signature(getattr(agent_chat_store, name)).parameters]
    assert len(sqlite_functions) == 13
    for fn in sqlite_functions:
        twin = twins.get(fn)
        assert twin is getattr(pg_agent_chat, fn.__name__), fn.__name__
        assert list(inspect.signature(twin).parameters) == \
            list(inspect.signature(fn).parameters), fn.__name__
