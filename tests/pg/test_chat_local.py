"""``pg.chat_local.PgLocalChat``: the remote ChatService's local store on PostgreSQL. It stores
and reads what the remote service asks of it, refuses to answer, runs ``chat.repo``'s
``message_by_post`` as its twin and refuses other SQLite functions, and summarises a room
without storing a memory."""

from __future__ import annotations

import pytest

from mchat_actors.chat import repo, units
from mchat_actors.chat.analysis import PlainAnalyzer
from mchat_actors.errors import ChatServiceError, ChatServiceRejected
from mchat_actors.pg.chat_local import PgLocalChat
from mchat_actors.pg.database import open_database

pytestmark = pytest.mark.pg


async def test_the_local_store_on_postgresql(pg_url: str) -> None:
    async with open_database(pg_url) as db:
        local = PgLocalChat(db, analyzer=PlainAnalyzer(), clock=lambda: 1_000_000.0)
        kim = await local.create_user(name="kim", email="kim@example.com")
        assert await local.find_user_by_email("KIM@example.com") == kim
        room = await local.create_room(name="quality", kind="channel")
        await local.add_room_member(room.id, kim.id)
        assert await local.set_room_members(room.id, [kim.id]) == (0, 0)
        sent = await local.send_message(room.id, kim.id, "X부품 불량률 12%", post_id="p1",
                                        created_at_ms=999_000_000)
        assert sent.user_message.is_new and sent.assistant_message is None
        again = await local.send_message(room.id, kim.id, "X부품 불량률 12%", post_id="p1")
        assert not again.user_message.is_new
        with pytest.raises(ChatServiceRejected):
            await local.send_message(room.id, "no-such-user", "x", post_id="p2")  # type: ignore[arg-type]
        with pytest.raises(ChatServiceError):
            await local.send_message(room.id, kim.id, "@ai 질문", post_id="p3", respond=True)
        row = await local.db(repo.message_by_post, "p1")  # the remote service's read: twin
        assert row is not None and row["content"] == "X부품 불량률 12%"
        with pytest.raises(ChatServiceError, match="no PostgreSQL twin"):
            await local.db(units.store_user_message, room.id, kim.id, "x", "p4", None, 0)
        await local.edit_message(post_id="p1", content="X부품 불량률 13%")
        summary = await local.summarize_room(room.id, hours=24)
        assert summary is not None and "13%" in summary.content and summary.kind == "summary"
        await local.delete_message(post_id="p1")
        assert await local.summarize_room(room.id, hours=24) is None
        assert await db.run(lambda c: c.execute("SELECT count(*) FROM memories").fetchone()) \
            == (0,)  # summaries are not stored: the agent keeps the memories
        audience, infos = await local.audience_scope(room.id, kim.id, only_asker=False,
                                                     memory_rooms=[room.id])
        assert audience.readers == {kim.id} and infos[room.id].kind == "channel"


async def test_scheduled_summaries_run_on_postgresql(pg_url: str) -> None:
    """``summaries.run`` with the store's repositories (as ``app.py`` passes them): the
    summary of a mapped channel is queued in PostgreSQL's outbox (with SQLite's default
    repositories the PostgreSQL store refuses ``outbox.enqueue_replies``: no twin)."""
    import trio

    from mchat_actors.actors import summaries
    from mchat_actors.config import ChatConfig, Config, MattermostConfig
    from mchat_actors.pg.url import parse_database_url
    from mchat_actors.storage_backend import open_runtime_store, repositories_for

    config = Config(mattermost=MattermostConfig(url="http://mm.test", token="t"),
                    chat=ChatConfig(backend="remote"), database_url=parse_database_url(pg_url))
    async with open_runtime_store(config) as store:
        from mchat_actors.pg.store import PgStore

        assert isinstance(store, PgStore)
        local = PgLocalChat(store.database, analyzer=PlainAnalyzer())
        kim = await local.create_user(name="kim", email=None)
        room = await local.create_room(name="quality", kind="channel")
        await local.send_message(room.id, kim.id, "라인 2 가동률 87%로 올랐습니다", post_id="p1")
        repos = repositories_for(store)
        await store.run(repos.mapping.insert_channel, channel_id="c1", team_id="t",
                        name="quality", display_name="Quality", channel_type="O",
                        room_id=room.id)
        send, recv = trio.open_memory_channel[object](4)
        stats = summaries.SummaryStats()

        async def at_once(deadline: float) -> None:
            await trio.lowlevel.checkpoint()

        with trio.move_on_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: summaries.run(
                    local, store, send, every_hours=24, stats=stats,  # type: ignore[arg-type]
                    sleep_until=at_once, repos=repos))
                reply = await recv.receive()
                nursery.cancel_scope.cancel()
        assert stats.failures == 0 and stats.posted >= 1
        assert "87%" in reply.message  # type: ignore[attr-defined]
        [row] = await store.run(repos.outbox.load_pending)
        assert row.reply_key.startswith("summary:c1:")
