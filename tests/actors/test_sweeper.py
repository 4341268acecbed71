"""The sweeper's REST cost: one request per team per sweep plus one per channel that moved."""

from __future__ import annotations

import attrs
import trio

from mchat_actors import mapping
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
        await store.run(mapping.record_post, Post(
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
