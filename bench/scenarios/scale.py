"""scale: 1 000 and 10 000 channels with a little traffic each: memory, start-up, sync cost.

A fake seeded with N public channels (30 users and the bot in each; 8 with --quick).
Start-up is from spawning the bot to its first answer (a question in ``c0`` asked every 2 s
until answered, waiting at most 60 s + 0.15 s per channel); the bot's REST requests until then
are its start-up sync cost. Then one plain post goes to every channel (the bot meets each
channel: a channel actor, and for mchat-actors the channel and member mapping), and a last
question in the last channel; after that is answered (or a bounded wait) the RSS grown since
start-up, divided by N, is the memory per channel.

**Idle channel actors after mapping** (the "<= 10 KiB per idle channel actor" target): at 10
req/s mapping N channels takes about 2 N / 10 s (~30 min for 10 000), longer than the run.
So each size also runs as a variant "N channels, mapped at R req/s" (mchat-actors only: the
peers map nothing) in which the fake's limit and the bot's ``MCHAT_RATE_LIMIT`` are both
raised to R (``BENCH_SCALE_RATE``, default 500; the request budget is not what it measures).
After the same steps it waits, reading the bot's /metrics, until every channel's post is
handled (stored, so its channel and members are mapped), every mailbox is empty and the bot
has made no REST request for 3 s: the lanes are idle, not yet reaped (they are reaped 300 s
after their last event; "lanes live" says how many were still there). RSS then, less RSS idle
before the posts, divided by N, is the memory per idle channel actor: all a channel costs the
process once met and mapped (its lane, its mapping rows' cache, whatever the work left in
the allocator), an upper bound of the lane alone (``bench.bench_lanes`` measures that).
RSS keeps the allocator's high-water mark: channels met all at once (the plain posts go out
at 200/s) leave the peak of that many lanes mapping at once in it; ``BENCH_SCALE_POST_RATE``
paces the mapped variants' posts (at what the bot maps, that peak stays small).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import attrs
import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from ..bot_metrics import free_port
from ..harness import Run, open_run
from ..load import outcome
from ..procs import BenchError
from . import Column, pace

NAME = "scale"
COLUMNS = [
    Column("startup_s", "start-up s"),
    Column("startup_requests", "start-up requests"),
    Column("rss_idle_mib", "RSS idle MiB"),
    Column("rss_after_mib", "RSS after MiB"),
    Column("kib_per_channel", "KiB per channel", target="<= 10 KiB", ratio=True),
    Column("traffic_requests", "requests for the traffic"),
    Column("requests_per_channel", "req per channel"),
    Column("last_answer_s", "last answer s"),
    # the mapped variants only (raised request budget, see the module docstring)
    Column("mapped_s", "all mapped s"),
    Column("lanes_live", "lanes live"),
    Column("rss_mapped_mib", "RSS mapped idle MiB"),
    Column("kib_per_idle_actor", "KiB per idle actor", target="<= 10 KiB"),
]
DEFAULT_MAPPED_RATE = 500.0
POST_RATE = 200.0  # the plain posts a second (the mapped variants: BENCH_SCALE_POST_RATE)
QUIET_S = 3.0  # no REST request of the bot for this long: its mapping work is over


@attrs.frozen
class Variant:
    channels: int
    rate_per_s: float | None = None  # None: the 10 req/s budget; else mapped at this rate

    @property
    def label(self) -> str:
        if self.rate_per_s is None:
            return f"{self.channels} channels"
        return f"{self.channels} channels, mapped at {self.rate_per_s:g} req/s"
SYSTEMS_QUICK = ("mchat-actors",)


def variants(quick: bool) -> list[Variant]:
    """Each size at the 10 req/s budget, then mapped at ``BENCH_SCALE_RATE`` req/s (0: not).

    Sizes: 20 with --quick, else 1 000 and 10 000 (or BENCH_SCALE_CHANNELS, comma-separated).
    """
    chosen = "20" if quick else os.environ.get("BENCH_SCALE_CHANNELS", "1000,10000")
    rate = float(os.environ.get("BENCH_SCALE_RATE", DEFAULT_MAPPED_RATE))
    sizes = [int(n) for n in chosen.split(",") if n.strip()]
    return [Variant(n) for n in sizes] + ([Variant(n, rate) for n in sizes] if rate > 0 else [])


async def run_system(system: str, workdir: Path, quick: bool) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for variant in variants(quick):
        if variant.rate_per_s is not None and system != "mchat-actors":
            continue  # the peers map nothing: their idle channel is the budget row's
        out[variant.label] = await _one(system, workdir, quick, variant)
    return out


async def _one(system: str, workdir: Path, quick: bool, variant: Variant) -> dict[str, object]:
    n, mapped = variant.channels, variant.rate_per_s is not None
    wait_s = 15.0 if quick else 180.0
    port = free_port() if mapped else None
    extra = {"MCHAT_HTTP_LISTEN": f"127.0.0.1:{port}",
             "MCHAT_RATE_LIMIT": f"{variant.rate_per_s:g}"} if mapped else None
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    figures: dict[str, object] = {}
    async with open_run(system, workdir, label=f"scale {n}" + (" mapped" if mapped else ""),
                        delay_s=0.0, n_channels=n, n_users=8 if quick else 30,
                        bot_extra_env=extra, rate_per_s=variant.rate_per_s or 10.0) as run:
        assert run.bot is not None
        try:
            startup: float | None = await run.wait_ready(
                timeout_s=60.0 if quick else 60.0 + 0.15 * n)
        except BenchError as exc:  # reported as "no answer within the bound", not fatal
            print(f"    {system}: {str(exc).splitlines()[0]}", flush=True)
            startup = None
        ready_at = time.time()
        await trio.sleep(0.5 if quick else 2.0)
        rss_idle = run.bot.rss_kib()
        handled_before = (await _bot_figures(metrics_url))["handled"] if mapped else 0.0
        names = run.channels()

        async def plain(i: int, names: list[str] = names) -> None:
            await run.users.post(names[i], f"채널 {i} 근황 공유 (hello {i})", question=False)

        posted_at = time.time()
        post_rate = float(os.environ.get("BENCH_SCALE_POST_RATE", POST_RATE)) if mapped \
            else POST_RATE
        await pace(plain, post_rate, n / post_rate, limit=32)
        before = run.counted_replies()
        asked_at = time.time()
        await run.users.post(names[-1], "@ai 마지막 채널 질문 last", question=True)
        answered = await run.wait_replies(before + 1, timeout_s=wait_s, quiet_s=wait_s)
        last_answer = round(time.time() - asked_at, 2) if answered else None
        await trio.sleep(0.5 if quick else 2.0)
        rss_after = run.bot.rss_kib()
        if mapped:
            figures = await _idle_after_mapping(run, metrics_url, n=n, rss_idle=rss_idle,
                                                handled_before=handled_before,
                                                posted_at=posted_at,
                                                bound_s=60.0 if quick else 120.0 + 0.1 * n)
        result = await outcome(run.fake)
    reqs = result.bot_requests
    spawn = run.spawned_at
    startup_reqs = sum(1 for r in reqs if spawn <= float(r["wall_time"]) <= ready_at)
    traffic_reqs = sum(1 for r in reqs if float(r["wall_time"]) > ready_at)
    return {
        "channels": n, "rate_per_s": variant.rate_per_s or 10.0, "posts_per_s": post_rate,
        "startup_s": None if startup is None else round(startup, 2),
        "startup_requests": startup_reqs,
        "rss_idle_mib": round(rss_idle / 1024, 1), "rss_after_mib": round(rss_after / 1024, 1),
        "kib_per_channel": round(max(0, rss_after - rss_idle) / n, 2),
        "traffic_requests": traffic_reqs,
        "requests_per_channel": round((startup_reqs + traffic_reqs) / n, 2),
        "last_answer_s": last_answer,
        **figures,
    }


async def _idle_after_mapping(run: Run, metrics_url: str, *, n: int, rss_idle: int,
                              handled_before: float, posted_at: float,
                              bound_s: float) -> dict[str, object]:
    """Wait until every channel's post is handled, the mailboxes are empty and the bot's REST
    requests have stopped for ``QUIET_S``; then the idle lanes' figures. A bound reached is
    reported, not hidden: ``mapped_s`` and ``kib_per_idle_actor`` None (the lanes were not
    all mapped and idle), the rest as they were."""
    assert run.bot is not None
    deadline = time.time() + bound_s
    mapped_at: float | None = None
    last_requests, quiet_since = -1.0, time.time()
    idle = False
    while time.time() < deadline:
        f = await _bot_figures(metrics_url)
        if f["rest_requests"] != last_requests:
            last_requests, quiet_since = f["rest_requests"], time.time()
        # n plain posts and the last question, beyond what was handled before them
        done = f["handled"] - handled_before >= n + 1 and f["mailbox_depth"] == 0
        if done and mapped_at is None:
            mapped_at = time.time()
        if not done:
            mapped_at = None
        if done and time.time() - quiet_since >= QUIET_S:
            idle = True
            break
        await trio.sleep(0.5)
    else:
        print(f"    not all {n} channels mapped and idle within {bound_s:g} s", flush=True)
    rss_mapped = run.bot.rss_kib()
    f = await _bot_figures(metrics_url)
    return {
        "mapped_s": None if mapped_at is None or not idle else round(mapped_at - posted_at, 1),
        "lanes_live": int(f["lanes"]),
        "handled_posts": int(f["handled"] - handled_before),
        "rss_mapped_mib": round(rss_mapped / 1024, 1),
        "kib_per_idle_actor": round(max(0, rss_mapped - rss_idle) / n, 2) if idle else None,
    }


async def _bot_figures(url: str) -> dict[str, float]:
    """Posts handled (every status), events in the mailboxes, lanes, REST requests: from the
    bot's /metrics (a bot that does not answer there: ``BenchError``)."""
    try:
        async with httpx.AsyncClient(timeout=30.0) as client:
            response = await client.get(url)
            response.raise_for_status()
    except httpx.HTTPError as exc:
        raise BenchError(f"the bot's /metrics at {url}: {exc!r}") from exc
    text = response.text
    found = {"handled": 0.0, "mailbox_depth": 0.0, "lanes": 0.0, "rest_requests": 0.0}
    names = {"mchat_messages_processed_total": "handled",
             "mchat_mailbox_depth_total": "mailbox_depth", "mchat_channel_lanes": "lanes",
             "mchat_rest_requests_total": "rest_requests"}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in names:
                found[names[sample.name]] += sample.value
    return found
