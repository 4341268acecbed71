"""The replicas scenario's plumbing (``python -m bench run replicas``, issue #15's bench).

The scenario itself takes minutes (PostgreSQL, then 1 + 1 + 2 + 3 serve processes) and is not
part of ``--quick``'s test runs (``scenarios.NAMED``). Here: its arithmetic (per-replica shares
from /metrics, the worst 1 s window with its evidence), that the runner takes it only by name,
and one real run of its processes: a PostgreSQL, the fake and the ChatService, two replicas
that share the leases, answer, store plain posts in ``chat_messages``, and are all stopped
afterwards with the database server's folder removed.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import trio

from bench import replica_set
from bench.harness import open_run
from bench.procs import BenchError
from bench.runner import main as run_main
from bench.scenarios import NAMED, ORDER, replicas
from bench.scenarios.replicas import shares, worst_window

METRICS = """# HELP mchat_ai_responses_total Answers produced by the ChatService
# TYPE mchat_ai_responses_total counter
mchat_ai_responses_total 7.0
mchat_rest_requests_total 12.0
mchat_messages_processed_total{status="stored"} 30.0
mchat_messages_processed_total{status="answered"} 7.0
mchat_rest_requests_created 1.7e+09
"""


def test_counters_are_summed_over_their_labels() -> None:
    got = replica_set.parse_counters(METRICS)
    assert got["mchat_ai_responses_total"] == 7.0
    assert got["mchat_rest_requests_total"] == 12.0  # not the _created sample
    assert got["mchat_messages_processed_total"] == 37.0
    assert got["mchat_ratelimit_acquired_total"] == 0.0  # absent: 0


def test_shares_are_each_replicas_part_of_the_growth() -> None:
    key = "mchat_ai_responses_total"
    before = [{key: 10.0}, {key: 0.0}, {}]
    after = [{key: 40.0}, {key: 20.0}, {key: 10.0}]
    assert shares(before, after, key) == "50/33/17 %"
    assert shares(after, after, key) == "-"


def test_worst_window_names_the_requests_of_the_busiest_second() -> None:
    reqs = [{"wall_time": 100.0 + i * 0.09, "method": "POST", "path": "/api/v4/posts",
             "status": 201} for i in range(11)]  # 11 within 0.9 s: over a limit of 10
    reqs.append({"wall_time": 105.0, "method": "GET", "path": "/api/v4/users/me",
                 "status": 200})
    worst = worst_window(reqs)
    assert worst["count"] == 11
    assert worst["start"] == 100.0
    assert worst["requests"][0] == "+0.000s POST /api/v4/posts 201"  # type: ignore[index]
    assert len(worst["requests"]) == 11  # type: ignore[arg-type]
    assert worst_window([]) == {"count": 0}


def test_the_scenario_runs_only_when_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert "replicas" in NAMED and "replicas" not in ORDER  # not in the --quick suite
    with pytest.raises(SystemExit):
        run_main(["no-such-scenario"])
    assert "replicas" in capsys.readouterr().err  # offered among the choices
    assert [v[2] for v in replicas.variants(False)] == [1, 1, 2, 3]
    assert [v[1] for v in replicas.variants(False)] == ["sqlite", "pg", "pg", "pg"]


async def test_no_postgresql_is_a_bench_error_naming_the_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCHAT_PG_BINDIR", str(tmp_path / "none"))
    monkeypatch.setenv("MCHAT_PG_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BenchError, match="system-deps.sh"):
        async with replica_set.pg_server():
            raise AssertionError("no server can start here")


@pytest.mark.pg
@pytest.mark.slow
@pytest.mark.serve
async def test_two_replicas_share_the_leases_answer_store_and_are_stopped(
        tmp_path: Path) -> None:
    started: list[replica_set.Replica] = []
    async with replica_set.pg_server() as server:
        pg_dir = server.dir  # type: ignore[attr-defined]
        url = await trio.to_thread.run_sync(replica_set.fresh_database, server, "plumbing")
        async with open_run("mchat-actors", tmp_path, label="plumbing", delay_s=0.0,
                            n_channels=4, start=False) as run, \
                replica_set.open_replicas(run.workdir, run.env, 2, url) as rs:
            started = list(rs.replicas)
            held = await rs.wait_spread(90.0)
            assert sum(held["bucket"]) == 64 and all(held["bucket"]), held
            assert 0 < sum(held["budget"]) <= 10 and all(held["budget"]), held
            run.spawned_at = time.time()
            await run.warm_up(timeout_s=90.0)  # one question per channel answered
            stored = await rs.stored_messages()
            for i in range(8):
                await run.users.post(run.channels()[i % 4], f"점검 메모 {i}", question=False)
            with trio.fail_after(30):
                while await rs.stored_messages() < stored + 8:  # noqa: ASYNC110
                    await trio.sleep(0.2)
            counters = await rs.scrape()
            assert len(counters) == 2 and all(counters)
            answered = sum(c["mchat_ai_responses_total"] for c in counters)
            assert answered >= 4  # the warm-up's questions, answered by one or the other
    assert len(started) == 2
    for replica in started:  # every replica is gone: SIGKILLed and reaped by the block
        assert replica.proc.popen.returncode == -signal.SIGKILL
    assert not pg_dir.exists()  # the server stopped and its folder removed
