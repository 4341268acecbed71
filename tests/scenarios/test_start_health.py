"""A real `mchat-actors serve` whose search index must be rebuilt at start (an upgrade of the
analyzer): /mchat/health answers 503 "starting" while Kiwi loads and the index is rebuilt, not
"connection refused", and 200 once the service runs."""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import trio

from mchat_actors.chat.analysis import normalize
from mchat_actors.chat.schema import connect
from mchat_actors.testing import FakeMattermost
from tests.scenarios.harness import wait_until
from tests.scenarios.test_processes import SERVE, _free_port, bot_connected, serve_env, stop

MEMORIES = 4_000  # a few seconds of re-indexing with Kiwi on this machine


def _database_indexed_by_another_analyzer(path: Path) -> None:
    """Memories whose index was built by the plain analyzer: Kiwi rebuilds it on open."""
    conn = connect(str(path))  # the plain analyzer: index_version plain-1
    rng = random.Random(3)
    words = "불량률 배포 회의 일정 공급사 납기 검사 금형 사출 라인 수율 클레임".split()
    now = int(time.time() * 1000)
    conn.execute("BEGIN")
    for i in range(MEMORIES):
        text = f"{rng.choice('XYZ')}{i}부품 {' '.join(rng.sample(words, 3))} {rng.randint(1, 99)}%"
        conn.execute("INSERT INTO memories (content, norm, scope, kind, room_id, author_id,"
                     " created_at, updated_at) VALUES (?, ?, 'room', 'remember', 'r1', 'u1',"
                     " ?, ?)", (text, normalize(text), now, now))
    conn.execute("COMMIT")
    conn.close()


@pytest.mark.slow
async def test_health_answers_starting_while_the_index_is_rebuilt_then_ready(tmp_path: Path
                                                                              ) -> None:
    db, log = tmp_path / "bot.db", tmp_path / "serve.log"
    _database_indexed_by_another_analyzer(db)
    port = _free_port()
    async with FakeMattermost() as mm:
        env = serve_env(mm, db, MCHAT_HTTP_LISTEN=f"127.0.0.1:{port}")
        out = open(log, "ab")  # noqa: SIM115, ASYNC230 - the process owns it until it exits
        proc = await trio.lowlevel.open_process(SERVE, env=env, stdout=out,
                                                stderr=subprocess.STDOUT)
        try:
            during_rebuild: list[tuple[int, str]] = []
            async with httpx.AsyncClient() as http:
                with trio.fail_after(60):
                    while True:
                        text = log.read_text()
                        if "search index rebuilt" in text:
                            break
                        try:
                            r = await http.get(f"http://127.0.0.1:{port}/mchat/health")
                        except httpx.TransportError:
                            await trio.sleep(0.05)
                            continue
                        # the answer counts as "during the rebuild" when Kiwi had loaded before
                        # it was asked and the rebuild had not finished after it came back
                        if ("Kiwi analyzer loaded" in text
                                and "search index rebuilt" not in log.read_text()):
                            during_rebuild.append((r.status_code, " ".join(r.json()["reasons"])))
                        await trio.sleep(0.05)
                assert during_rebuild, log.read_text()[-3000:]
                assert {s for s, _ in during_rebuild} == {503}
                assert all("starting" in reason for _, reason in during_rebuild)
                await wait_until(lambda: bot_connected(mm), timeout=30)
                statuses = []
                for _ in range(200):
                    r = await http.get(f"http://127.0.0.1:{port}/mchat/health")
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        break
                    await trio.sleep(0.1)
                assert statuses[-1] == 200, r.json()
                assert r.json()["status"] != "unavailable"
            assert f"{MEMORIES} memories" in log.read_text()
        finally:
            assert await stop(proc) == 0
            out.close()
