"""What "every replica keeps its own WebSocket and ignores the channels it does not own" costs
a replica, against "one reader fans out" (docs/postgresql.md, "Replicas: who reads the
events"), measured in the same run on the same frames:

- own socket (chosen): the replica parses EVERY ``posted`` frame (``parse_frame``, as the
  connection actor does) and passes on the events of its channels (``forward_owned``);
- fan-out receiver (baseline): the replica gets only its channels' frames and parses those.

    python -m bench.bench_ownership              # 200 000 frames, 2 000 channels, 3 replicas
    python -m bench.bench_ownership --quick      # 20 000 frames

The lease table is not involved: ``owns`` reads the replica's deadlines in memory (one blake2b
of the channel id, a dictionary lookup). One process, one core; the reader's own parsing and the
fan-out transport of the baseline are not counted (they would only add to it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mchat_actors.actors.ownership import ChannelOwnership, forward_owned  # noqa: E402
from mchat_actors.mattermost.events import Event, parse_frame  # noqa: E402
from mchat_actors.messages import InboundEvent  # noqa: E402
from mchat_actors.pg.leases import Lessee  # noqa: E402


class _NoDatabase:
    async def run(self, fn: object, *args: object, **kwargs: object) -> None:
        raise AssertionError("the filter never reaches the database")

    run_own = run


def frames(n: int, channels: int) -> list[tuple[str, bytes]]:
    """(channel id, a ``posted`` frame as the server sends it)."""
    out = []
    for i in range(n):
        cid = f"ch{i % channels:05d}xxxxxxxxxxxxxxxxxx"
        post = {"id": f"p{i:020d}xxxxxx", "channel_id": cid, "user_id": "u" * 26,
                "message": f"@ai 오늘 X부품 불량률 몇 %야? ({i})", "root_id": "",
                "create_at": 1_700_000_000_000 + i, "update_at": 1_700_000_000_000 + i,
                "props": {}, "type": ""}
        out.append((cid, json.dumps({
            "event": "posted", "seq": i,
            "data": {"post": json.dumps(post), "channel_type": "O", "channel_name": "quality",
                     "team_id": "t" * 26, "sender_name": "@kim"},
            "broadcast": {"omit_users": None, "user_id": "", "channel_id": cid,
                          "team_id": ""}}).encode()))
    return out


async def _pipeline(batch: list[bytes], ownership: ChannelOwnership | None) -> tuple[float, int]:
    """Parse each frame, send its event through the filter (or straight on); seconds, count."""
    raw_send, raw_recv = trio.open_memory_channel[InboundEvent](1024)
    out_send, out_recv = trio.open_memory_channel[InboundEvent](1024)
    passed = [0]

    async def drain() -> None:
        async with out_recv:
            async for _ in out_recv:
                passed[0] += 1

    async def passthrough() -> None:
        async with raw_recv, out_send:
            async for event in raw_recv:
                await out_send.send(event)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain)
        if ownership is None:
            nursery.start_soon(passthrough)
        else:
            nursery.start_soon(forward_owned, raw_recv, out_send, ownership)
        async with raw_send:
            for text in batch:
                parsed = parse_frame(text)
                assert isinstance(parsed, Event)
                await raw_send.send(parsed.value)
    return time.perf_counter() - start, passed[0]


async def main(n: int, channels: int, replicas: int, buckets: int) -> None:
    ownership = ChannelOwnership(_NoDatabase(), Lessee("bench"), buckets=buckets,
                                 clock=lambda: 0.0)
    share = -(-buckets // replicas)  # its fair share, as after a tick
    ownership.lessee.deadlines = {f"bucket:{b}": 1e9 for b in range(share)}
    sample = frames(n, channels)
    mine = [text for cid, text in sample if ownership.owns(cid)]
    base_s, base_n = await _pipeline(mine, None)
    own_s, own_n = await _pipeline([text for _, text in sample], ownership)
    assert base_n == own_n == len(mine)
    print(f"{n} frames over {channels} channels, {buckets} buckets, {replicas} replicas: "
          f"this replica owns {own_n} events ({own_n / n:.0%})")
    print(f"fan-out receiver (baseline): its {base_n} frames in {base_s:6.2f} s "
          f"({base_n / base_s:,.0f} events/s)")
    print(f"own socket (chosen):         all {n} frames in {own_s:6.2f} s "
          f"({n / own_s:,.0f} frames/s read, {own_n / own_s:,.0f} owned events/s)")
    extra_us = (own_s - base_s) / n * 1e6
    print(f"extra CPU per frame of the whole stream: {extra_us:.1f} µs "
          f"(at 1 000 events/s: {extra_us / 1000:.1%} of one core per replica)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--channels", type=int, default=2000)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--buckets", type=int, default=64)
    opts = parser.parse_args()
    trio.run(main, 20_000 if opts.quick else 200_000, opts.channels, opts.replicas,
             opts.buckets)
