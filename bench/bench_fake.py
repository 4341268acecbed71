"""Benchmark of the fake Mattermost: ``posted`` events/s delivered to 1 and to 10 WebSockets.

    python -m bench.bench_fake              # 20 000 posts per run
    python -m bench.bench_fake --small      # 3 000 posts per run
    python -m bench.bench_fake --posts 50000 --clients 1 10 50 --repeat 3

Per run: a fresh :class:`FakeMattermost` (rate limit off), C trio-websocket clients
(``receive_buffer_size`` 64 KiB, header-authenticated as the bot, members of town-square),
then N posts by ``kim`` created through the Python API (``mm.post_as``, the same path as
``POST /api/v4/posts``: validation, storage, ``posted`` broadcast). The clock runs from the
first post until every client has received all N ``posted`` events. Each client reads every
frame and decodes the ``posted`` ones (the event, then the post JSON inside it), as a bot
would.

Clients run in the SAME process and trio loop as the server (``--clients-in same``: the
figure includes the clients' own CPU, all on one core) or in a SEPARATE process
(``--clients-in process``: the server on one core, the clients on the other); the default
runs both. "server CPU µs/post" is the CPU time of the server's process per post (with the
clients' share in ``same`` mode): unlike events/s it barely depends on other load.

Flow control: the real server (and the fake) drops a socket whose send queue holds 256
events, so the producer keeps every client within ``--window`` (128) posts of the newest:
it waits on the slowest client before creating more. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import orjson
import trio
from trio_websocket import open_websocket_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mchat_actors.testing import FakeMattermost  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

READ_BYTES = 64 * 1024
POSTED = '"event":"posted"'


@attrs.frozen
class Timing:
    """Wall-clock seconds and this process's CPU seconds over one run."""

    wall_s: float
    cpu_s: float

    @classmethod
    def start(cls) -> Timing:
        return cls(time.perf_counter(), time.process_time())

    def stop(self) -> Timing:
        return Timing(time.perf_counter() - self.wall_s, time.process_time() - self.cpu_s)


class Progress:
    """Events received per client, and an event the producer waits on."""

    def __init__(self, clients: int) -> None:
        self.received = [0] * clients
        self.target = 0
        self.reached = trio.Event()

    def add(self, client: int) -> None:
        self.received[client] += 1
        if self.received[client] >= self.target and min(self.received) >= self.target:
            self.reached.set()

    async def wait_all(self, target: int) -> None:
        """Until every client has received ``target`` events."""
        while min(self.received) < target:
            self.target = target
            self.reached = trio.Event()
            await self.reached.wait()


async def consume(url: str, token: str, client: int, posts: int, progress: Progress | None,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """One client: wait for ``hello``, then read until ``posts`` posted events arrived."""
    headers = [(b"Authorization", f"Bearer {token}".encode())]
    async with open_websocket_url(url, extra_headers=headers, receive_buffer_size=READ_BYTES,
                                  message_queue_size=1024) as ws:
        hello = orjson.loads(await ws.get_message())
        assert hello["event"] == "hello", hello
        task_status.started()
        seen = 0
        while seen < posts:
            message = await ws.get_message()
            if POSTED not in message:
                continue
            event = orjson.loads(message)
            orjson.loads(event["data"]["post"])
            seen += 1
            if progress is not None:
                progress.add(client)


async def produce(mm: FakeMattermost, posts: int, window: int, progress: Progress | None
                  ) -> None:
    """Create ``posts`` posts, keeping every client within ``window`` of the newest (by the
    clients' counts, or by the server's send queues when the clients are elsewhere)."""
    for i in range(posts):
        if i >= window and i % 32 == 0:
            if progress is not None:
                await progress.wait_all(i - window)
            else:
                await _wait_queues(mm, window)
        await mm.post_as("kim", "town-square", f"post {i} X부품 불량률 12%")


async def _wait_queues(mm: FakeMattermost, window: int) -> None:
    """Server-side pacing for clients in another process: every send queue under ``window``."""
    while max((len(c.pending) for c in mm.hub.conns.values()), default=0) >= window:  # noqa: ASYNC110 - the hub has no event for this
        await trio.sleep(0.0005)


async def run_same_process(clients: int, posts: int, window: int) -> Timing:
    async with FakeMattermost() as mm:
        url = mm.url.replace("http://", "ws://") + "/api/v4/websocket"
        progress = Progress(clients)
        async with trio.open_nursery() as nursery:
            for client in range(clients):
                await nursery.start(consume, url, mm.bot_token, client, posts, progress)
            timing = Timing.start()
            await produce(mm, posts, window, progress)
            await progress.wait_all(posts)
            return timing.stop()


async def run_client_process(clients: int, posts: int, window: int) -> Timing:
    async with FakeMattermost() as mm, trio.open_nursery() as nursery:
        command = [sys.executable, "-m", "bench.bench_fake", "--client-process", mm.url,
                   mm.bot_token, str(clients), str(posts)]
        child = await nursery.start(functools.partial(
            trio.run_process, command, stdout=subprocess.PIPE,
            cwd=ROOT))
        lines = _lines(child.stdout)
        assert await anext(lines) == "ready"
        timing = Timing.start()
        await produce(mm, posts, window, None)
        assert await anext(lines) == "done"
        return timing.stop()


async def _lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[str]:
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = await stream.receive_some()
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield line.decode()


async def client_process_main(url: str, token: str, clients: int, posts: int) -> None:
    ws_url = url.replace("http://", "ws://") + "/api/v4/websocket"
    async with trio.open_nursery() as nursery:
        for client in range(clients):
            await nursery.start(consume, ws_url, token, client, posts, None)
        print("ready", flush=True)
    print("done", flush=True)


async def _deadline(runner: Callable[[int, int, int], Awaitable[Timing]], clients: int,
                    posts: int, window: int) -> Timing:
    """A run that hangs (a client dropped for a full send queue) fails instead."""
    with trio.fail_after(60 + posts * clients / 1000):
        return await runner(clients, posts, window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--small", action="store_true", help="3 000 posts per run")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--clients-in", choices=["same", "process", "both"], default="both")
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the median is shown")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    parser.add_argument("--client-process", nargs=4, metavar=("URL", "TOKEN", "C", "N"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_process:
        url, token, clients, posts = args.client_process
        trio.run(client_process_main, url, token, int(clients), int(posts))
        return
    posts = 3_000 if args.small else args.posts
    modes = ["same", "process"] if args.clients_in == "both" else [args.clients_in]
    rows = []
    print(f"fake Mattermost, {posts} posts via mm.post_as per run, window {args.window}, "
          f"median of {args.repeat} run(s)")
    print(f"{'clients':>7} {'clients in':>10} {'seconds':>8} {'events/s/client':>15} "
          f"{'events/s total':>14} {'server CPU µs/post':>18}")
    for mode in modes:
        for clients in args.clients:
            runner = run_same_process if mode == "same" else run_client_process
            runs = sorted((trio.run(_deadline, runner, clients, posts, args.window)
                           for _ in range(args.repeat)), key=lambda t: t.wall_s)
            timing = runs[len(runs) // 2]
            elapsed = timing.wall_s
            row = {"clients": clients, "clients_in": mode, "posts": posts,
                   "seconds": round(elapsed, 3),
                   "events_per_s_per_client": round(posts / elapsed),
                   "events_per_s_total": round(posts * clients / elapsed),
                   "server_cpu_us_per_post": round(timing.cpu_s / posts * 1e6)}
            rows.append(row)
            print(f"{clients:>7} {mode:>10} {elapsed:>8.2f} {posts / elapsed:>15,.0f} "
                  f"{posts * clients / elapsed:>14,.0f} {timing.cpu_s / posts * 1e6:>18,.0f}",
                  flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
