"""Black box (issue #15): three ``mchat-actors serve`` replicas (MCHAT_REPLICAS=on, short
leases) on one PostgreSQL database, the fake Mattermost with 30 channels, the AI Memory Agent
twin; a steady stream of questions; one replica SIGKILLed, later a second. Every question is
answered exactly once, each channel's answers come in the order of its questions, the bot's
requests never exceed the limit in any 1 s window across the replicas (the fake server's
arrival times), and the dead replica's channels are owned again within lease time + 5 s."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import psycopg
import pytest
import trio

from mchat_actors.testing import FakeMattermost
from mchat_actors.testing.fake_agent_api import FakeAgentAPI
from tests.pg.test_budget_share import worst_window
from tests.pg.test_serve_pg import KEY, password_of, pg_env, start
from tests.scenarios.harness import replies_to, wait_until
from tests.scenarios.test_processes import START_S, killed, stop

pytestmark = [pytest.mark.pg, pytest.mark.serve, pytest.mark.slow]

CHANNELS = [f"line-{n:02d}" for n in range(30)]
SEED: dict[str, Any] = {
    "team": {"name": "qa", "display_name": "QA"},
    "bot": {"username": "mchat-bot", "email": "bot@example.com"},
    "users": [{"username": "kim", "email": "kim@example.com"}],
    "channels": [{"name": c, "display_name": c, "type": "O", "members": "*"}
                 for c in CHANNELS],
}
LIMIT, TTL = 10, 3.0
REPLICAS = {"MCHAT_REPLICAS": "on", "MCHAT_LEASE_TTL_S": str(TTL), "MCHAT_LEASE_RENEW_S": "1",
            "MCHAT_LEASE_BUCKETS": "12", "MCHAT_RATE_LIMIT": str(LIMIT)}
UNOWNED = ("SELECT count(*) FROM leases WHERE starts_with(resource, 'bucket:') AND (owner IS"
           " NULL OR expires_at <= extract(epoch FROM clock_timestamp()) OR owner LIKE %s)")


def scalar(pg_url: str, sql: str, *params: object) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(sql, params).fetchone()
        return int(row[0]) if row else 0


def owners(pg_url: str) -> int:
    if not scalar(pg_url, "SELECT count(*) FROM pg_tables WHERE tablename = 'leases'"):
        return 0  # not migrated yet
    return scalar(pg_url, "SELECT count(DISTINCT owner) FROM leases WHERE starts_with(resource,"
                  " 'bucket:') AND expires_at > extract(epoch FROM clock_timestamp())")


async def reowned_after_kill(proc: trio.Process, pg_url: str) -> float:
    """SIGKILL ``proc``; seconds until every bucket has a live owner other than it."""
    pattern = f"%-{proc.pid}-%"
    assert scalar(pg_url, "SELECT count(*) FROM leases WHERE owner LIKE %s", pattern) > 0
    proc.kill()
    killed_at = trio.current_time()
    await proc.wait()
    await trio.sleep(0.2)
    with trio.fail_after(TTL + 15):
        while scalar(pg_url, UNOWNED, pattern):  # noqa: ASYNC110
            await trio.sleep(0.1)
    return trio.current_time() - killed_at


async def test_three_replicas_lose_two_and_answer_every_question_once(tmp_path, pg_url):
    async with FakeAgentAPI(api_key=KEY, rate_per_min=6000) as agent, \
            FakeMattermost(seed=SEED) as mm:
        env = {**pg_env(mm, tmp_path / "local.db", pg_url, agent), **REPLICAS}
        log = tmp_path / "serve.log"
        procs = [await start(env, log) for _ in range(3)]
        asked: dict[str, list[str]] = defaultdict(list)  # channel -> question ids in order
        try:
            await wait_until(lambda: owners(pg_url) == 3, timeout=START_S * 2)
            stop_asking = trio.Event()

            async def ask_steadily() -> None:
                n = 0
                while not stop_asking.is_set():
                    channel = CHANNELS[n % len(CHANNELS)]
                    post = await mm.post_as("kim", channel, f"@ai {channel} 불량률 질문 {n}")
                    asked[channel].append(str(post["id"]))
                    n += 1
                    await trio.sleep(0.3)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask_steadily)
                await trio.sleep(5)
                first = await reowned_after_kill(procs[0], pg_url)
                await trio.sleep(4)
                second = await reowned_after_kill(procs[1], pg_url)
                await trio.sleep(4)
                stop_asking.set()
            ids = [p for c in CHANNELS for p in asked[c]]
            assert len(ids) >= 30
            with trio.move_on_after(60):
                await wait_until(lambda: all(replies_to(mm, p) for p in ids), timeout=60)
            missing = [(c, asked[c].index(p)) for c in CHANNELS for p in asked[c]
                       if not replies_to(mm, p)]
            if missing:
                lost = [asked[c][i] for c, i in missing]
                with psycopg.connect(pg_url) as conn:
                    rows = conn.execute("SELECT post_id, status, source FROM mchat_posts WHERE"
                                        " post_id = ANY(%s)", (lost,)).fetchall()
                    box = conn.execute("SELECT reply_key, status, channel_id FROM outbox WHERE"
                                       " split_part(reply_key, ':', 1) = ANY(%s)",
                                       (lost,)).fetchall()
                made = {p: int(mm.state.posts[p]["create_at"]) for p in lost}  # ms
                lines = [ln for ln in log.read_text().splitlines()
                         if "WARNING" in ln or "ERROR" in ln] + [str(made)]
                parked = scalar(pg_url, "SELECT count(*) FROM mchat_retry")
                raise AssertionError((missing, rows, box, parked, "\n".join(lines[-60:])))
            await trio.sleep(2.0)  # a second answer would show up now
            counts = [len(replies_to(mm, p)) for p in ids]
            assert counts == [1] * len(ids), log.read_text()[-3000:]
            for channel in CHANNELS:  # each channel's answers in its questions' order
                answers = [replies_to(mm, p)[0] for p in asked[channel]]
                order = [int(re.search(r"\d+", str(a["create_at"]))[0])  # type: ignore[index]
                         for a in answers]
                if order != sorted(order):
                    cid = str(mm.state.posts[asked[channel][0]]["channel_id"])
                    asks = [int(mm.state.posts[p]["create_at"]) for p in asked[channel]]
                    seen = [ln for ln in log.read_text().splitlines()
                            if cid in ln or any(p in ln for p in asked[channel])]
                    times = list(zip(asked[channel], asks, order, strict=True))
                    raise AssertionError((channel, cid, times, "\n".join(seen[-80:])))
            assert first <= TTL + 5 and second <= TTL + 5, (first, second)
            bot = [r.received for r in mm.request_log if r.user_id == mm.bot.id]
            if worst_window(bot) > LIMIT:  # which requests, when (trio and wall time)
                reqs = sorted((r for r in mm.request_log if r.user_id == mm.bot.id),
                              key=lambda r: r.received)
                at = next(i for i, r in enumerate(reqs) if worst_window(
                    [q.received for q in reqs[i:i + LIMIT + 1]]) > LIMIT)
                shown = [(round(r.received, 3), round(r.wall_time % 100, 3), r.method, r.path,
                          r.status) for r in reqs[max(0, at - 3):at + LIMIT + 4]]
                raise AssertionError((worst_window(bot), shown))
            assert scalar(pg_url, "SELECT count(*) FROM outbox WHERE status <> 'sent'") == 0
        finally:
            status = await stop(procs[2])
            for proc in procs:
                await killed(proc)
    text = log.read_text()
    assert status == 0, text[-3000:]
    assert password_of(pg_url) not in text and KEY not in text
