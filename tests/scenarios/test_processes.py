"""Real processes: `mchat-actors serve` killed with SIGKILL mid-burst, restarted; CLI exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from mchat_actors.testing import FakeMattermost
from tests.scenarios.harness import FAST, replies_to, wait_until

SERVE = [sys.executable, "-m", "mchat_actors", "serve"]



# How long a test waits for a serve process to connect: its start-up reads Kiwi's model (~4 s of
# CPU alone, several times that while make test's workers and their processes share 2 cores).
# A bound on waiting, not a claim about start-up time (no test here measures that).
START_S = 60


def serve_env(mm: FakeMattermost, db: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCHAT_", "LLM_", "CHAT_"))}
    env.update(FAST)
    env.update({"MCHAT_URL": mm.url, "MCHAT_TOKEN": mm.bot_token, "MCHAT_DB": str(db),
                "MCHAT_RATE_LIMIT": "20"})
    env.update(extra)
    return env


def bot_connected(mm: FakeMattermost, after: int = 0) -> bool:
    return any(r.path == "/api/v4/websocket" and r.user_id == mm.bot.id and r.status == 101
               for r in mm.request_log[after:])


async def start_serve(mm: FakeMattermost, db: Path, log: Path) -> trio.Process:
    out = open(log, "ab")  # noqa: SIM115 - the process owns it until it exits
    return await trio.lowlevel.open_process(SERVE, env=serve_env(mm, db), stdout=out,
                                            stderr=subprocess.STDOUT)


async def stop(proc: trio.Process, sig: int = signal.SIGTERM) -> int:
    if proc.returncode is None:
        proc.send_signal(sig)
    with trio.fail_after(10):
        return await proc.wait()


async def killed(proc: trio.Process) -> None:
    """SIGKILL ``proc`` if a failed test left it running (every process a test starts ends)."""
    if proc.returncode is None:
        proc.kill()
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            await proc.wait()


@pytest.mark.slow
@pytest.mark.serve
async def test_kill_9_during_a_burst_loses_no_reply_and_posts_none_twice(tmp_path):
    """SIGKILL while replies are going out; after a restart every trigger has exactly one."""
    db, log = tmp_path / "bot.db", tmp_path / "serve.log"
    async with FakeMattermost() as mm:
        proc = await start_serve(mm, db, log)
        try:
            await wait_until(lambda: bot_connected(mm), timeout=START_S)
            ids = []
            for i in range(20):
                for channel in ("town-square", "quality"):
                    ids.append((await mm.post_as("kim", channel, f"@ai 질문 {i}"))["id"])
            await wait_until(lambda: sum(bool(replies_to(mm, p)) for p in ids) >= 5, timeout=20)
            proc.kill()  # SIGKILL: no cleanup at all
            await proc.wait()
            answered_before = sum(bool(replies_to(mm, p)) for p in ids)
            assert answered_before < len(ids), "the burst finished before the kill"
            mark = len(mm.request_log)
            proc = await start_serve(mm, db, log)
            await wait_until(lambda: bot_connected(mm, mark), timeout=START_S)
            await wait_until(lambda: all(replies_to(mm, p) for p in ids), timeout=40)
            await trio.sleep(1.0)  # a duplicate would show up now
            counts = [len(replies_to(mm, p)) for p in ids]
            assert counts == [1] * len(ids), log.read_text()[-3000:]
        finally:
            status = await stop(proc)
    assert status == 0, log.read_text()[-3000:]


@pytest.mark.slow
@pytest.mark.serve
async def test_sigterm_stops_cleanly_within_the_grace_period(tmp_path):
    db, log = tmp_path / "bot.db", tmp_path / "serve.log"
    async with FakeMattermost() as mm:
        proc = await start_serve(mm, db, log)
        try:
            await wait_until(lambda: bot_connected(mm), timeout=START_S)
            p = await mm.post_as("kim", "town-square", "@ai 안녕")
            await wait_until(lambda: replies_to(mm, p["id"]), timeout=20)
            start = trio.current_time()
            status = await stop(proc)
            assert status == 0 and trio.current_time() - start < 5.5, log.read_text()[-2000:]
        finally:
            await killed(proc)


def test_missing_token_is_one_clear_line_and_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCHAT_")}
    env["MCHAT_URL"] = "http://127.0.0.1:9"
    done = subprocess.run(SERVE, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "MCHAT_TOKEN is required" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.serve
async def test_rejected_token_exits_3_without_traceback(tmp_path):
    async with FakeMattermost() as mm:
        env = serve_env(mm, tmp_path / "bot.db", MCHAT_TOKEN="not-the-token")
        done = await trio.run_process(SERVE, env=env, capture_stdout=True, capture_stderr=True,
                                      check=False)
    err = done.stderr.decode()
    assert done.returncode == 3, err[-2000:]
    assert "rejected the bot token" in err and "Traceback" not in err
    assert "not-the-token" not in err + done.stdout.decode()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.serve
async def test_unreachable_server_at_start_is_waited_for_not_fatal(tmp_path):
    """Mattermost refuses connections while the service starts (a data-centre restart). Old
    code exited at once ("stopped: MattermostUnavailable: GET /users/me"); now it keeps
    trying with backoff, /mchat/health answers 503 with the reason, and once the server is back
    the service connects and answers."""
    import httpx

    port = _free_port()
    log = tmp_path / "serve.log"
    async with FakeMattermost() as mm:
        # refused until the service has been seen waiting (the start-up work before the
        # listener, Kiwi's model, takes ~4 s or much longer on a loaded machine)
        mm.refuse_connections(600.0)
        env = serve_env(mm, tmp_path / "bot.db", MCHAT_HTTP_LISTEN=f"127.0.0.1:{port}")
        out = open(log, "ab")  # noqa: SIM115
        proc = await trio.lowlevel.open_process(SERVE, env=env, stdout=out,
                                                stderr=subprocess.STDOUT)
        try:
            seen: list[tuple[int, str]] = []
            async with httpx.AsyncClient() as http:
                with trio.fail_after(START_S):
                    while not any("unreachable" in reason for _, reason in seen):
                        try:
                            r = await http.get(f"http://127.0.0.1:{port}/mchat/health")
                            seen.append((r.status_code, " ".join(r.json().get("reasons", []))))
                        except httpx.TransportError:
                            pass
                        await trio.sleep(0.1)
                # and it goes on trying (with backoff) rather than giving up
                await wait_until(lambda: log.read_bytes().count(b"unreachable at start-up")
                                 >= 10, timeout=20)
                assert {status for status, _ in seen} == {503}
                assert proc.returncode is None
                mm.refuse_connections(0)  # the server is back
                await wait_until(lambda: bot_connected(mm), timeout=25)
                p = await mm.post_as("kim", "town-square", "@ai 다시 켜졌어?")
                await wait_until(lambda: replies_to(mm, p["id"]), timeout=10)
                r = await http.get(f"http://127.0.0.1:{port}/mchat/health")
                assert r.status_code == 200
        finally:
            assert await stop(proc) == 0
            out.close()


@pytest.mark.slow
@pytest.mark.serve
async def test_sigterm_while_waiting_for_the_server_stops_at_once(tmp_path):
    async with FakeMattermost() as mm:
        mm.refuse_connections(60.0)
        log = tmp_path / "serve.log"
        proc = await start_serve(mm, tmp_path / "bot.db", log)
        try:
            await wait_until(lambda: b"unreachable at start-up" in log.read_bytes(),
                             timeout=START_S)
            with trio.fail_after(5):
                assert await stop(proc) == 0
        finally:
            await killed(proc)
