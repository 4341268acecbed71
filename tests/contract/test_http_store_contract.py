"""The HTTP surface's store calls on both backends, through the runtime's store
(``storage_backend.open_runtime_store``): the admin API, health, metrics and webhook inbox name
the SQLite functions, and on PostgreSQL ``PgStore`` runs their twins (``pg/store.py``).
Same calls, same answers; on PostgreSQL a SQLite function without a twin is refused, and
every SQLite function the HTTP surface and ``app.py`` pass to the store has one."""

from __future__ import annotations

import ast
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import mchat_actors
from mchat_actors import mapping, outbox, posts, retry_queue, store, webhook_inbox
from mchat_actors.config import ChatConfig, Config, MattermostConfig
from mchat_actors.errors import StoreError
from mchat_actors.http import outbox_admin
from mchat_actors.messages import PostCreated
from mchat_actors.pg.store import SQLITE_MODULES, PgStore, twins
from mchat_actors.pg.url import parse_database_url
from mchat_actors.storage_backend import open_runtime_store, repositories_for, retry_queue_for
from mchat_actors.store import Store

from .helpers import BACKENDS, post, reply


@pytest.fixture(params=BACKENDS)
async def runtime_store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Store]:
    url = None if request.param == "sqlite" else parse_database_url(
        request.getfixturevalue("pg_url"))
    config = Config(mattermost=MattermostConfig(url="http://mm.test", token="t"),
                    chat=ChatConfig(backend="embedded" if url is None else "remote"),
                    db_path=str(tmp_path / "rt.db"), database_url=url)
    async with open_runtime_store(config) as opened:
        assert isinstance(opened, PgStore) == (url is not None)
        yield opened


async def test_outbox_admin_calls_answer_alike(runtime_store: Store) -> None:
    s, repos = runtime_store, repositories_for(runtime_store)
    ids = await s.run(repos.outbox.enqueue_replies, [reply("k1"), reply("k2"), reply("k3", "d")],
                      max_chars=100)
    await s.run(repos.outbox.mark_failed, ids[1], error="403 forbidden")
    box = await s.run(outbox_admin.overview)
    assert box["counts"]["pending"] == 2 and box["counts"]["failed"] == 1
    assert 0 <= box["oldest_pending_age_s"] < 60
    [failed] = await s.run(outbox_admin.list_rows, "failed", limit=10)
    assert (failed["id"], failed["reply_key"], failed["last_error"]) == (
        ids[1], "k2", "403 forbidden")
    pending = await s.run(outbox_admin.list_rows, "pending", limit=10)
    assert [r["id"] for r in pending] == [ids[0], ids[2]]
    assert await s.run(outbox_admin.retry, ids[1], remote_addr="10.1.2.3") == "requeued"
    assert await s.run(outbox_admin.retry, ids[1], remote_addr="10.1.2.3") == "pending"
    assert await s.run(outbox_admin.retry, 999_999, remote_addr="10.1.2.3") == "not_found"
    row = await s.run(outbox.get_row, ids[1])
    assert row is not None and row.status == "pending" and row.reply_key == "k2"
    [entry] = await s.run(outbox_admin.recent_audit, limit=5)
    assert (entry["action"], entry["target"], entry["remote_addr"]) == (
        "outbox.retry", str(ids[1]), "10.1.2.3")


async def test_retry_queue_admin_and_health_answer_alike(runtime_store: Store) -> None:
    s = runtime_store
    assert await s.run(retry_queue.health) == {"pending": 0, "channels": 0,
                                               "oldest_pending_age_s": None}
    q = retry_queue_for(s)
    for n, channel in ((1, "c"), (2, "c"), (3, "d")):
        assert await q.park(PostCreated(post=post(n, channel)), attempts=1, error="503",
                            next_attempt_at=time.time() + 60)
    health = await s.run(retry_queue.health)
    assert (health["pending"], health["channels"]) == (3, 2)
    listing = await s.run(retry_queue.listing, limit=10)
    first = next(r for r in listing if r["post_id"] == "p1")
    assert await s.run(retry_queue.retry_now, first["id"], remote_addr="a") == "requeued"
    assert await s.run(retry_queue.discard, first["id"], remote_addr="a") == "discarded"
    assert await s.run(retry_queue.discard, first["id"], remote_addr="a") == "already discarded"
    assert await s.run(retry_queue.retry_now, 999_999, remote_addr="a") == "not_found"
    assert await s.run(retry_queue.counts) == {"pending": 2, "discarded": 1}
    assert await s.run(posts.is_post_seen, "p1") and not await s.run(posts.is_post_seen, "p2")
    actions = [e["action"] for e in await s.run(outbox_admin.recent_audit, limit=5)]
    assert actions == ["retry_queue.discard", "retry_queue.retry"]


async def test_mapping_state_and_webhook_inbox_calls_answer_alike(runtime_store: Store) -> None:
    s, repos = runtime_store, repositories_for(runtime_store)
    await s.run(repos.mapping.insert_channel, channel_id="c1", team_id="t", name="quality",
                display_name="Quality", channel_type="O", room_id="room-1")
    await s.run(repos.mapping.insert_user, user_id="u1", username="kim", email=None,
                agent_user_id="agent-u1", matched_by="created")
    row = await s.run(mapping.get_channel, "c1")
    assert row is not None and row["agent_room_id"] == "room-1"
    assert [r["mchat_channel_id"] for r in await s.run(mapping.list_channels)] == ["c1"]
    assert [r["mchat_username"] for r in await s.run(mapping.list_users)] == ["kim"]
    await s.run(store.audit, actor="admin", action="mapping.channel.sync", target="c1")
    await s.set_state("k", "v1")
    assert await s.get_state("k") == "v1" and await s.run(store.get_state, "k") == "v1"
    await s.run(store.set_state, "k", "v2")
    assert await s.run(repos.state.get_state, "k") == "v2"
    assert await s.is_writable()
    await s.run(webhook_inbox.keep, "p9", {"text": "@ai 질문", "token": "hook-SECRET"}, "json",
                now=100.0)
    kept = await s.run(webhook_inbox.pending, received_before=200.0)
    assert kept == [({"text": "@ai 질문"}, "json")]


@pytest.mark.pg
async def test_a_sqlite_function_without_a_twin_is_refused(pg_url: str) -> None:
    from mchat_actors.pg.database import open_database

    async with open_database(pg_url) as db:
        s = PgStore(db)
        with pytest.raises(StoreError, match="no PostgreSQL twin"):
            await s.run(outbox.enqueue_replies, [reply("k")], max_chars=100)
        with pytest.raises(StoreError, match="no PostgreSQL twin"):
            await s.read(retry_queue.park, PostCreated(post=post(1)), attempts=1, error="",
                         next_attempt_at=0.0, now=0.0)
        assert await s.run(outbox_admin.overview)  # a twin runs


def _store_calls(path: Path) -> list[tuple[str, str]]:
    """(module alias, function) of every ``<x>.store.run/read(<alias>.<fn>, ...)`` and
    ``store.run/read(...)`` call in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("run", "read") and node.args):
            target = node.func.value
            owner = target.attr if isinstance(target, ast.Attribute) else getattr(
                target, "id", "")
            arg = node.args[0]
            if owner == "store" and isinstance(arg, ast.Attribute) and isinstance(
                    arg.value, ast.Name):
                found.append((arg.value.id, arg.attr))
            elif owner == "store" and isinstance(arg, ast.Name):
                found.append(("", arg.id))
    return found


def test_every_sqlite_function_the_http_surface_stores_with_has_a_twin() -> None:
    root = Path(mchat_actors.__file__).parent
    modules = {"mapping": mapping, "outbox": outbox, "posts": posts,
               "retry_queue": retry_queue, "webhook_inbox": webhook_inbox,
               "outbox_admin": outbox_admin, "store": store}
    known = twins()
    checked = []
    for path in [*sorted((root / "http").glob("*.py")), root / "app.py"]:
        for alias, name in _store_calls(path):
            module = modules.get(alias) if alias else (
                store if name in ("audit", "get_state", "set_state") else None)
            if module is None:
                continue
            fn = getattr(module, name)
            assert fn.__module__ in SQLITE_MODULES
            assert fn in known, f"{path.name}: {alias}.{name} has no PostgreSQL twin"
            checked.append(name)
    assert {"overview", "list_rows", "retry", "health", "keep", "pending", "audit",
            "get_channel"} <= set(checked)  # the scan sees the calls it must see
