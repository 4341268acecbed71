"""The whole service on PostgreSQL while the database server goes away and comes back (its own
server: the session's stays up). Posts arriving during the outage are answered once the server
is back, exactly once, and every post is recorded once; health says the database is not
writable meanwhile; the runtime takes its one-process lock again after the restart."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest
import trio

from mchat_actors.pg.single import LOCK_KEY, DatabaseInUse
from mchat_actors.storage_backend import open_runtime_store
from mchat_actors.testing import FakeMattermost
from tests.chat.test_remote_e2e import backend_env, twin
from tests.scenarios.harness import replies_to, running_bot, wait_until

from .server import PgServer

pytestmark = pytest.mark.pg


def _lock_taken(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                           (LOCK_KEY,)).fetchone()
        return not (row and row[0])  # taken by us: freed when this connection closes


def _count(url: str, sql: str, *params: object) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, params).fetchone()
        return int(row[0]) if row else 0


@pytest.mark.slow
async def test_a_database_outage_loses_nothing_and_answers_once(tmp_path: Any) -> None:
    server = PgServer()
    try:
        await trio.to_thread.run_sync(server.start)
        url = server.url()
        async with twin() as fake, FakeMattermost() as mm, \
                running_bot(mm, str(tmp_path / "unused.db"), MCHAT_DATABASE_URL=url,
                            **backend_env("remote", fake)) as rt:
            first = await mm.post_as("kim", "quality", "@ai /remember X부품 불량률 12%")
            await wait_until(lambda: replies_to(mm, str(first["id"])), timeout=15)
            await trio.to_thread.run_sync(server.stop_process)
            ids, plain = [], []
            for i in range(3):
                asked = await mm.post_as("lee", "quality", f"@ai X부품 불량률 질문 {i}")
                ids.append(str(asked["id"]))
                plain.append(str((await mm.post_as("kim", "quality", f"잡담 {i}"))["id"]))
            async with httpx.AsyncClient(base_url=rt.http_url) as client:
                health = await client.get("/mchat/health")
            assert health.status_code == 503
            assert health.json()["database"]["writable"] is False
            await trio.sleep(8.0)  # longer than the dispatcher's retries (0.5 + 1 + 2 s)
            assert not any(replies_to(mm, p) for p in ids)
            assert await trio.to_thread.run_sync(server._launch)
            await wait_until(lambda: all(replies_to(mm, p) for p in ids), timeout=90)
            every = [str(first["id"]), *ids, *plain]
            await wait_until(lambda: _count(url, "SELECT count(*) FROM mchat_posts WHERE"
                                            " post_id = ANY(%s)", every) == len(every),
                             timeout=30)
            await trio.sleep(1.0)  # a duplicate would show up now
            assert [len(replies_to(mm, p)) for p in ids] == [1, 1, 1]
            answers = [replies_to(mm, p)[0]["message"] for p in ids]
            assert all("12%" in a for a in answers), answers
            assert _count(url, "SELECT count(*) FROM chat_messages WHERE mchat_post_id ="
                          " ANY(%s)", every) == len(every)
            # the runtime's lock was lost with the server and is taken again: a second
            # runtime on this database is refused again
            await wait_until(lambda: _lock_taken(url), timeout=20)
            with pytest.raises(DatabaseInUse):
                async with open_runtime_store(rt.config):
                    pytest.fail("a second runtime opened the database")
    finally:
        await trio.to_thread.run_sync(server.stop)
