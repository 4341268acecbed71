"""The sweeper's first read horizon starts at the PROCESS's start (``mchat_actors.horizon``), so
posts made while a first process is still importing and loading its models are owed: the chaos
soak lost the first posts made right after launching the service on a loaded machine, where
getting to the database's first open took longer than the 5 s margin."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from mchat_actors.horizon import MARGIN_MS, first_horizon_ms, process_started_ms
from mchat_actors.testing import FakeMattermost
from tests.scenarios.harness import wait_until
from tests.scenarios.test_processes import START_S, killed, serve_env, stop

PROBE = ("import json, time; time.sleep(1.5); from mchat_actors.horizon import "
         "process_started_ms; print(json.dumps([process_started_ms(), time.time() * 1000]))")


def test_the_process_start_is_read_from_the_os_not_the_call():
    """A process that waits 1.5 s before asking still gets the time it started."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, timeout=60)
    started, asked = json.loads(out.stdout)
    assert started is not None
    assert 1_400 <= asked - started < 30_000


def test_the_first_horizon_is_before_the_process_started():
    started = process_started_ms()
    assert started is not None and started <= time.time() * 1000
    assert first_horizon_ms() <= started - MARGIN_MS
    assert first_horizon_ms(now_s=started / 1000 - 60) == started - 60_000 - MARGIN_MS


@pytest.mark.slow
@pytest.mark.serve
async def test_a_post_made_while_the_first_process_starts_slowly_is_stored(tmp_path: Path):
    """A first `serve` that takes 7 s to reach its database (longer than the 5 s margin); a
    post made just after it was launched, in a channel it never saw, is stored."""
    db, log = tmp_path / "first.db", tmp_path / "serve.log"
    slow = [sys.executable, "-c", "import runpy, sys, time; time.sleep(7); "
            "sys.argv = ['mchat_actors', 'serve']; runpy.run_module('mchat_actors', "
            "run_name='__main__', alter_sys=True)"]
    async with FakeMattermost() as mm:
        with open(log, "ab") as out:
            proc = await trio.lowlevel.open_process(slow, env=serve_env(mm, db), stdout=out,
                                                    stderr=subprocess.STDOUT)
        try:
            await trio.sleep(0.5)
            post = await mm.post_as("kim", "quality", "기록: 라인 2 점검 완료")

            def stored() -> bool:
                if not db.exists():
                    return False
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
                try:
                    return conn.execute("SELECT 1 FROM chat_messages WHERE mchat_post_id = ?",
                                        (post["id"],)).fetchone() is not None
                except sqlite3.Error:
                    return False
                finally:
                    conn.close()

            await wait_until(stored, timeout=START_S)
            assert await stop(proc) == 0, log.read_text()[-3000:]
        finally:
            await killed(proc)
