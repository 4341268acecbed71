"""Benchmark of the sender: throughput, the server-side 1 s window, latency, exactly-once.

    python -m bench.bench_sender             # 300 replies over 5 channels at 10 req/s (~30 s)
    python -m bench.bench_sender --quick     # 200 replies at 50 req/s (~4 s)
    python -m bench.bench_sender --faults 0.1 --latency-ms 20 --jitter-ms 8

Real clock, real ``Store`` (SQLite file in WAL mode, worker thread), real ``TokenBucket`` and
``MattermostClient``; the server is an in-process ``httpx.MockTransport`` that delays each
request by a one-way latency plus jitter, records when each request *arrives*, dedups on
``pending_post_id`` for 30 s and fails a fraction of posts with 503. Prints numbers, and exits
non-zero if a reply was lost, duplicated or reordered, or a 1 s window held more than the rate.

Measured on the dev machine: 10 req/s with 5 % faults -> 9.6 req/s, at most 10 in any second;
50 req/s without faults -> 47 req/s (one sending loop: RTT + two outbox writes per post).
A failed head blocks only its channel for its backoff, so faults lengthen the tail.
"""

from __future__ import annotations

import argparse
import bisect
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mchat_actors.actors.sender import Sender  # noqa: E402
from mchat_actors.config import MattermostConfig  # noqa: E402
from mchat_actors.mattermost.rest import open_mattermost_client  # noqa: E402
from mchat_actors.messages import ChannelId, OutboundRequest, PostId, SendReply  # noqa: E402
from mchat_actors.ratelimit import TokenBucket  # noqa: E402
from mchat_actors.store import open_store  # noqa: E402


class Server:
    """The fake server's side: arrival log, posts, dedup, injected 503s."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.arrivals: list[float] = []
        self.posts: list[dict[str, object]] = []
        self.by_pending: dict[str, tuple[dict[str, object], float]] = {}
        self.posted_at: dict[str, float] = {}

    async def handle(self, request: httpx.Request) -> httpx.Response:
        one_way = self.args.latency_ms / 2000
        await trio.sleep(one_way + self.rng.uniform(0, self.args.jitter_ms / 1000))
        now = trio.current_time()
        self.arrivals.append(now)
        body = json.loads(request.content)
        if self.rng.random() < self.args.faults:
            response = httpx.Response(503, json={"id": "", "message": "unavailable"})
        else:
            response = httpx.Response(201, json=self._create(body, now))
        await trio.sleep(one_way)
        return response

    def _create(self, body: dict[str, object], now: float) -> dict[str, object]:
        pending = str(body["pending_post_id"])
        if pending in self.by_pending and now - self.by_pending[pending][1] < 30:
            return self.by_pending[pending][0]
        key = str(body["props"]["mchat_reply_key"])  # type: ignore[index]
        post = {"id": f"p{len(self.posts)}", "channel_id": body["channel_id"],
                "user_id": "bot", "message": body["message"], "props": body["props"]}
        self.posts.append(post)
        self.by_pending[pending] = (post, now)
        self.posted_at[key] = now
        return post


async def main(args: argparse.Namespace) -> int:
    cfg = MattermostConfig(url="http://bench.invalid", token="bench-token",
                           rate_limit_per_s=args.rate)
    server = Server(args)
    replies = [SendReply(channel_id=ChannelId(f"c{i % args.channels}"),
                         message=f"reply {i}", reply_key=f"t{i}:0", root_id=PostId(f"r{i}"))
               for i in range(args.replies)]
    enqueued_at: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with open_store(Path(tmp) / "bench.db") as store:
            bucket = TokenBucket(args.rate)
            transport = httpx.MockTransport(server.handle)
            async with open_mattermost_client(cfg, bucket=bucket, transport=transport) as client:
                sender = Sender(cfg, store=store, client=client, bot_user_id="bot")
                send, recv = trio.open_memory_channel[OutboundRequest](args.replies)
                start = trio.current_time()
                async with trio.open_nursery() as nursery:
                    await nursery.start(partial(sender.run, recv))
                    async with send:
                        for reply in replies:
                            enqueued_at[reply.reply_key] = trio.current_time()
                            await send.send(reply)
                elapsed = trio.current_time() - start
                stats = sender.statistics()
    return report(args, server, replies, enqueued_at, elapsed, stats.retries)


def report(args: argparse.Namespace, server: Server, replies: list[SendReply],
           enqueued_at: dict[str, float], elapsed: float, retries: int) -> int:
    keys = [str(p["props"]["mchat_reply_key"]) for p in server.posts]  # type: ignore[index]
    by_channel: dict[str, list[str]] = {}
    for post, key in zip(server.posts, keys, strict=True):
        by_channel.setdefault(str(post["channel_id"]), []).append(key)
    expected: dict[str, list[str]] = {}
    for reply in replies:
        expected.setdefault(reply.channel_id, []).append(reply.reply_key)
    arrivals = sorted(server.arrivals)
    worst = max(bisect.bisect_left(arrivals, t + 1.0) - i for i, t in enumerate(arrivals))
    latencies = sorted(server.posted_at[k] - enqueued_at[k] for k in server.posted_at)
    steady = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
    print(f"replies {len(replies)} over {args.channels} channels, rate {args.rate:g}/s, "
          f"latency {args.latency_ms:g} ms + jitter {args.jitter_ms:g} ms, faults {args.faults:g}")
    print(f"  wall time            {elapsed:8.2f} s")
    print(f"  requests             {len(arrivals):8d}   ({retries} retries)")
    print(f"  request rate         {steady:8.3f} /s  (first to last arrival)")
    print(f"  max in any 1 s       {worst:8d}   (limit {int(args.rate)})")
    print(f"  enqueue->post p50    {statistics.median(latencies):8.2f} s")
    print(f"  enqueue->post p99    {latencies[int(0.99 * (len(latencies) - 1))]:8.2f} s")
    problems = []
    if len(keys) != len(set(keys)):
        problems.append(f"{len(keys) - len(set(keys))} duplicate posts")
    if set(keys) != {r.reply_key for r in replies}:
        problems.append(f"{len(replies) - len(set(keys))} replies not posted")
    if by_channel != expected:
        problems.append("a channel's order differs from the enqueue order")
    if worst > args.rate:
        problems.append(f"{worst} requests inside one second")
    print("  result               " + ("; ".join(problems) if problems else "OK (exactly once, "
                                       "in order, within the rate)"))
    return 1 if problems else 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=300)
    parser.add_argument("--channels", type=int, default=5)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--latency-ms", type=float, default=4.0)
    parser.add_argument("--jitter-ms", type=float, default=4.0)
    parser.add_argument("--faults", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="200 replies at 50 req/s")
    args = parser.parse_args(argv)
    if args.quick:
        args.replies, args.rate = 200, 50.0
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)  # the 503 retries are expected here
    started = time.perf_counter()
    code = trio.run(main, parse(sys.argv[1:]))
    print(f"  (process time {time.perf_counter() - started:.1f} s)")
    sys.exit(code)
