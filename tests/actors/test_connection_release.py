"""During a backfill, live events of a channel the backfill has read go on at once, after its
backfilled posts; the other channels' events wait for the backfill's end (actors/connection)."""

from __future__ import annotations

import pytest
import trio

from mchat_actors.actors.connection import ConnectionStats, ResumeState, run_connection
from mchat_actors.config import Config
from mchat_actors.errors import MattermostUnavailable
from mchat_actors.messages import ChannelId, MattermostUserId, Post, PostCreated, PostId
from mchat_actors.testing import FakeMattermost


def _id(event: object) -> str:
    assert isinstance(event, PostCreated)
    return event.post.message


async def test_a_released_channel_goes_on_during_the_backfill_in_order():
    async with FakeMattermost() as mm:
        a = (await mm.create_channel("a", "O", members=["kim", "mchat-bot"])).id
        b = (await mm.create_channel("b", "O", members=["kim", "mchat-bot"])).id
        c = (await mm.create_channel("c", "O", members=["kim", "mchat-bot"])).id
        cfg = Config.from_env({"MCHAT_URL": mm.url, "MCHAT_TOKEN": mm.bot_token,
                               "MCHAT_WS_PING_INTERVAL": "30"}).mattermost
        send, recv = trio.open_memory_channel(100)
        stats = ConnectionStats()
        got: list[str] = []
        backfill_over = trio.Event()

        async def take(until: int) -> None:
            with trio.fail_after(10):
                while len(got) < until:
                    got.append(_id(await recv.receive()))

        async def held(n: int) -> None:  # the reader has read n live posts (held or passed)
            with trio.fail_after(10):
                while stats.events["posted"] < n:  # noqa: ASYNC110 - a counter, no event
                    await trio.sleep(0.01)

        async def backfill(is_new: bool, release) -> None:  # noqa: ANN001
            await mm.post_as("kim", a, "a1")
            await mm.post_as("kim", b, "b1")
            await mm.post_as("kim", c, "c1")
            await held(3)
            assert got == [] and recv.statistics().current_buffer_used == 0  # all held
            await release(a)  # a read: its held event goes, then its live ones pass
            await take(1)
            await mm.post_as("kim", a, "a2")
            await take(2)
            assert stats.released == 1
            # b's backfilled post, then b released: its held live post comes after it
            await send.send(PostCreated(post=Post(id=PostId("b0"), channel_id=ChannelId(b),
                                                  user_id=MattermostUserId("u"),
                                                  message="b0")))
            await release(b)
            await take(4)
            assert recv.statistics().current_buffer_used == 0  # c still held
            backfill_over.set()

        async def client() -> None:
            with pytest.raises(MattermostUnavailable):
                await run_connection(cfg, resume=ResumeState(), events=send,
                                     on_ready=backfill, stats=stats)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(client)
            with trio.fail_after(10):
                await backfill_over.wait()
            await take(5)  # c's live post, once the backfill is over
            await mm.post_as("kim", c, "c2")
            await take(6)
            nursery.cancel_scope.cancel()
        assert got == ["a1", "a2", "b0", "b1", "c1", "c2"]


async def test_after_the_buffer_overflows_no_channel_passes_the_dropped_events(monkeypatch):
    """A full buffer drops what it held (the backfill runs again and reads them): from then on
    no channel is released in this backfill, or its newer events would overtake the dropped
    older ones."""
    from mchat_actors.actors import connection

    monkeypatch.setattr(connection, "BUFFER_CAP", 2)
    cfg = Config.from_env({"MCHAT_URL": "http://127.0.0.1:9", "MCHAT_TOKEN": "t"}).mattermost
    send, recv = trio.open_memory_channel(10)
    conn = connection._Connection(cfg, ResumeState(), send, None, ConnectionStats(), "", None)
    conn.buffer = []

    def live(n: int, channel: str = "x") -> PostCreated:
        return PostCreated(post=Post(id=PostId(f"{channel}{n}"), channel_id=ChannelId(channel),
                                     user_id=MattermostUserId("u"), message=f"{channel}{n}"))

    await conn._release("y")  # y read: its events pass
    assert conn._pass_released(live(0, "y"))
    for n in range(3):
        conn._hold(n, live(n))
    assert conn.overflowed and conn.buffer == []
    assert not conn._pass_released(live(1, "y"))  # released before: held (dropped) now
    await conn._release("x")
    assert not conn._pass_released(live(3))
    assert [_id(recv.receive_nowait())] == ["y0"]
    assert recv.statistics().current_buffer_used == 0
