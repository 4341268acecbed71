"""The sweeper's REST cost: one request per team per sweep plus one per channel that moved."""

from __future__ import annotations

import time
from functools import partial

import attrs
import pytest
import trio
import trio.testing

from mchat_actors import mapping, posts
from mchat_actors.actors.sweeper import Sweeper
from mchat_actors.messages import ChannelId, MattermostUserId, Post, PostId
from tests.fakes import InlineStore


@attrs.define
class FakeServer:
    """Teams, channels with last_post_at, and posts, behind the sweeper's REST calls."""

    channels: dict[str, list[dict]] = attrs.Factory(dict)  # channel id -> posts, oldest first
    calls: list[str] = attrs.Factory(list)
    clock_ms: int = 1_000_000

    def post(self, cid: str) -> dict:
        self.clock_ms += 10
        p = {"id": f"{cid}-{len(self.channels[cid])}", "channel_id": cid, "user_id": "u",
             "message": "m", "create_at": self.clock_ms, "update_at": self.clock_ms}
        self.channels[cid].append(p)
        return p

    async def get_my_teams(self):
        self.calls.append("teams")
        return [{"id": "t1"}]

    async def get_my_channels(self, team_id):
        self.calls.append("channels")
        return [{"id": cid, "type": "O", "last_post_at": posts[-1]["create_at"] if posts else 0}
                for cid, posts in self.channels.items()]

    async def get_posts(self, channel_id, *, since=None, after=None, before=None, page=0,
                        per_page=60):
        self.calls.append(f"posts {channel_id}")
        posts = self.channels[channel_id]
        if after is not None:
            ids = [p["id"] for p in posts]
            posts = posts[ids.index(after) + 1:][:per_page]
        elif since is not None:
            posts = [p for p in posts if p["update_at"] > since]
        return {"order": [p["id"] for p in posts], "posts": {p["id"]: p for p in posts}}


async def test_a_poll_reads_only_the_channels_that_moved(tmp_path, autojump_clock):
    """40 mapped channels, one new post in one of them: a poll costs 2 requests (the channel
    list and that channel), not 40 (old code read every channel on every sweep)."""
    server = FakeServer(channels={f"c{i:02d}": [] for i in range(40)})
    store = InlineStore.open(tmp_path / "s.db")
    for cid in server.channels:
        await store.run(mapping.insert_channel, channel_id=cid, team_id="t1", name=cid,
                        display_name=cid, channel_type="O", room_id=f"r-{cid}")
        first = server.post(cid)
        await store.run(posts.record_post, Post(
            id=PostId(first["id"]), channel_id=ChannelId(cid), user_id=MattermostUserId("u"),
            message="m", create_at=first["create_at"]), status="stored", source="test")
    send, recv = trio.open_memory_channel(100)
    sweeper = Sweeper(rest=server, store=store, events=send)
    await sweeper.sweep(source="poll")
    assert [c for c in server.calls if c.startswith("posts")] == []  # nothing moved
    server.calls.clear()
    new = server.post("c17")
    await sweeper.sweep(source="poll")
    assert server.calls == ["channels", "posts c17"]
    assert recv.receive_nowait().post.id == new["id"]
    server.calls.clear()
    await sweeper.sweep(source="poll")
    assert server.calls == ["channels"]  # read to the end already


@attrs.define
class GatedServer(FakeServer):
    """Answers the channel list as it is when asked, but only once ``gate`` is set."""

    gate: trio.Event | None = None

    async def get_my_channels(self, team_id):
        listed = await super().get_my_channels(team_id)
        if self.gate is not None:
            await self.gate.wait()
        return listed


async def test_a_connection_lost_during_a_sweep_is_not_forgotten_when_it_ends(tmp_path):
    """The verification sweep runs beside the connection: the server restarts while it reads
    the channel list, a post lands in a channel without a cursor, the bot reconnects (new
    hello) and its backfill waits for the sweep's lock. The sweep, which listed the channels
    before the post, must not clear the loss mark on its way out: the backfill then reads that
    channel from the loss on. (It used to clear it: the backfill skipped the channel, and the
    next verification sweeps read only from 5 s before the backfill, past the post: lost.)"""
    now_ms = int(time.time() * 1000)
    server = GatedServer(channels={"c01": [], "c02": []}, clock_ms=now_ms - 600_000)
    server.post("c01")  # old history only: the sweeper keeps no cursor for c01
    store = InlineStore.open(tmp_path / "s.db")
    send, recv = trio.open_memory_channel(100)
    sweeper = Sweeper(rest=server, store=store, events=send)
    assert await sweeper.sweep(source="backfill") == 0
    assert sweeper.lost_since_ms is None

    server.gate = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(sweeper.sweep, source="verify"))
        await trio.testing.wait_all_tasks_blocked()  # the channel list is built, not answered
        sweeper.connection_lost(since_ms=now_ms - 12_000)  # last frame read 12 s ago
        server.clock_ms = now_ms - 10_000
        lost = server.post("c01")  # 10 s ago, while the socket was dead
        server.gate.set()
    assert sweeper.lost_since_ms == now_ms - 17_000  # kept: the sweep began before the loss

    server.gate = None
    assert await sweeper.sweep(source="backfill") == 1
    assert recv.receive_nowait().post.id == lost["id"]
    assert await sweeper.sweep(source="verify") == 0


async def test_polls_read_the_first_new_post_of_a_channel_without_a_cursor(tmp_path):
    """Polling mode: a channel with nothing but old history (no cursor) gets its first new post
    after the first poll. The next poll reads it. (It used to be skipped by every poll: no
    connection was lost, so there was no ``since`` for it; in MCHAT_MODE=polling no post of a
    channel the bot had not handled before was ever read.)"""
    now_ms = int(time.time() * 1000)
    server = FakeServer(channels={"c01": [], "c02": []}, clock_ms=now_ms - 600_000)
    server.post("c01")
    store = InlineStore.open(tmp_path / "s.db")
    send, recv = trio.open_memory_channel(100)
    sweeper = Sweeper(rest=server, store=store, events=send)
    assert await sweeper.sweep(source="poll") == 0
    server.clock_ms = int(time.time() * 1000)
    first = server.post("c01")
    second = server.post("c02")
    server.calls.clear()
    assert await sweeper.sweep(source="poll") == 2
    assert [recv.receive_nowait().post.id for _ in range(2)] == [first["id"], second["id"]]
    assert server.calls == ["channels", "posts c01", "posts c02"]
    server.calls.clear()
    assert await sweeper.sweep(source="poll") == 0
    assert server.calls == ["channels"]  # read to the end already


async def test_a_restart_reads_unmapped_channels_from_the_durable_horizon(tmp_path,
                                                                         autojump_clock):
    """A post made while the service was down (a slow restart: longer than the 5 s margin)
    in a channel the bot never stored anything of is read by the next process: the read
    horizon is in the database (set by its first open, moved by completed sweeps), not the
    new process's start. Without it the post was lost for good (found by the chaos soak)."""
    from mchat_actors import store as store_sql

    now_ms = int(time.time() * 1000)
    server = FakeServer(channels={"quiet": []}, clock_ms=now_ms - 60_000)
    store = InlineStore.open(tmp_path / "s.db")
    await store.run(store_sql.set_state, "sweep_horizon_ms", str(now_ms - 120_000))
    down_post = server.post("quiet")  # a minute ago, while no process ran
    send, recv = trio.open_memory_channel(10)
    sweeper = Sweeper(rest=server, store=store, events=send)  # a new process: starts "now"
    await sweeper.sweep(source="backfill")
    assert recv.receive_nowait().post.id == down_post["id"]
    horizon = int(await store.run(store_sql.get_state, "sweep_horizon_ms"))
    assert now_ms - 11 * 60_000 < horizon < now_ms  # moved forward, less the margin


async def test_the_first_open_of_a_database_starts_the_horizon(tmp_path):
    from mchat_actors import store as store_sql

    from mchat_actors.horizon import process_started_ms

    started = process_started_ms()  # 5 s before the process started (mchat_actors.horizon)
    assert started is not None
    store = InlineStore.open(tmp_path / "s.db")
    first = int(await store.run(store_sql.get_state, "sweep_horizon_ms"))
    assert started - 5_000 - 1_000 <= first <= started - 5_000
    store2 = InlineStore.open(tmp_path / "s.db")  # a later open keeps it
    assert int(await store2.run(store_sql.get_state, "sweep_horizon_ms")) == first


async def test_posts_already_handled_are_not_emitted_nor_counted_as_missed(tmp_path):
    """The WebSocket delivered (and the runtime handled) posts after the sweeper last read a
    channel: the verification sweep re-reads them from its older cursor but emits none and
    reports 0 (it used to report them as posts the WebSocket had not delivered)."""
    server = FakeServer(channels={"c1": []}, clock_ms=int(time.time() * 1000))
    store = InlineStore.open(tmp_path / "s.db")
    await store.run(mapping.insert_channel, channel_id="c1", team_id="t1", name="c1",
                    display_name="c1", channel_type="O", room_id="r-c1")
    send, recv = trio.open_memory_channel(100)
    sweeper = Sweeper(rest=server, store=store, events=send)
    first = server.post("c1")  # read by the backfill, then handled
    assert await sweeper.sweep(source="backfill") == 1
    assert recv.receive_nowait().post.id == first["id"]
    await store.run(posts.record_post, Post(
        id=PostId(first["id"]), channel_id=ChannelId("c1"), user_id=MattermostUserId("u"),
        message="m", create_at=first["create_at"]), status="stored", source="backfill")
    handled = [server.post("c1") for _ in range(3)]  # delivered by the socket and handled
    for p in handled:
        await store.run(posts.record_post, Post(
            id=PostId(p["id"]), channel_id=ChannelId("c1"), user_id=MattermostUserId("u"),
            message="m", create_at=p["create_at"]), status="stored", source="websocket")
    missed = server.post("c1")  # never delivered
    assert await sweeper.sweep(source="verify") == 1
    assert recv.receive_nowait().post.id == missed["id"]
    with pytest.raises(trio.WouldBlock):
        recv.receive_nowait()


async def test_a_backfill_says_when_each_channel_is_done_after_its_posts(tmp_path,
                                                                         autojump_clock):
    """``done(channel)`` comes for every listed channel, those read after their posts were all
    emitted, those with nothing new at once: the connection then lets that channel's live
    events pass while the backfill goes on."""
    server = FakeServer(channels={f"c{i}": [] for i in range(4)})
    store = InlineStore.open(tmp_path / "d.db")
    for cid in server.channels:
        await store.run(mapping.insert_channel, channel_id=cid, team_id="t1", name=cid,
                        display_name=cid, channel_type="O", room_id=f"r-{cid}")
        first = server.post(cid)
        await store.run(posts.record_post, Post(
            id=PostId(first["id"]), channel_id=ChannelId(cid), user_id=MattermostUserId("u"),
            message="m", create_at=first["create_at"]), status="stored", source="test")
    send, recv = trio.open_memory_channel(100)
    sweeper = Sweeper(rest=server, store=store, events=send)
    await sweeper.sweep(source="poll")
    moved = [server.post("c2")["id"], server.post("c2")["id"]]
    done: list[tuple[str, list[str]]] = []

    async def release(channel_id: str) -> None:
        emitted = []
        while True:
            try:
                emitted.append(recv.receive_nowait().post.id)
            except trio.WouldBlock:
                break
        done.append((channel_id, emitted))

    await sweeper.sweep(source="backfill", done=release)
    assert done == [("c0", []), ("c1", []), ("c2", moved), ("c3", [])]
