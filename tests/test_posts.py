from __future__ import annotations

import pytest

from mchat_actors import mapping, posts
from mchat_actors.chat.embedded import open_embedded_chat_service
from mchat_actors.chat.protocol import NewMessage, SharedStorage
from mchat_actors.errors import ChatServiceError, StoreError
from mchat_actors.messages import ChannelId, MattermostUserId, Post, PostId
from mchat_actors.posts import PlainPost, store_plain_posts
from mchat_actors.store import open_store


async def test_a_lane_batch_is_one_request_and_commits_all_or_nothing(tmp_path):
    """A lane's plain posts: one request to the storage actor stores the messages, marks the
    posts handled and moves the cursor; the same posts again store nothing twice; a batch
    with a post of an unknown room commits none of its posts (each is then retried alone)."""
    path = str(tmp_path / "lane.db")
    async with open_store(path) as store, \
            open_embedded_chat_service(path, store=store) as chat:
        assert isinstance(chat, SharedStorage) and chat.shares_store()
        user = await chat.create_user(name="kim", email=None)
        room = await chat.create_room(name="r", kind="channel")
        await store.run(mapping.insert_channel, channel_id="c", team_id="t", name="c",
                        display_name="c", channel_type="O", room_id=room.id)

        def item(n: int, room_id: str = room.id) -> PlainPost:
            post = Post(id=PostId(f"p{n}"), channel_id=ChannelId("c"),
                        user_id=MattermostUserId("u"), message=f"부품{n} 얘기", create_at=n)
            return PlainPost(post, "stored", "websocket", NewMessage(
                room=room_id, user=user.id, content=post.message, post_id=post.id,
                created_at_ms=n))

        def count(db, sql):
            return db.conn.execute(sql).fetchone()[0]

        requests = store.writer.stats.requests
        seen, stored = await store.run(store_plain_posts, [item(n) for n in (1, 2, 3)], chat)
        assert store.writer.stats.requests == requests + 1
        assert seen == set() and [m.mchat_post_id for m in stored] == ["p1", "p2", "p3"]
        assert await store.read(posts.channel_cursor, "c") == "p3"
        seen, stored = await store.run(store_plain_posts,
                                       [item(n) for n in (2, 3, 4, 4)], chat)
        assert seen == {"p2", "p3"} and [m.mchat_post_id for m in stored] == ["p4"]
        assert await store.read(count, "SELECT count(*) FROM chat_messages") == 4
        with pytest.raises((StoreError, ChatServiceError)):
            await store.run(store_plain_posts, [item(5), item(6, "no-such-room")], chat)
        assert not await store.read(posts.is_post_seen, "p5")
        assert await store.read(count, "SELECT count(*) FROM chat_messages") == 4
        assert await store.read(posts.channel_cursor, "c") == "p4"
