from __future__ import annotations

import attrs
import trio

from mchat_actors import mapping
from mchat_actors.actors import summaries
from mchat_actors.chat.protocol import MemoryRecord
from mchat_actors.store import open_store


@attrs.define
class SummarizingChat:
    rooms_with_talk: set[str]
    calls: list[tuple[str, int]] = attrs.Factory(list)

    async def summarize_room(self, room, *, hours=24):
        self.calls.append((room, hours))
        if room not in self.rooms_with_talk:
            return None
        return MemoryRecord(id="s1", content=f"요약 {room}", scope="room", room_id=room,
                            owner_id=None)


async def _channels(store):
    for cid, room in (("c1", "r1"), ("c2", "r2"), ("c3", "r3")):
        await store.run(mapping.insert_channel, channel_id=cid, team_id="t", name=cid,
                        display_name=cid, channel_type="O", room_id=room)
    await store.run(mapping.set_channel_sync, "c3", False)


async def test_one_summary_per_synced_channel_with_talk(tmp_path):
    """Quiet channels and sync-off channels get nothing; the key names channel and period."""
    chat = SummarizingChat(rooms_with_talk={"r1", "r3"})
    send, recv = trio.open_memory_channel(10)
    async with open_store(tmp_path / "db") as store:
        await _channels(store)
        n = await summaries.summarize_all(chat, store, send, every_hours=24,
                                          wall_clock=lambda: 86_400 * 5 + 10)
    assert n == 1
    assert sorted(chat.calls) == [("r1", 24), ("r2", 24)]  # r3's channel has sync off
    reply = recv.receive_nowait()
    assert reply.channel_id == "c1" and reply.reply_key == "summary:c1:5"
    assert reply.message.endswith("요약 r1")


async def test_same_period_gives_the_same_reply_key(tmp_path):
    """Two rounds in one period yield one key (the outbox keeps one); the next period differs."""
    chat = SummarizingChat(rooms_with_talk={"r1"})
    send, recv = trio.open_memory_channel(10)
    async with open_store(tmp_path / "db") as store:
        await _channels(store)
        for wall in (3600 * 2 + 1, 3600 * 2 + 3000, 3600 * 3 + 1):
            await summaries.summarize_all(chat, store, send, every_hours=1,
                                          wall_clock=lambda w=wall: w)
    keys = [recv.receive_nowait().reply_key for _ in range(3)]
    assert keys == ["summary:c1:2", "summary:c1:2", "summary:c1:3"]


async def test_run_fires_at_each_period_and_skips_a_service_that_cannot(tmp_path):
    chat = SummarizingChat(rooms_with_talk={"r1"})
    send, recv = trio.open_memory_channel(10)
    stats = summaries.SummaryStats()
    async with open_store(tmp_path / "db") as store:
        await _channels(store)
        with trio.move_on_after(0.55):
            await summaries.run(chat, store, send, every_hours=0.2 / 3600, stats=stats)
        assert stats.runs == 2 and stats.posted == 2
        await summaries.run(object(), store, send, every_hours=1, stats=stats)  # returns at once


async def test_a_summary_is_durable_before_it_is_announced(tmp_path):
    """The outbox row exists before the sender hears of it: a crash after the summary is made
    (here: nobody ever reads the replies channel) still leaves it to be posted on restart.
    Old code only sent it over the memory channel; the sender made it durable later."""
    from mchat_actors import outbox

    chat = SummarizingChat(rooms_with_talk={"r1"})
    send, recv = trio.open_memory_channel(10)
    async with open_store(tmp_path / "db") as store:
        await _channels(store)
        await summaries.summarize_all(chat, store, send, every_hours=24,
                                      wall_clock=lambda: 86_400 * 5 + 10)
        rows = await store.run(outbox.load_pending)
    assert [r.reply_key for r in rows] == ["summary:c1:5"]
    assert recv.receive_nowait().reply_key == "summary:c1:5"
