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


async def test_the_service_marks_a_post_it_answers_through_the_reactions_port(autojump_clock):
    """The ChatService's ReactFn (the summary's hourglass, then a check mark) becomes
    AddReaction requests on the sender's channel, the hourglass taken away by the check; a
    post only stored gets no ReactFn."""
    from mchat_actors.messages import AddReaction, OutboundRequest
    from mchat_actors.ports import HOURGLASS, Reactions

    given: list[object] = []

    class Summarising(FakeChat):
        async def send_message(self, room, user, content, *, react=None, **kwargs):
            given.append(react)
            if react is not None:
                await react(HOURGLASS)
                await react("white_check_mark")
            return await super().send_message(room, user, content, **kwargs)

    chat = Summarising()
    room = RoomId((await chat.create_room(name="r", kind="channel")).id)
    send, recv = trio.open_memory_channel[OutboundRequest](10)
    invoker = Invoker(chat=chat, timeout_s=5, limiter=trio.CapacityLimiter(1),
                      reactions=Reactions(send))
    await invoker.send(post(1), room=room, user=AgentUserId("a"), respond=True, prompt="요약")
    await invoker.send(post(2), room=room, user=AgentUserId("a"), respond=False, prompt="")
    got = []
    while True:
        try:
            got.append(recv.receive_nowait())
        except trio.WouldBlock:
            break
    assert got == [AddReaction(post_id=PostId("p1"), emoji_name=HOURGLASS),
                   AddReaction(post_id=PostId("p1"), emoji_name=HOURGLASS, remove=True),
                   AddReaction(post_id=PostId("p1"), emoji_name="white_check_mark")]
    assert given[0] is not None and given[1] is None


async def test_prepare_turns_a_failure_into_the_apology_and_leaves_commands_to_send(
        autojump_clock):
    """``prepare``: a failing or hanging ``prepare_answer`` gives the failed Outcome (the
    handler then stores the post and posts the apology); a command gives None, uncounted
    (``send`` makes that call); a service without ``prepare_answer`` gives None."""
    from mchat_actors.actors.invoker import APOLOGY
    from mchat_actors.chat.protocol import NewMessage, PreparedAnswer

    class Answering(FakeChat):
        mode = "ok"

        async def prepare_answer(self, message, *, prompt, seen=None, in_commit=True):
            if self.mode == "bug":
                raise RuntimeError("a bug")
            if self.mode == "hang":
                await trio.sleep(100)
            if prompt.startswith("/"):
                return None
            return PreparedAnswer(seen=False, answer="12%", work=lambda tx: None)

    chat = Answering()
    invoker = Invoker(chat=chat, timeout_s=5, limiter=trio.CapacityLimiter(1))
    message = NewMessage(room=RoomId("r"), user=AgentUserId("a"), content="@ai q", post_id="p1")
    got = await invoker.prepare(post(1), message, prompt="q", seen=lambda conn: False)
    assert isinstance(got, PreparedAnswer) and got.answer == "12%"
    assert await invoker.prepare(post(1), message, prompt="/help", seen=lambda c: False) is None
    assert invoker.stats.calls == 1
    for mode in ("bug", "hang"):
        chat.mode = mode
        failed = await invoker.prepare(post(1), message, prompt="q", seen=lambda c: False)
        assert failed.failed and failed.answer == APOLOGY and failed.result is None
    assert (invoker.stats.failures, invoker.stats.timeouts) == (2, 1)
    plain = Invoker(chat=FakeChat(), timeout_s=5, limiter=trio.CapacityLimiter(1))
    assert await plain.prepare(post(1), message, prompt="q", seen=lambda c: False) is None
