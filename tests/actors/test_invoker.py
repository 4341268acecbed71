from __future__ import annotations

import trio

from mchat_actors.actors.invoker import Invoker
from mchat_actors.messages import AgentUserId, ChannelId, MattermostUserId, Post, PostId, RoomId
from tests.fakes import FakeChat


def post(n: int) -> Post:
    return Post(id=PostId(f"p{n}"), channel_id=ChannelId("c"), user_id=MattermostUserId("u"),
                message=f"m{n}")


async def test_storage_does_not_wait_behind_slow_answers(autojump_clock):
    """Answers and storage have separate limits: with every answer slot taken by a 50 s LLM
    call, a plain post is stored at once (old code: one limiter, it waited 50 s)."""
    chat = FakeChat()
    room = (await chat.create_room(name="slow", kind="channel")).id
    other = (await chat.create_room(name="fast", kind="channel")).id
    chat.hang_rooms["slow"] = 50
    invoker = Invoker(chat=chat, timeout_s=60, limiter=trio.CapacityLimiter(1))
    stored_at = {}
    async with trio.open_nursery() as n:
        n.start_soon(lambda: invoker.send(post(1), room=RoomId(room), user=AgentUserId("a"),
                                          respond=True, prompt="q"))
        await trio.sleep(1)
        start = trio.current_time()
        outcome = await invoker.send(post(2), room=RoomId(other), user=AgentUserId("a"),
                                     respond=False, prompt="")
        stored_at["p2"] = trio.current_time() - start
    assert not outcome.failed and "p2" in chat.messages
    assert stored_at["p2"] < 1
