"""Two replicas (``app.run`` twice, MCHAT_REPLICAS=on) on one PostgreSQL database and one
fake Mattermost, short leases: both start (no "one process per database" refusal), split the
channel buckets, each question is answered exactly once (the replica that does not own a
channel drops its events), health and the admin API show the replica without the database
password; when one stops, the other takes every channel and answers there."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from mchat_actors.testing import FakeMattermost
from tests.chat.test_remote_e2e import backend_env, twin
from tests.scenarios.harness import replies_to, running_bot, wait_until

pytestmark = pytest.mark.pg

CHANNELS = [f"line-{n}" for n in range(6)]
SEED: dict[str, Any] = {
    "team": {"name": "qa", "display_name": "QA"},
    "bot": {"username": "mchat-bot", "email": "bot@example.com"},
    "users": [{"username": "kim", "email": "kim@example.com"}],
    "channels": [{"name": c, "display_name": c, "type": "O", "members": "*"}
                 for c in CHANNELS],
}
LEASES = {"MCHAT_REPLICAS": "on", "MCHAT_LEASE_TTL_S": "2", "MCHAT_LEASE_RENEW_S": "0.5",
          "MCHAT_LEASE_BUCKETS": "8"}


async def ask_everywhere(mm: FakeMattermost, round_: int) -> list[str]:
    ids = []
    for c in CHANNELS:
        post = await mm.post_as("kim", c, f"@ai {c} 라인 {round_}번째 질문입니다, 불량률은?")
        ids.append(str(post["id"]))
    return ids


async def test_two_replicas_share_the_channels_and_answer_each_question_once(
        tmp_path: Any, pg_url: str) -> None:
    async with twin() as fake, FakeMattermost(seed=SEED) as mm:
        env = {"MCHAT_DATABASE_URL": pg_url, "MCHAT_HTTP_LISTEN": "127.0.0.1:0",
               "MCHAT_ADMIN_TOKEN": "adm-token", **LEASES, **backend_env("remote", fake)}
        async with running_bot(mm, str(tmp_path / "a.db"), **env) as a:
            async with running_bot(mm, str(tmp_path / "b.db"), **env) as b:
                assert a.replica is not None and b.replica is not None
                oa, ob = a.replica.ownership, b.replica.ownership
                await wait_until(lambda: len(oa.held()) == 4 and len(ob.held()) == 4,
                                 timeout=10)
                first = await ask_everywhere(mm, 1)
                await wait_until(lambda: all(replies_to(mm, p) for p in first), timeout=30)
                await trio.sleep(1.0)  # a second answer would come within this
                assert [len(replies_to(mm, p)) for p in first] == [1] * len(first)
                # each event seen by both sockets, handled by one: the other dropped it
                assert oa.stats.dropped_events > 0 and ob.stats.dropped_events > 0
                async with httpx.AsyncClient(base_url=b.http_url) as client:
                    health = (await client.get("/mchat/health")).json()
                    status = (await client.get("/api/v1/mchat/status",
                                               headers={"Authorization": "Bearer adm-token"})
                              ).json()
                password = pg_url.split("//", 1)[1].split("@", 1)[0].split(":", 1)[1]
                assert health["replica"]["replica_id"] == b.replica.replica_id
                assert health["replica"]["leases_held"] == 4
                assert health["replica"]["database"].startswith("postgresql://mchat:[redacted]@")
                assert status["replica"]["replica_id"] == b.replica.replica_id
                # one budget: the two replicas' shares add up to the token's limit
                assert a.replica.budget is not None and b.replica.budget is not None
                # (the shares follow demand: some can be in transit, given back by one and
                # not yet taken by the other, but never more than the limit, and once the
                # demand settles every share is held again)
                ba, bb = a.replica.budget, b.replica.budget
                limit = ba.limit
                assert ba.held() + bb.held() <= limit
                await wait_until(lambda: ba.held() + bb.held() == limit, timeout=15)
                assert min(ba.held(), bb.held()) > 0
                # health shows b's shares (read again: they may move between two reads)
                shown = []
                async with httpx.AsyncClient(base_url=b.http_url) as client:
                    for _ in range(10):
                        held = bb.held()
                        shown.append((await client.get("/mchat/health")).json()
                                     ["replica"]["budget_shares"])
                        if shown[-1] == held == bb.held():
                            break
                        await trio.sleep(0.3)
                assert shown[-1] == bb.held(), shown
                assert password not in str(health) + str(status)
            # b stopped cleanly (leases given back): a owns everything and answers everywhere
            await wait_until(lambda: len(oa.held()) == 8, timeout=5)
            second = await ask_everywhere(mm, 2)
            await wait_until(lambda: all(replies_to(mm, p) for p in second), timeout=30)
            await trio.sleep(1.0)
            assert [len(replies_to(mm, p)) for p in first + second] == [1] * 12
