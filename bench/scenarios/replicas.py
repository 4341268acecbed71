"""replicas: 1, 2 and 3 ``serve`` replicas on one PostgreSQL; answers/s, ingest/s, one budget.

Issue #15's bench. One run starts a real PostgreSQL (``bench.replica_set``: the tests' way,
a temporary cluster on 127.0.0.1) and, per variant, a fresh database, the fake Mattermost (its
limiter at 10 req/s, burst 10) and the fixed-delay ChatService (200 ms) in their own
processes, then N ``mchat-actors serve`` processes with MCHAT_REPLICAS=on (MCHAT_RATE_LIMIT=10:
the one budget they share). Baselines in the same run: one process on SQLite (no replicas),
and one replica on PostgreSQL. Each variant, after every replica holds buckets and budget
shares and a warm-up question per channel is answered:

1. questions at the budget (10/s) round-robin over the channels, then drained;
2. questions at twice the budget (20/s), then drained: requests/s across all replicas from
   the fake's request log (first reply to last) against the limit;
3. plain posts as fast as the load generator goes (asked for 400/s): ingest/s is the rows
   reaching ``chat_messages`` (counted in the database) over the time until the last arrived.

Across the whole variant (from the first request of any replica): 429s and the most bot
requests the fake received in any 1 s window, all replicas together (limit 10). Per replica,
from its own ``/metrics``: its share of the answers and of the REST requests, and the
budget shares and channel buckets it held (lease table) when the load began.

Every replica runs on the same 2-core machine as PostgreSQL, the fake, the ChatService and the
load generator: more replicas add no cores here, only processes sharing them.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psycopg
import trio

from ..harness import Run, open_run
from ..load import outcome
from ..metrics import max_in_window
from ..procs import BenchError
from ..replica_set import ReplicaSet, fresh_database, open_replicas, pg_server
from . import Column, pace, question_text
from .backlog import figures

NAME = "replicas"
SYSTEMS = ("mchat-actors",)
SYSTEMS_QUICK = ("mchat-actors",)
LIMIT = 10.0
DELAY_S = 0.2
COLUMNS = [
    Column("answers_at_budget_per_s", "answers/s q@10/s"),
    Column("answers_per_s", "answers/s q@20/s"),
    Column("requests_per_s", "req/s"),
    Column("budget_pct", "% of budget"),
    Column("max_req_1s", "max req in 1 s", target="<= 10"),
    Column("http_429", "429s", target="0"),
    Column("ingest_per_s", "ingest/s"),
    Column("posted_per_s", "posted/s"),
    Column("ingest_lag_s", "last row after last post s"),
    Column("answer_share", "answers by replica"),
    Column("request_share", "requests by replica"),
    Column("ingest_share", "ingest by replica"),
    Column("budget_shares", "budget shares"),
    Column("buckets", "buckets"),
    Column("lost_at_end", "unanswered", target="0"),
    Column("duplicated", "duplicated", target="0"),
    Column("reordered", "reordered", target="0"),
]


def variants(quick: bool) -> list[tuple[str, str, int]]:
    """(label, database, replicas)."""
    full = [("sqlite x1", "sqlite", 1), ("pg x1", "pg", 1), ("pg x2", "pg", 2),
            ("pg x3", "pg", 3)]
    return full[:3] if quick else full


def phases(quick: bool) -> tuple[float, float, float]:
    """Seconds of questions at the budget, at twice it, and of plain posts."""
    return (3.0, 3.0, 2.0) if quick else (15.0, 15.0, 6.0)


async def run_system(system: str, workdir: Path, quick: bool) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    async with pg_server() as server:
        for k, (label, db, n) in enumerate(variants(quick)):
            url = None if db == "sqlite" else await trio.to_thread.run_sync(
                fresh_database, server, f"bench_{k}")
            try:
                out[label] = await run_variant(system, workdir, label, n, url, quick)
            except (BenchError, psycopg.Error, httpx.HTTPError) as exc:
                # one variant failing leaves the others' figures (its processes are stopped)
                print(f"  {label}: FAILED: {exc}", flush=True)
                out[label] = {"failed": str(exc)[:300]}
    return out


async def run_variant(system: str, workdir: Path, label: str, n: int, url: str | None,
                      quick: bool) -> dict[str, object]:
    at_s, over_s, ingest_s = phases(quick)
    n_channels = 6 if quick else 12
    async with open_run(system, workdir, label=f"replicas {label}", delay_s=DELAY_S,
                        n_channels=n_channels, n_users=100, start=False) as run, \
            open_replicas(run.workdir, run.env, n, url) as rs:
        run.spawned_at = time.time()
        spawned_ms = int(run.spawned_at * 1000)
        held = await rs.wait_spread(120.0) if url else {}
        await run.warm_up()
        held = await rs.owners() if url else held
        before = await rs.scrape()

        at = await ask(run, LIMIT, at_s, quick)
        over = await ask(run, 2 * LIMIT, over_s, quick)
        result = await outcome(run.fake, since_ms=run.load_from_ms)
        after_answers = await rs.scrape()
        ingest = await ingest_phase(run, rs, ingest_s)
        rs.check_alive()
        after = await rs.scrape()
        requests = [r for r in (await outcome(run.fake)).bot_requests
                    if float(r["wall_time"]) * 1000 >= spawned_ms]

    row: dict[str, object] = {"replicas": n, "database": "PostgreSQL" if url else "SQLite"}
    row["answers_at_budget_per_s"] = at["answers_per_s"]
    row.update({k: over[k] for k in ("answers_per_s", "requests_per_s", "budget_pct",
                                     "replies_per_request", "series")})
    times = [float(r["wall_time"]) for r in requests]
    row["max_req_1s"] = max_in_window(times) if times else 0
    row["worst_window"] = worst_window(requests)
    row["http_429"] = sum(1 for r in requests if r["status"] == 429)
    row.update(ingest)
    row["answer_share"] = shares(before, after_answers, "mchat_ai_responses_total")
    row["request_share"] = shares(before, after, "mchat_rest_requests_total")
    row["ingest_share"] = shares(after_answers, after, "mchat_messages_processed_total")
    row["per_replica"] = [{k: round(a.get(k, 0.0) - b.get(k, 0.0)) for k in a}
                          for b, a in zip(before, after, strict=True)]
    row["budget_shares"] = "/".join(map(str, held["budget"])) if held else "-"
    row["buckets"] = "/".join(map(str, held["bucket"])) if held else "-"
    row["questions"], row["answered"] = len(result.answers), len(
        [a for a in result.answers if a.replies])
    row["lost_at_end"], row["duplicated"] = result.lost, result.duplicated
    row["reordered"] = result.reordered
    return row


async def ask(run: Run, rate: float, duration: float, quick: bool) -> dict[str, object]:
    """Questions at ``rate`` for ``duration`` (round-robin), drained; ``backlog.figures``."""
    channels = run.channels()
    started = time.time()
    since_ms = int(started * 1000)
    offset = run.questions_sent()

    async def one(i: int) -> None:
        await run.users.post(channels[i % len(channels)], question_text(offset + i),
                             question=True)

    asked = await pace(one, rate, duration)
    await run.wait_replies(run.expected(), timeout_s=asked / LIMIT + (10.0 if quick else 30.0),
                           quiet_s=8.0)
    return figures(await outcome(run.fake, since_ms=since_ms), started, DELAY_S)


async def ingest_phase(run: Run, rs: ReplicaSet, duration: float) -> dict[str, object]:
    """Plain posts at up to 400/s for ``duration``; rows reaching chat_messages per second."""
    channels = run.channels()
    base = await rs.stored_messages()
    before = len(run.users.sent)
    t0 = time.time()

    async def plain(i: int) -> None:
        await run.users.post(channels[i % len(channels)],
                             f"메시지 {i}: 라인 점검 결과 공유합니다 (plain post {i})",
                             question=False)

    await pace(plain, 400.0, duration, limit=128)
    t1 = time.time()
    posted = len(run.users.sent) - before
    stored, last_change = base, t1
    deadline = t1 + max(30.0, posted / 20)
    while time.time() < deadline and stored - base < posted:
        now_stored = await rs.stored_messages()
        if now_stored != stored:
            stored, last_change = now_stored, time.time()
        elif time.time() - last_change > 10.0:
            break
        await trio.sleep(0.2)
    got = stored - base
    span = max(last_change, t1) - t0
    return {"posted": posted, "posted_per_s": round(posted / (t1 - t0), 1),
            "stored": got, "ingest_per_s": round(got / span, 1) if span > 0 else None,
            "ingest_lag_s": round(max(0.0, last_change - t1), 1),
            "ingest_missing": posted - got}


def shares(before: list[dict[str, float]], after: list[dict[str, float]], key: str) -> str:
    """Each replica's part of the counter's growth, as ``a/b/c %``."""
    grown = [max(0.0, a.get(key, 0.0) - b.get(key, 0.0)) for b, a in zip(before, after,
                                                                           strict=True)]
    total = sum(grown)
    if not total:
        return "-"
    return "/".join(f"{100 * g / total:.0f}" for g in grown) + " %"


def worst_window(requests: list[dict[str, object]], window_s: float = 1.0
                 ) -> dict[str, object]:
    """The 1 s window with the most bot requests: when, how many, which (the evidence)."""
    ordered = sorted(requests, key=lambda r: float(r["wall_time"]))  # type: ignore[arg-type]
    best, best_lo, best_hi, lo = 0, 0, 0, 0
    for hi, r in enumerate(ordered):
        t = float(r["wall_time"])  # type: ignore[arg-type]
        while float(ordered[lo]["wall_time"]) <= t - window_s:  # type: ignore[arg-type]
            lo += 1
        if hi - lo + 1 > best:
            best, best_lo, best_hi = hi - lo + 1, lo, hi
    if not best:
        return {"count": 0}
    inside = ordered[best_lo:best_hi + 1]
    t0 = float(inside[0]["wall_time"])  # type: ignore[arg-type]
    return {"count": best, "start": round(t0, 3),
            "requests": [f"+{float(r['wall_time']) - t0:.3f}s {r['method']} {r['path']} "  # type: ignore[arg-type]
                         f"{r['status']}" for r in inside]}
