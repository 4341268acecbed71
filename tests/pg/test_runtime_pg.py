"""The whole service (``app.run``) with MCHAT_DATABASE_URL: the runtime's tables and the remote
ChatService's local store on the test PostgreSQL server, the AI Memory Agent twin for
memories, the fake Mattermost over real sockets. Answers once, records on PostgreSQL (no local
SQLite file), a public channel's memory is team-wide as on SQLite, and health and the admin
page show the database without its password."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from mchat_actors.testing import FakeMattermost
from tests.chat.test_remote_e2e import ask, backend_env, twin
from tests.scenarios.harness import replies_to, running_bot, wait_until

pytestmark = pytest.mark.pg


def _count(pg_url: str, sql: str, *params: object) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(sql, params).fetchone()
        return int(row[0]) if row else 0


async def test_the_runtime_runs_on_postgresql_with_the_remote_chat_service(
        tmp_path: Any, pg_url: str) -> None:
    local = tmp_path / "chat-local.db"
    async with twin() as fake, FakeMattermost() as mm, \
            running_bot(mm, str(local), MCHAT_DATABASE_URL=pg_url, MCHAT_HTTP_LISTEN="127.0.0.1:0",
                        MCHAT_ADMIN_TOKEN="adm-token", **backend_env("remote", fake)) as rt:
        saved = await ask(mm, "kim", "@ai /remember X부품 불량률 12%")
        assert "X부품 불량률 12%" in saved
        question = await mm.post_as("lee", "quality", "@ai 요즘 X부품 불량 얼마나 나와?")
        await wait_until(lambda: replies_to(mm, str(question["id"])), timeout=15)
        plain = await mm.post_as("kim", "quality", "그냥 잡담입니다")
        await wait_until(lambda: _count(pg_url, "SELECT count(*) FROM mchat_posts WHERE "
                                        "post_id = %s", plain["id"]) == 1, timeout=10)
        [answer] = replies_to(mm, str(question["id"]))
        assert "12%" in answer["message"]
        # a public channel's memory is team-wide (the rooms' teams come from the channel
        # mapping, in the same database); a private channel's stays there
        elsewhere = await ask(mm, "lee", "@ai X부품 불량률 몇 %야?", channel="town-square")
        assert "12%" in elsewhere
        await ask(mm, "kim", "@ai /remember 신제품 출시일은 3월 2일", channel="defects")
        assert "3월 2일" not in await ask(mm, "kim", "@ai 신제품 출시일이 언제였지?",
                                         channel="town-square")
        async with httpx.AsyncClient(base_url=rt.http_url) as client:
            health = (await client.get("/mchat/health")).json()
            admin = {"Authorization": "Bearer adm-token"}
            status = (await client.get("/api/v1/mchat/status", headers=admin)).json()
            outbox = (await client.get("/api/v1/mchat/outbox", headers=admin)).json()
        password = pg_url.split("//", 1)[1].split("@", 1)[0].split(":", 1)[1]
        assert health["database"]["backend"] == "postgresql" and health["database"]["writable"]
        assert health["database"]["where"].startswith("postgresql://mchat:[redacted]@127.0.0.1:")
        assert status["config"]["database"]["backend"] == "postgresql"
        assert outbox["counts"]["failed"] == 0 and outbox["failed"] == []
        assert password not in str(health) + str(status) + str(outbox)
        # the runtime's rows are on PostgreSQL: three posts handled, two replies sent
        assert _count(pg_url, "SELECT count(*) FROM outbox WHERE status = 'sent'") == 5
        assert _count(pg_url, "SELECT count(*) FROM mchat_posts") >= 3
    # ... and nothing in a local SQLite file: the remote service's local store (users, rooms,
    # members, messages) is on PostgreSQL too (pg.chat_local)
    assert not local.exists()
    assert _count(pg_url, "SELECT count(*) FROM chat_messages") >= 3
