"""Black box: ``mchat-actors serve`` as a real process with MCHAT_DATABASE_URL on the test
PostgreSQL server, the fake Mattermost, and the AI Memory Agent twin as the remote
ChatService. A burst of questions, a second process refused (one runtime per database), SIGKILL
mid-burst, a restart: every question answered exactly once, every post recorded once, the
/remember applied once; the password in no log line. The embedded ChatService (the default) on
PostgreSQL, and agent-chat on PostgreSQL. And the start-up error of an unreachable database
(exit 1): one clear line without the password."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest
import trio

from mchat_actors.testing import FakeMattermost
from mchat_actors.testing.fake_agent_api import FakeAgentAPI
from tests.scenarios.harness import replies_to, wait_until
from tests.scenarios.test_processes import (
    SERVE,
    START_S,
    bot_connected,
    serve_env,
    stop,
)

pytestmark = pytest.mark.pg
KEY = "agent-key-serve-SECRET"


def pg_env(mm: FakeMattermost, local: Path, pg_url: str, agent: FakeAgentAPI | None
           ) -> dict[str, str]:
    remote = {} if agent is None else {
        "CHAT_BACKEND": "remote", "CHAT_BACKEND_URL": agent.url, "CHAT_BACKEND_API_KEY": KEY,
        "CHAT_BACKEND_AGENT_ID": "agent-1", "CHAT_BACKEND_RATE_PER_MIN": "6000"}
    return serve_env(mm, local, MCHAT_DATABASE_URL=pg_url, **remote)


async def start(env: dict[str, str], log: Path) -> trio.Process:
    out = open(log, "ab")  # noqa: SIM115, ASYNC230 - the process owns it until it exits
    return await trio.lowlevel.open_process(SERVE, env=env, stdout=out, stderr=subprocess.STDOUT)


def password_of(pg_url: str) -> str:
    return pg_url.split("//", 1)[1].split("@", 1)[0].split(":", 1)[1]


def scalar(pg_url: str, sql: str, *params: object) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(sql, params).fetchone()
        return int(row[0]) if row else 0


@pytest.mark.slow
@pytest.mark.serve
async def test_kill_9_on_postgresql_loses_nothing_and_answers_once(tmp_path, pg_url):
    local, log = tmp_path / "chat-local.db", tmp_path / "serve.log"
    async with FakeAgentAPI(api_key=KEY, rate_per_min=6000) as agent, \
            FakeMattermost() as mm:
        env = pg_env(mm, local, pg_url, agent)
        proc = await start(env, log)
        try:
            await wait_until(lambda: bot_connected(mm), timeout=START_S)
            remember = await mm.post_as("kim", "quality", "@ai /remember X부품 불량률 12%")
            await wait_until(lambda: replies_to(mm, str(remember["id"])), timeout=20)
            # a second process on the same database is refused (one runtime per database)
            with trio.fail_after(START_S):
                second = await trio.run_process(SERVE, env=env, capture_stdout=True,
                                                capture_stderr=True, check=False)
            assert second.returncode == 1, second.stderr.decode()[-2000:]
            assert "another mchat-actors process" in second.stderr.decode()
            ids, plain = [], []
            for i in range(15):
                for channel in ("town-square", "quality"):
                    ids.append(str((await mm.post_as("lee", channel,
                                                     f"@ai X부품 불량률 질문 {i}"))["id"]))
                    plain.append(str((await mm.post_as("kim", channel, f"잡담 {i}"))["id"]))
            await wait_until(lambda: sum(bool(replies_to(mm, p)) for p in ids) >= 4, timeout=30)
            proc.kill()  # SIGKILL: no cleanup at all; the restart below needs its lock freed
            await proc.wait()
            answered_before = sum(bool(replies_to(mm, p)) for p in ids)
            assert answered_before < len(ids), "the burst finished before the kill"
            mark = len(mm.request_log)
            proc = await start(env, log)
            await wait_until(lambda: bot_connected(mm, mark), timeout=START_S)
            await wait_until(lambda: all(replies_to(mm, p) for p in ids), timeout=60)
            every = [str(remember["id"]), *ids, *plain]
            await wait_until(lambda: scalar(pg_url, "SELECT count(*) FROM mchat_posts WHERE "
                                            "post_id = ANY(%s)", every) == len(every),
                             timeout=30)
            await trio.sleep(1.0)  # a duplicate would show up now
            assert [len(replies_to(mm, p)) for p in ids] == [1] * len(ids), \
                log.read_text()[-3000:]
            # quality is public: its memory is team-wide, town-square's answers have it too
            missing = [replies_to(mm, p)[0]["message"] for p in ids
                       if "12%" not in replies_to(mm, p)[0]["message"]]
            assert missing == [], missing[:3]
            assert len(replies_to(mm, str(remember["id"]))) == 1
            assert [d.content for d in agent.world.data].count("X부품 불량률 12%") == 1
            assert scalar(pg_url, "SELECT count(*) FROM outbox WHERE status <> 'sent'") == 0
            assert scalar(pg_url, "SELECT count(*) FROM outbox") == len(ids) + 1
            assert scalar(pg_url, "SELECT count(*) FROM mchat_retry") == 0
            assert not local.exists()  # the remote service's local store is on PostgreSQL
        finally:
            status = await stop(proc)
    text = log.read_text()
    assert status == 0, text[-3000:]
    assert "[redacted]@127.0.0.1:" in text  # the start-up log says where
    assert password_of(pg_url) not in text and KEY not in text


@pytest.mark.slow
@pytest.mark.serve
async def test_the_embedded_chat_service_on_postgresql(tmp_path, pg_url):
    """The default configuration (CHAT_BACKEND=embedded) with MCHAT_DATABASE_URL: /remember,
    a question in other words answered once with the fact; a private channel's memory not
    shown in another channel, even to its member; everything in PostgreSQL, no local file."""
    local, log = tmp_path / "chat-local.db", tmp_path / "serve.log"
    async with FakeMattermost() as mm:
        proc = await start(pg_env(mm, local, pg_url, None), log)
        try:
            await wait_until(lambda: bot_connected(mm), timeout=START_S)
            remember = await mm.post_as("kim", "quality", "@ai /remember X부품 불량률 12%")
            await wait_until(lambda: replies_to(mm, str(remember["id"])), timeout=30)
            secret = await mm.post_as("kim", "defects",
                                      "@ai /remember 신제품 코드명은 블루버드, 출시일 3월 2일")
            await wait_until(lambda: replies_to(mm, str(secret["id"])), timeout=30)
            asked = await mm.post_as("lee", "quality", "@ai X부품 불량 비율이 얼마였지?")
            leak = await mm.post_as("kim", "town-square", "@ai 신제품 코드명 출시일 언제야?")
            inside = await mm.post_as("lee", "defects", "@ai 블루버드 출시일 언제였지?")
            plain = await mm.post_as("lee", "quality", "내일 회의는 3층에서 합니다")
            posts = [str(p["id"]) for p in (asked, leak, inside)]
            await wait_until(lambda: all(replies_to(mm, p) for p in posts), timeout=30)
            await wait_until(lambda: scalar(pg_url, "SELECT count(*) FROM chat_messages WHERE"
                                            " mchat_post_id = %s", str(plain["id"])) == 1,
                             timeout=30)  # a plain post: stored, not answered
            await trio.sleep(1.0)  # a duplicate would show up now
            assert [len(replies_to(mm, p)) for p in posts] == [1, 1, 1]
            assert replies_to(mm, str(plain["id"])) == []
            answer, leaked, inner = (replies_to(mm, p)[0]["message"] for p in posts)
            assert "12%" in answer, answer
            assert "블루버드" not in leaked and "3월 2일" not in leaked, leaked
            assert "3월 2일" in inner, inner
            assert scalar(pg_url, "SELECT count(*) FROM memories WHERE valid_to IS NULL"
                          " AND scope = 'room'") == 2
            assert scalar(pg_url, "SELECT count(*) FROM chat_messages WHERE role = 'assistant'"
                          ) == 5
            assert not local.exists()  # nothing in a local SQLite file
        finally:
            status = await stop(proc)
    text = log.read_text()
    assert status == 0, text[-3000:]
    assert password_of(pg_url) not in text


@pytest.mark.slow
@pytest.mark.serve
async def test_agent_chat_on_postgresql(tmp_path, pg_url):
    """CHAT_BACKEND=agent-chat with MCHAT_DATABASE_URL: /remember and a question go through
    the agent's own chat pipeline, each answered once; the local store and the mapping tables
    (agent_chat_*) in PostgreSQL, nothing in a local SQLite file."""
    from tests.chat.test_remote_agent_chat import BOT_EMAIL, BOT_PASSWORD, new_world

    local, log = tmp_path / "chat-local.db", tmp_path / "serve.log"
    async with FakeAgentAPI(world=new_world()) as agent, FakeMattermost() as mm:
        env = pg_env(mm, local, pg_url, None)
        env.update(CHAT_BACKEND="agent-chat", CHAT_BACKEND_URL=agent.url,
                   CHAT_AGENT_SERVICE_EMAIL=BOT_EMAIL, CHAT_AGENT_SERVICE_PASSWORD=BOT_PASSWORD)
        proc = await start(env, log)
        try:
            await wait_until(lambda: bot_connected(mm), timeout=START_S)
            remember = await mm.post_as("kim", "quality", "@ai /remember X부품 불량률 12%")
            await wait_until(lambda: replies_to(mm, str(remember["id"])), timeout=30)
            asked = await mm.post_as("lee", "quality", "@ai X부품 불량률 몇 %야?")
            await wait_until(lambda: replies_to(mm, str(asked["id"])), timeout=30)
            await trio.sleep(1.0)  # a duplicate would show up now
            assert len(replies_to(mm, str(remember["id"]))) == 1
            [answer] = replies_to(mm, str(asked["id"]))
            assert "12%" in answer["message"], answer["message"]
            assert scalar(pg_url, "SELECT count(*) FROM agent_chat_posts WHERE state = 'sent'"
                          " AND post_id = ANY(%s)", [str(remember["id"]), str(asked["id"])]) == 2
            assert scalar(pg_url, "SELECT count(*) FROM agent_chat_rooms") >= 1
            assert scalar(pg_url, "SELECT count(*) FROM chat_messages WHERE mchat_post_id = %s",
                          str(asked["id"])) == 1
            assert not local.exists()  # nothing in a local SQLite file
        finally:
            status = await stop(proc)
    text = log.read_text()
    assert status == 0, text[-3000:]
    assert password_of(pg_url) not in text and BOT_PASSWORD not in text


@pytest.mark.serve
async def test_an_unreachable_database_stops_with_one_clear_line(tmp_path, pg_url):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    host = pg_url.split("@", 1)[1].split("/", 1)[0]
    dead = pg_url.replace(host, f"127.0.0.1:{port}").replace("connect_timeout=10",
                                                            "connect_timeout=2")
    async with FakeAgentAPI(api_key=KEY) as agent, FakeMattermost() as mm:
        env = pg_env(mm, tmp_path / "x.db", dead, agent)
        with trio.fail_after(60):
            done = await trio.run_process(SERVE, env=env, capture_stdout=True,
                                          capture_stderr=True, check=False)
    err = done.stderr.decode()
    assert done.returncode == 1, err[-2000:]
    assert "StoreUnavailable" in err and "postgresql://[redacted]@127.0.0.1:" in err
    assert "Traceback" not in err and password_of(pg_url) not in err + done.stdout.decode()
