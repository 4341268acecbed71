"""Chaos soak: many channels posting while the server misbehaves and the service is killed.

    python -m bench.chaos_soak [--seconds 150] [--channels 40] [--json soak.json] [--seed 1]

The fake Mattermost runs in this process; ``mchat-actors serve`` runs as a real child process
(real WebSocket, real HTTP, SQLite on disk). For ``--seconds`` users post in ``--channels``
channels (every ``--question-every``-th post asks ``@ai``) while a chaos task, every
``--fault-every`` seconds, picks one fault: an abrupt or clean socket drop, a server restart
(resume state forgotten), refused upgrades, a 5xx window, a 429 storm, a stall; and every
``--kill-every`` seconds the service is SIGKILLed and started again. Then the faults stop, the
soak waits (bounded) for the service to converge, stops it with SIGTERM and counts from the
outside: the fake's posts and request log, and the service's database read-only.

Printed and written as JSON: posts sent, stored, triggers, replies, lost (posts not stored +
triggers without a reply), duplicated (replies posted more than once), out of order (posts
stored in another order than their channel's), the most bot requests that reached the server
in any 1 s window (by arrival; a stall answers held requests together, which
``max_answered_in_1s`` shows), the windows over the limit with the faults just before them,
429s seen, faults and kills, the service's exit status. Target: 0 lost, 0 duplicated, 0 out of
order, never over the rate limit. Bounded: it stops by itself after ``--seconds`` plus at
most ``--converge-timeout``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import attrs
import trio

from mchat_actors.testing import FakeMattermost

SERVE = [sys.executable, "-m", "mchat_actors", "serve"]
FAULTS = ("drop", "drop_abrupt", "restart", "refuse", "5xx", "429_storm", "stall")


@attrs.frozen(kw_only=True)
class SoakConfig:
    seconds: float = 150.0
    channels: int = 40
    posts_per_s: float = 8.0
    question_every: int = 5
    fault_every_s: float = 8.0
    kill_every_s: float = 40.0
    rate_limit: int = 10
    converge_timeout_s: float = 120.0
    seed: int = 1


@attrs.define
class _Run:
    cfg: SoakConfig
    mm: FakeMattermost
    db: Path
    log: Path
    rng: random.Random
    proc: trio.Process | None = None
    sent: list[tuple[str, str, bool]] = attrs.Factory(list)  # (post id, channel name, asks)
    faults: Counter[str] = attrs.Factory(Counter)
    kills: int = 0
    events: list[tuple[float, str]] = attrs.Factory(list)  # (trio time, fault or "kill")

    async def start_service(self) -> None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MCHAT_", "LLM_", "CHAT_"))}
        env.update({"MCHAT_URL": self.mm.url, "MCHAT_TOKEN": self.mm.bot_token,
                    "MCHAT_DB": str(self.db), "MCHAT_RATE_LIMIT": str(self.cfg.rate_limit),
                    "MCHAT_HTTP_LISTEN": "127.0.0.1:0", "MCHAT_BACKOFF_INITIAL": "0.2",
                    "MCHAT_BACKOFF_MAX": "2", "MCHAT_POLL_INTERVAL": "1",
                    "MCHAT_WS_PING_INTERVAL": "2", "MCHAT_HELLO_TIMEOUT": "3",
                    "MCHAT_REST_TIMEOUT": "5"})
        out = open(self.log, "ab")  # noqa: SIM115, ASYNC230 - the child owns it until it exits
        self.proc = await trio.lowlevel.open_process(SERVE, env=env, stdout=out,
                                                     stderr=subprocess.STDOUT)
        out.close()

    async def post_forever(self, names: list[str]) -> None:
        n = 0
        while True:
            name = self.rng.choice(names)
            n += 1
            asks = n % self.cfg.question_every == 0
            text = f"@ai 질문 {n} 불량률 알려줘" if asks else f"기록 {n}: 라인 점검 완료"
            post = await self.mm.post_as(self.rng.choice(("kim", "lee")), name, text)
            self.sent.append((str(post["id"]), name, asks))
            await trio.sleep(self.rng.expovariate(self.cfg.posts_per_s))

    async def chaos_forever(self) -> None:
        while True:
            await trio.sleep(self.cfg.fault_every_s * self.rng.uniform(0.5, 1.5))
            fault = self.rng.choice(FAULTS)
            self.faults[fault] += 1
            self.events.append((trio.current_time(), fault))
            mm = self.mm
            if fault == "drop":
                await mm.drop_websockets()
            elif fault == "drop_abrupt":
                await mm.drop_websockets(abrupt=True)
            elif fault == "restart":
                mm.refuse_websockets(self.rng.uniform(1, 4))
                await mm.drop_websockets()
                mm.forget_resume_state()
            elif fault == "refuse":
                mm.refuse_websockets(self.rng.uniform(2, 6))
                await mm.drop_websockets()
            elif fault == "5xx":
                mm.fail_requests(self.rng.uniform(2, 8), status=self.rng.choice((500, 502, 503)))
            elif fault == "429_storm":
                mm.set_rate_limit(2, burst=1)
                await trio.sleep(self.rng.uniform(2, 5))
                mm.set_rate_limit(1000, burst=1000)
            elif fault == "stall":
                mm.stall(self.rng.uniform(2, 5))

    async def kill_forever(self) -> None:
        while True:
            await trio.sleep(self.cfg.kill_every_s * self.rng.uniform(0.7, 1.3))
            assert self.proc is not None
            self.proc.kill()
            await self.proc.wait()
            self.kills += 1
            self.events.append((trio.current_time(), "kill"))
            await trio.sleep(self.rng.uniform(0.2, 2.0))
            await self.start_service()


def _read_db(db: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(channel id -> room id, room id -> user post ids in storage order)."""
    if not db.exists():
        return {}, {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rooms = dict(conn.execute(
            "SELECT mchat_channel_id, agent_room_id FROM mchat_channel_mapping"))
        stored: dict[str, list[str]] = defaultdict(list)
        for room, pid in conn.execute("SELECT room_id, mchat_post_id FROM chat_messages "
                                      "WHERE role = 'user' AND mchat_post_id IS NOT NULL "
                                      "ORDER BY id"):
            stored[room].append(pid)
        return rooms, stored
    except sqlite3.Error:
        return {}, {}
    finally:
        conn.close()


def _replies(mm: FakeMattermost) -> Counter[str]:
    keys: Counter[str] = Counter()
    for p in mm.posts():
        key = (p.get("props") or {}).get("mchat_reply_key")
        if p["user_id"] == mm.bot.id and key:
            keys[str(key).split("#")[0]] += 1
    return keys


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    return max((n for _, n in windows(times, window)), default=0)


def windows(times: list[float], window: float = 1.0) -> list[tuple[float, int]]:
    """(end time, requests in the ``window`` s before it, end included) at each request."""
    times = sorted(times)
    out, j = [], 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        out.append((t, i - j + 1))
    return out


def _over_limit(run: _Run, times: list[float]) -> list[dict[str, Any]]:
    """The windows over the limit, with the faults or kills of the 5 s before them."""
    over = []
    for end, n in windows(times):
        if n > run.cfg.rate_limit:
            near = sorted({what for at, what in run.events if end - 5 <= at <= end})
            over.append({"at": round(end, 2), "requests": n, "after": near})
    return over[:20]


def _measure(run: _Run, names: dict[str, str]) -> dict[str, Any]:
    rooms, stored = _read_db(run.db)
    by_channel: dict[str, list[str]] = defaultdict(list)
    for pid, name, _ in run.sent:
        by_channel[names[name]].append(pid)
    stored_ids = {pid for ids in stored.values() for pid in ids}
    replies = _replies(run.mm)
    triggers = [pid for pid, _, asks in run.sent if asks]
    not_stored = [pid for pid, _, _ in run.sent if pid not in stored_ids]
    unanswered = [pid for pid in triggers if replies[f"{pid}:reply"] == 0]
    out_of_order = 0
    for cid, sent_ids in by_channel.items():
        order = [pid for pid in stored.get(rooms.get(cid, ""), []) if pid in set(sent_ids)]
        expected = [pid for pid in sent_ids if pid in set(order)]
        out_of_order += sum(a != b for a, b in zip(order, expected, strict=True))
    bot = [r for r in run.mm.request_log if r.user_id == run.mm.bot.id]
    arrivals = [r.received or r.time for r in bot]
    return {
        "posts_sent": len(run.sent), "stored": len(stored_ids & {p for p, _, _ in run.sent}),
        "triggers": len(triggers), "replies": sum(replies[f"{p}:reply"] > 0 for p in triggers),
        "lost": len(not_stored) + len(unanswered), "lost_posts": len(not_stored),
        "unanswered": len(unanswered),
        "duplicated": sum(n - 1 for n in replies.values() if n > 1),
        "out_of_order": out_of_order,
        "max_requests_in_1s": max_in_any_window(arrivals),  # as they reached the server
        "max_answered_in_1s": max_in_any_window([r.time for r in bot]),  # stalls bunch these
        "over_limit": _over_limit(run, arrivals),
        "rate_limit": run.cfg.rate_limit,
        "bot_requests": len(bot), "http_429": sum(r.status == 429 for r in bot),
        "faults": dict(run.faults), "kills": run.kills,
    }


async def soak(cfg: SoakConfig, workdir: Path) -> dict[str, Any]:
    """Run one soak in ``workdir`` (database, service log); returns the measures."""
    rng = random.Random(cfg.seed)
    async with FakeMattermost() as mm:
        mm.set_rate_limit(1000, burst=1000)
        names: dict[str, str] = {}
        for i in range(cfg.channels):
            ch = await mm.create_channel(f"soak-{i:02d}", members=["kim", "lee", mm.bot.id])
            names[f"soak-{i:02d}"] = ch.id
        run = _Run(cfg=cfg, mm=mm, db=workdir / "soak.db", log=workdir / "serve.log", rng=rng)
        await run.start_service()
        started = time.monotonic()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run.post_forever, sorted(names))
                nursery.start_soon(run.chaos_forever)
                nursery.start_soon(run.kill_forever)
                await trio.sleep(cfg.seconds)
                nursery.cancel_scope.cancel()
            if run.proc is None or run.proc.returncode is not None:
                # the chaos ended between a kill and its restart: the service must run to
                # converge (a dead service would count every later post as lost)
                await run.start_service()
            mm.set_rate_limit(1000, burst=1000)  # faults end (timed ones expire by themselves)
            converge_at = time.monotonic()
            dumped = False
            with trio.move_on_after(cfg.converge_timeout_s):
                while True:
                    m = _measure(run, names)
                    if m["lost"] == 0:
                        break
                    if not dumped and time.monotonic() - converge_at > 30 and run.proc:
                        run.proc.send_signal(signal.SIGUSR1)  # the service logs its tasks
                        dumped = True
                    await trio.sleep(1.0)
            converged_s = time.monotonic() - converge_at
            await trio.sleep(2.0)  # a late duplicate would show up now
        finally:
            status = None
            if run.proc is not None:
                if run.proc.returncode is None:
                    run.proc.send_signal(signal.SIGTERM)
                with trio.move_on_after(15):
                    status = await run.proc.wait()
                if status is None:
                    run.proc.kill()
                    status = await run.proc.wait()
        result = _measure(run, names)
        result.update({"converged_s": round(converged_s, 1), "exit_status": status,
                       "seconds": cfg.seconds, "channels": cfg.channels,
                       "wall_s": round(time.monotonic() - started, 1)})
        return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = SoakConfig()
    for field in attrs.fields(SoakConfig):
        p.add_argument("--" + field.name.replace("_", "-"), type=type(field.default),
                       default=field.default)
    p.add_argument("--json", default="chaos_soak.json", help="where to write the result")
    p.add_argument("--keep", default="", help="keep the database and log in this directory")
    args = vars(p.parse_args(argv))
    out, keep = args.pop("json"), args.pop("keep")
    cfg = SoakConfig(**args)
    assert defaults is not None
    with TemporaryDirectory() as tmp:
        workdir = Path(keep) if keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = trio.run(soak, cfg, workdir)
    for key, value in result.items():
        print(f"{key:>20}: {value}")
    Path(out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    ok = (result["lost"] == 0 and result["duplicated"] == 0 and result["out_of_order"] == 0
          and result["max_requests_in_1s"] <= cfg.rate_limit)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
