"""Black box (issue #15, fenced writes): two ``mchat-actors serve`` replicas on one PostgreSQL
database, a steady stream of questions in 12 channels; one replica is frozen (SIGSTOP, as a
long GC pause or a stalled VM would) past its lease, the other takes its channels over, then
the frozen one wakes (SIGCONT) with whatever it had in flight. Every question is answered
exactly once and in order per channel, the budget holds, the woken replica serves again and
both stop cleanly. Whether the frozen replica had a write in flight depends on the moment
of the SIGSTOP (in the runs so far it had none: no "lease is lost" in the log), so this test
checks the freeze and wake-up end to end, not the fence itself: the deterministic test of a
paused replica's refused commit and claim is ``tests/pg/test_fence.py``."""

from __future__ import annotations

import signal
from collections import defaultdict
from typing import Any

import pytest
import trio

from mchat_actors.testing import FakeMattermost
from mchat_actors.testing.fake_agent_api import FakeAgentAPI
from tests.pg.test_budget_share import worst_window
from tests.pg.test_replicas_serve import LIMIT, SEED, TTL, UNOWNED, owners, scalar
from tests.pg.test_serve_pg import KEY, pg_env, start
from tests.scenarios.harness import replies_to, wait_until
from tests.scenarios.test_processes import START_S, killed, stop

pytestmark = [pytest.mark.pg, pytest.mark.serve, pytest.mark.slow]

CHANNELS = [f"line-{n:02d}" for n in range(12)]
PAUSE_SEED: dict[str, Any] = {**SEED, "channels": [c for c in SEED["channels"]
                                                    if c["name"] in CHANNELS]}
REPLICAS = {"MCHAT_REPLICAS": "on", "MCHAT_LEASE_TTL_S": str(TTL), "MCHAT_LEASE_RENEW_S": "1",
            "MCHAT_LEASE_BUCKETS": "6", "MCHAT_RATE_LIMIT": str(LIMIT)}


async def test_a_frozen_replica_wakes_after_its_channels_were_taken_over(tmp_path, pg_url):
    async with FakeAgentAPI(api_key=KEY, rate_per_min=6000) as agent, \
            FakeMattermost(seed=PAUSE_SEED) as mm:
        env = {**pg_env(mm, tmp_path / "local.db", pg_url, agent), **REPLICAS}
        log = tmp_path / "serve.log"
        procs = [await start(env, log) for _ in range(2)]
        asked: dict[str, list[str]] = defaultdict(list)
        try:
            await wait_until(lambda: owners(pg_url) == 2, timeout=START_S * 2)
            stop_asking = trio.Event()

            async def ask_steadily() -> None:
                n = 0
                while not stop_asking.is_set():
                    channel = CHANNELS[n % len(CHANNELS)]
                    post = await mm.post_as("kim", channel, f"@ai {channel} 재고 몇 개 남았어? {n}")
                    asked[channel].append(str(post["id"]))
                    n += 1
                    await trio.sleep(0.3)

            frozen = procs[0]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask_steadily)
                await trio.sleep(3)
                frozen.send_signal(signal.SIGSTOP)
                pattern = f"%-{frozen.pid}-%"
                with trio.fail_after(TTL + 10):  # the other replica owns every bucket
                    while scalar(pg_url, UNOWNED, pattern):  # noqa: ASYNC110
                        await trio.sleep(0.1)
                await trio.sleep(2)
                frozen.send_signal(signal.SIGCONT)  # wakes with what it had in flight
                await trio.sleep(5)
                stop_asking.set()
            ids = [p for c in CHANNELS for p in asked[c]]
            with trio.move_on_after(60):
                await wait_until(lambda: all(replies_to(mm, p) for p in ids), timeout=60)
            await trio.sleep(2.0)  # a second answer would show up now
            counts = {p: len(replies_to(mm, p)) for p in ids}
            assert [p for p, n in counts.items() if n != 1] == [], log.read_text()[-3000:]
            for channel in CHANNELS:
                order = [int(replies_to(mm, p)[0]["create_at"]) for p in asked[channel]]
                assert order == sorted(order), channel
            bot = [r.received for r in mm.request_log if r.user_id == mm.bot.id]
            assert worst_window(bot) <= LIMIT
            assert scalar(pg_url, "SELECT count(*) FROM outbox WHERE status <> 'sent'") == 0
            assert owners(pg_url) == 2  # the woken replica serves again
        finally:
            statuses = [await stop(p) for p in procs if p.returncode is None]
            for proc in procs:
                await killed(proc)
    assert statuses == [0, 0], log.read_text()[-3000:]
