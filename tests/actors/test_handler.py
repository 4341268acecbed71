from __future__ import annotations

import trio

from mchat_actors.actors.handler import WebhookReplies


async def test_waiter_gets_the_reply_text(autojump_clock):
    hub = WebhookReplies()
    hub.expect("p1")
    assert hub.deliver("p1", "answer")
    assert await hub.wait("p1", 4.5) == "answer"


async def test_no_reply_wakes_the_waiter_at_once(autojump_clock):
    """A post handled without a reply does not hold the webhook response for 4.5 s."""
    hub = WebhookReplies()
    hub.expect("p1")
    start = trio.current_time()
    async with trio.open_nursery() as n:
        n.start_soon(lambda: _later(hub))
        assert await hub.wait("p1", 4.5) is None
    assert trio.current_time() - start < 1.5


async def _later(hub: WebhookReplies) -> None:
    await trio.sleep(1)
    hub.no_reply("p1")


async def test_late_reply_is_not_taken_after_the_deadline(autojump_clock):
    """After the wait timed out, deliver() says False so the reply goes to the outbox."""
    hub = WebhookReplies()
    hub.expect("p1")
    assert await hub.wait("p1", 4.5) is None
    assert hub.deliver("p1", "late") is False


async def test_a_lane_batch_is_one_request_and_commits_all_or_nothing(tmp_path):
    """A lane's plain posts: one request to the storage actor stores the messages, marks the
    posts handled and moves the cursor; the same posts again store nothing twice; a batch
    with a post of an unknown room commits none of its posts (each is then retried alone)."""
    import pytest

    from mchat_actors import mapping
    from mchat_actors.actors.handler import _Plain, store_plain_posts
    from mchat_actors.chat.embedded import open_embedded_chat_service
    from mchat_actors.chat.protocol import NewMessage, SharedStorage
    from mchat_actors.errors import ChatServiceError, StoreError
    from mchat_actors.messages import ChannelId, MattermostUserId, Post, PostId
    from mchat_actors.store import open_store

    path = str(tmp_path / "lane.db")
    async with open_store(path) as store, \
            open_embedded_chat_service(path, store=store) as chat:
        assert isinstance(chat, SharedStorage) and chat.shares_store()
        user = await chat.create_user(name="kim", email=None)
        room = await chat.create_room(name="r", kind="channel")
        await store.run(mapping.insert_channel, channel_id="c", team_id="t", name="c",
                        display_name="c", channel_type="O", room_id=room.id)

        def item(n: int, room_id: str = room.id) -> _Plain:
            post = Post(id=PostId(f"p{n}"), channel_id=ChannelId("c"),
                        user_id=MattermostUserId("u"), message=f"부품{n} 얘기", create_at=n)
            return _Plain(post, "stored", "websocket", NewMessage(
                room=room_id, user=user.id, content=post.message, post_id=post.id,
                created_at_ms=n))

        def count(db, sql):
            return db.conn.execute(sql).fetchone()[0]

        requests = store.writer.stats.requests
        seen, stored = await store.run(store_plain_posts, [item(n) for n in (1, 2, 3)], chat)
        assert store.writer.stats.requests == requests + 1
        assert seen == set() and [m.mchat_post_id for m in stored] == ["p1", "p2", "p3"]
        assert await store.read(mapping.channel_cursor, "c") == "p3"
        seen, stored = await store.run(store_plain_posts, [item(n) for n in (2, 3, 4)], chat)
        assert seen == {"p2", "p3"} and [m.mchat_post_id for m in stored] == ["p4"]
        assert await store.read(count, "SELECT count(*) FROM chat_messages") == 4
        with pytest.raises((StoreError, ChatServiceError)):
            await store.run(store_plain_posts, [item(5), item(6, "no-such-room")], chat)
        assert not await store.read(mapping.is_post_seen, "p5")
        assert await store.read(count, "SELECT count(*) FROM chat_messages") == 4
        assert await store.read(mapping.channel_cursor, "c") == "p4"
