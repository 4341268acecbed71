"""Runtime benchmark: the whole service (app.run) against the fake Mattermost on loopback.

    .venv/bin/python -m bench.bench_runtime [--small]

Prints three measurements:
1. ingest: plain posts (stored, not answered) spread over 20 channels, created as fast as the
   fake can broadcast them; events/s from the first post to the last one handled.
2. latency: triggers one at a time (so the rate limit never queues them) with a ChatService
   that takes exactly DELAY ms; the reply's server time minus the trigger's, minus DELAY, is
   what the runtime adds (WebSocket in, dispatch, store, outbox, rate-limited REST out).
3. send rate: a backlog of triggers with MCHAT_RATE_LIMIT=10 and an instant ChatService;
   achieved replies/s from the first reply to the last, against the limit.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from functools import partial

import attrs
import trio

from mchat_actors import app
from mchat_actors.chat.protocol import ChatRoom, ChatUser, SendResult, StoredMessage
from mchat_actors.config import Config
from mchat_actors.testing import FakeMattermost

FAST = {"MCHAT_HTTP_LISTEN": "127.0.0.1:0", "MCHAT_WS_PING_INTERVAL": "30"}


@attrs.define
class DelayChat:
    """A ChatService that answers every trigger after exactly ``delay_s``."""

    delay_s: float = 0.0
    stored: int = 0
    _n: int = 0

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    async def find_user_by_email(self, email: str) -> None:
        return None

    async def create_user(self, *, name: str, email: str | None) -> ChatUser:
        return ChatUser(id=self._id("u"), name=name, email=email)  # type: ignore[arg-type]

    async def create_room(self, *, name: str, kind: str) -> ChatRoom:
        return ChatRoom(id=self._id("r"), name=name, kind=kind)  # type: ignore[arg-type]

    async def add_room_member(self, room: str, user: str) -> None:
        return None

    async def remove_room_member(self, room: str, user: str) -> None:
        return None

    async def send_message(self, room, user, content, *, post_id=None, respond=False,
                           **_: object) -> SendResult:
        self.stored += 1
        if respond and self.delay_s:
            await trio.sleep(self.delay_s)
        msg = StoredMessage(id=self._id("m"), room_id=room, user_id=user, content=content,
                            mchat_post_id=post_id, created_at_ms=0)
        return SendResult(user_message=msg, assistant_message="ok" if respond else None)

    async def edit_message(self, *, post_id: str, content: str) -> None:
        return None

    async def delete_message(self, *, post_id: str) -> None:
        return None


def _config(mm: FakeMattermost, db: str, **env: str) -> Config:
    return Config.from_env({"MCHAT_URL": mm.url, "MCHAT_TOKEN": mm.bot_token, "MCHAT_DB": db,
                            "MCHAT_MAX_ANSWERS_PER_MIN": "1000000",  # load, not a bot loop
                            **FAST, **env})


async def _wait(predicate, timeout: float = 120.0) -> None:  # noqa: ANN001
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.005)


def _replies(mm: FakeMattermost) -> dict[str, dict]:
    out = {}
    for p in mm.state.posts.values():
        key = (p.get("props") or {}).get("mchat_reply_key")
        if key:
            out[key.split(":")[0]] = p
    return out


async def bench_ingest(n: int, tmp: str) -> float:
    chat = DelayChat()
    async with FakeMattermost() as mm:
        channels = [(await mm.create_channel(f"load-{i}", "O", members=["kim", "mchat-bot"])).id
                    for i in range(20)]
        async with trio.open_nursery() as nursery:
            rt = await nursery.start(partial(app.run, _config(mm, f"{tmp}/ingest.db",
                                                              MCHAT_RATE_LIMIT="1000"),
                                             chat=chat))
            await _wait(lambda: rt.reconnect_stats.state.mode == "websocket")
            for cid in channels:  # map the rooms first: this measures steady-state ingest
                await mm.post_as("kim", cid, "warm-up")
            await _wait(lambda: chat.stored >= len(channels))
            base = chat.stored
            start = time.perf_counter()
            for i in range(n):
                await mm.post_as("kim", channels[i % len(channels)], f"메시지 {i}")
            await _wait(lambda: chat.stored - base >= n)
            elapsed = time.perf_counter() - start
            rt.request_shutdown()
    return n / elapsed


async def bench_latency(n: int, delay_s: float, tmp: str) -> list[float]:
    chat = DelayChat(delay_s=delay_s)
    async with FakeMattermost() as mm, trio.open_nursery() as nursery:
        rt = await nursery.start(partial(app.run, _config(mm, f"{tmp}/lat.db"), chat=chat))
        await _wait(lambda: rt.reconnect_stats.state.mode == "websocket")
        warm = await mm.post_as("kim", "town-square", "@ai warm-up")
        await _wait(lambda: warm["id"] in _replies(mm))
        added = []
        for i in range(n):
            post = await mm.post_as("kim", "town-square", f"@ai 질문 {i}")
            await _wait(lambda: post["id"] in _replies(mm))
            reply = _replies(mm)[post["id"]]
            added.append((reply["create_at"] - post["create_at"]) / 1000 - delay_s)
            await trio.sleep(0.12)  # stay under 10 req/s: measure latency, not queueing
        rt.request_shutdown()
    return added


async def bench_send_rate(n: int, tmp: str) -> float:
    chat = DelayChat()
    async with FakeMattermost() as mm, trio.open_nursery() as nursery:
        rt = await nursery.start(partial(app.run, _config(mm, f"{tmp}/rate.db",
                                                          MCHAT_RATE_LIMIT="10"), chat=chat))
        await _wait(lambda: rt.reconnect_stats.state.mode == "websocket")
        ids = [(await mm.post_as("kim", ("town-square", "quality")[i % 2], f"@ai {i}"))["id"]
               for i in range(n)]
        await _wait(lambda: all(i in _replies(mm) for i in ids))
        times = sorted(r["create_at"] for k, r in _replies(mm).items() if k in set(ids))
        rt.request_shutdown()
    return (len(times) - 1) / ((times[-1] - times[0]) / 1000)


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def main(small: bool) -> None:
    n_ingest, n_lat, n_rate = (300, 20, 30) if small else (3000, 100, 100)
    delay = 0.05
    with tempfile.TemporaryDirectory() as tmp:
        ingest = await bench_ingest(n_ingest, tmp)
        added = await bench_latency(n_lat, delay, tmp)
        rate = await bench_send_rate(n_rate, tmp)
    print(f"{'measurement':<44} {'value':>12}")
    print(f"{'ingest, plain posts over 20 channels':<44} {ingest:>9.0f} /s  (n={n_ingest})")
    print(f"{'reply latency added by runtime, p50':<44} {_pct(added, .5) * 1000:>9.1f} ms "
          f"(ChatService {delay * 1000:.0f} ms, n={n_lat})")
    print(f"{'reply latency added by runtime, p99':<44} {_pct(added, .99) * 1000:>9.1f} ms")
    print(f"{'reply latency added, mean':<44} {statistics.mean(added) * 1000:>9.1f} ms")
    print(f"{'send rate under backlog (limit 10/s)':<44} {rate:>9.2f} /s  "
          f"({rate / 10:.1%} of the limit, n={n_rate})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="a quick run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    trio.run(main, args.small)

