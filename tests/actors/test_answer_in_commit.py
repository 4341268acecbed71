"""A question for the in-process ChatService: ONE storage request that reads the memories,
words the answer and holds the question, its answer, the seen mark, the cursor and the outbox
row with its first attempt (``PreparedAnswer.compose``); or, when that read runs past its
budget or the service reads apart (an LLM, PostgreSQL), one read and then that request.

Exactly once: a crash at any step (before, inside or after that request) and the restart's
re-delivery leave one question row, one answer row, one outbox row (which the sender posts
once: tests/actors/test_sender.py), never a second reply.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mchat_actors import mapping, outbox, posts
from mchat_actors import store as store_module
from mchat_actors.actors.handler import Handler
from mchat_actors.actors.invoker import Invoker
from mchat_actors.chat import questions
from mchat_actors.chat.analysis import PlainAnalyzer
from mchat_actors.chat.embedded import EmbeddedChatService, open_embedded_chat_service
from mchat_actors.config import MattermostConfig
from mchat_actors.messages import (
    AgentUserId,
    ChannelId,
    MattermostUserId,
    OutboundRequest,
    Post,
    PostCreated,
    PostId,
    RoomId,
    SendReply,
)
from mchat_actors.ports import ChannelInfo
from mchat_actors.repository import Repositories
from mchat_actors.store import Store, open_store
from mchat_actors.trigger import BotIdentity

CFG = MattermostConfig(url="http://mm.test", token="t0ken-secret")
BOT = BotIdentity(user_id="bot", username="ai-bot")
QUESTION = "@ai X부품 불량률 몇 %야?"
PROGRESS_STEPS = questions._PROGRESS_STEPS  # noqa: SLF001


class Crash(Exception):
    """The process dies here (nothing after it runs)."""


@attrs.define
class Mapper:
    room: RoomId
    agent_user: AgentUserId

    async def channel(self, channel_id: ChannelId, *, request_class: object = None
                      ) -> ChannelInfo:
        return ChannelInfo(channel_id=channel_id, room_id=self.room, type="O", name="quality",
                           team_id="t1", sync_enabled=True)

    async def user(self, user_id: MattermostUserId, *, request_class: object = None
                   ) -> AgentUserId:
        return self.agent_user

    async def member_joined(self, channel_id: ChannelId, user_id: MattermostUserId) -> None:
        pass

    async def member_left(self, channel_id: ChannelId, user_id: MattermostUserId) -> None:
        pass


class CrashingPosts:
    """``posts`` whose ``finish_post`` dies at ``point``: before the ChatService's rows, after
    them, or after every write of the request (all inside it: nothing is committed)."""

    def __init__(self, point: str) -> None:
        self.point = point

    def __getattr__(self, name: str) -> Any:
        return getattr(posts, name)

    def finish_post(self, db: Any, post: Post, **kwargs: Any) -> Any:
        work = kwargs.get("chat_work")

        def chat_work(tx: Any) -> None:
            if self.point == "before_chat_rows":
                raise Crash
            if work is not None:
                work(tx)
            if self.point == "after_chat_rows":
                raise Crash

        rows = posts.finish_post(db, post, **(kwargs | {"chat_work": chat_work}))
        if self.point == "after_outbox_row":
            raise Crash
        return rows

    def answer_post(self, db: Any, post: Post, **kwargs: Any) -> Any:
        compose = kwargs["compose"]

        def crashing(tx: Any) -> Any:
            if self.point == "before_chat_rows":
                raise Crash
            got = compose(tx)
            if self.point == "after_chat_rows":
                raise Crash
            return got

        out = posts.answer_post(db, post, **(kwargs | {"compose": crashing}))
        if self.point == "after_outbox_row":
            raise Crash
        return out


def use_path(w: World, path: str) -> None:
    """``in_commit``: the read inside the request; ``read_apart``: the service reads first (as
    with an LLM); ``over_budget``: the read inside the request is interrupted at once (a budget
    of 0, the clock looked at every VM step), so the handler reads apart after it."""
    w.chat.database.commit_read_budget_s = {"in_commit": questions.COMMIT_READ_BUDGET_S,
                                            "read_apart": None, "over_budget": 0.0}[path]
    questions._PROGRESS_STEPS = 1 if path == "over_budget" else PROGRESS_STEPS  # noqa: SLF001


@attrs.define
class World:
    store: Store
    chat: EmbeddedChatService
    mapper: Mapper

    def handler(self, replies: trio.MemorySendChannel[OutboundRequest],
                crash: str | None = None) -> Handler:
        repos = Repositories(posts=CrashingPosts(crash) if crash else posts,  # type: ignore
                             mapping=mapping, outbox=outbox, state=store_module)
        invoker = Invoker(chat=self.chat, timeout_s=30, limiter=trio.CapacityLimiter(4))
        return Handler(cfg=CFG, store=self.store, mapper=self.mapper, invoker=invoker,
                       replies=replies, bot=BOT, shared_chat=self.chat, repos=repos)

    def count(self, sql: str, *args: object) -> int:
        return int(self.store.db.conn.execute(sql, args).fetchone()[0])


async def world(path: str, stack: Any) -> World:
    store = await stack.enter_async_context(open_store(path))
    chat = await stack.enter_async_context(open_embedded_chat_service(
        path, store=store, analyzer=PlainAnalyzer()))
    room = await chat.create_room(name="quality", kind="channel")
    kim = await chat.create_user(name="kim", email=None)
    await chat.add_room_member(room.id, kim.id)
    await chat.send_message(room.id, kim.id, "/remember X부품 불량률 12%", post_id="m1",
                            respond=True, prompt="/remember X부품 불량률 12%")
    return World(store, chat, Mapper(room.id, kim.id))


def question(post_id: str = "q1") -> PostCreated:
    return PostCreated(post=Post(id=PostId(post_id), channel_id=ChannelId("c1"),
                                 user_id=MattermostUserId("u-kim"), message=QUESTION,
                                 create_at=1_700_000_000_000))


async def test_a_question_is_one_storage_request_and_no_read_of_its_own(tmp_path, monkeypatch):
    """Answered with ONE request to the storage actor (the read, the wording and every row in
    it) and no read of the ChatService's own; the reply reaches the sender as its committed
    row with the first attempt recorded."""
    from contextlib import AsyncExitStack

    from mchat_actors.chat.chat_db import ChatDatabase

    reads: list[str] = []
    real_read = ChatDatabase.read

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(getattr(fn, "__name__", "?"))
        return await real_read(self, fn, *args, **kwargs)

    monkeypatch.setattr(ChatDatabase, "read", counted)
    async with AsyncExitStack() as stack:
        w = await world(str(tmp_path / "q.db"), stack)
        send, recv = trio.open_memory_channel[OutboundRequest](10)
        before = w.store.writer.stats.requests
        await w.handler(send)(question())
        assert w.store.writer.stats.requests - before == 1
        assert reads == []
        reply = recv.receive_nowait()
        assert isinstance(reply, SendReply) and "12%" in reply.message
        (row,) = reply.committed
        assert row.marked_unsent and row.attempts == 1 and row.first_attempt_at is not None
        assert w.count("SELECT count(*) FROM chat_messages WHERE mchat_post_id = 'q1'") == 1
        assert w.count("SELECT count(*) FROM chat_messages WHERE mchat_post_id = 'q1:answer'"
                       " AND role = 'assistant'") == 1
        assert w.count("SELECT attempts FROM outbox WHERE reply_key = 'q1:reply'") == 1
        # delivered again (backfill, replay): dropped, nothing new, no second reply
        await w.handler(send)(question())
        assert recv.statistics().current_buffer_used == 0
        assert w.count("SELECT count(*) FROM outbox") == 1


async def test_a_duplicate_gives_back_its_answer_in_the_loop_guard_s_cap(tmp_path):
    """The seen check comes after the loop guard on this path: a duplicate's reserved answer
    is given back, so it never pushes a later question over MCHAT_MAX_ANSWERS_PER_MIN."""
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        w = await world(str(tmp_path / "g.db"), stack)
        send, recv = trio.open_memory_channel[OutboundRequest](10)
        handler = w.handler(send)
        assert handler.guard is not None
        handler.guard.max_per_min = 2
        for post_id in ("q1", "q1", "q1", "q2"):
            await handler(question(post_id))
        assert [r.reply_key for r in (recv.receive_nowait(), recv.receive_nowait())] == [
            "q1:reply", "q2:reply"]
        assert handler.guard.stats.total_capped() == 0
        assert handler.stats.duplicates == 2


async def test_a_read_over_its_budget_is_read_apart_and_holds_back_no_other_write(tmp_path):
    """The read inside the request runs past its budget: it is interrupted, the request alone
    is rolled back (a plain post committed in the same batch stays), and the question is
    answered once by the read-apart path (a read, then the request)."""
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        w = await world(str(tmp_path / "b.db"), stack)
        use_path(w, "over_budget")
        try:
            send, recv = trio.open_memory_channel[OutboundRequest](10)
            handler = w.handler(send)
            before = w.store.writer.stats.requests

            async def plain() -> None:
                await w.store.run(store_module.set_state, "beside", "committed")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(handler, question())
                nursery.start_soon(plain)
        finally:
            use_path(w, "in_commit")
        assert handler.stats.reads_over_budget == 1
        assert w.store.writer.stats.requests - before == 3  # over budget, plain, the answer
        assert store_module.get_state(w.store.db, "beside") == "committed"
        reply = recv.receive_nowait()
        assert "12%" in reply.message
        assert w.count("SELECT count(*) FROM chat_messages WHERE mchat_post_id = 'q1:answer'"
                       ) == 1
        assert w.count("SELECT count(*) FROM outbox") == 1


async def test_after_a_read_over_budget_questions_read_apart_until_reads_are_quick(
        tmp_path, monkeypatch):
    """A read over its budget raises the service's read cost: while it is over half the
    budget, questions read apart at once (no second interrupted attempt holding the storage
    actor); once the reads are quick again, they are read inside the request again."""
    from contextlib import AsyncExitStack

    from mchat_actors.chat.chat_db import ChatDatabase

    reads: list[str] = []
    real_read = ChatDatabase.read

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(getattr(fn, "__name__", "?"))
        return await real_read(self, fn, *args, **kwargs)

    monkeypatch.setattr(ChatDatabase, "read", counted)
    async with AsyncExitStack() as stack:
        w = await world(str(tmp_path / "a.db"), stack)
        send, recv = trio.open_memory_channel[OutboundRequest](10)
        handler = w.handler(send)
        use_path(w, "over_budget")
        try:
            await handler(question("q1"))  # interrupted, then read apart
            assert handler.stats.reads_over_budget == 1 and len(reads) == 1
            cost = w.chat.read_cost.mean_s
            assert cost > 0
            w.chat.database.commit_read_budget_s = 1.9 * cost  # the mean is over half of it
            await handler(question("q2"))
            assert handler.stats.reads_over_budget == 1 and len(reads) == 2  # apart at once
        finally:
            use_path(w, "in_commit")
        w.chat.read_cost.mean_s = 0.001  # quick reads since
        before = w.store.writer.stats.requests
        await handler(question("q3"))
        assert w.store.writer.stats.requests - before == 1 and len(reads) == 2  # in the request
        assert [recv.receive_nowait().reply_key for _ in range(3)] == [
            "q1:reply", "q2:reply", "q3:reply"]


POINTS = st.sampled_from(["before_chat_rows", "after_chat_rows", "after_outbox_row",
                          "after_commit", None])
PATHS = st.sampled_from(["in_commit", "read_apart", "over_budget"])


@settings(max_examples=40, deadline=None)
@given(crash=POINTS, stored_before=st.booleans(), deliveries=st.integers(1, 3), path=PATHS)
def test_a_crash_at_any_step_neither_loses_the_question_nor_answers_twice(
        crash, stored_before, deliveries, path):
    """Crash at ``crash`` (inside the request: nothing committed; after the commit: the reply
    is in the outbox but never reached the sender), then the restart delivers the post again
    ``deliveries`` times. ``stored_before``: an older release stored the question and its answer
    (``send_message``) and died before recording the post. ``path``: the read inside the
    request, apart from it, or inside it and over its budget (then apart). Always: one question
    row, one answer row, one outbox row, and a reply handed to the sender at most once."""
    from contextlib import AsyncExitStack

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            async with AsyncExitStack() as stack:
                w = await world(str(Path(tmp) / "c.db"), stack)
                use_path(w, path)
                earlier = None
                if stored_before:
                    earlier = (await w.chat.send_message(
                        w.mapper.room, w.mapper.agent_user, QUESTION, post_id="q1", respond=True,
                        prompt="X부품 불량률 몇 %야?")).assistant_message
                send, recv = trio.open_memory_channel[OutboundRequest](10)
                first = send
                if crash == "after_commit":
                    first, dead = trio.open_memory_channel[OutboundRequest](0)
                    await dead.aclose()  # the hand-off to the sender dies
                try:
                    await w.handler(first, crash if crash != "after_commit" else None)(
                        question())
                except (Crash, trio.BrokenResourceError):
                    assert crash is not None
                else:
                    assert crash is None
                if crash not in (None, "after_commit"):  # nothing of the request committed
                    assert w.count("SELECT count(*) FROM outbox") == 0
                    assert w.count("SELECT count(*) FROM mchat_posts WHERE post_id = 'q1'") == 0
                for _ in range(deliveries):  # the restart's backfill, replays
                    await w.handler(send)(question())
                handed = []
                while True:
                    try:
                        handed.append(recv.receive_nowait())
                    except trio.WouldBlock:
                        break
                assert w.count("SELECT count(*) FROM chat_messages WHERE mchat_post_id = 'q1'"
                               " AND role = 'user'") == 1
                assert w.count("SELECT count(*) FROM chat_messages"
                               " WHERE mchat_post_id = 'q1:answer'") == 1
                assert w.count("SELECT count(*) FROM outbox WHERE reply_key = 'q1:reply'") == 1
                assert w.count("SELECT count(*) FROM mchat_posts WHERE post_id = 'q1'") == 1
                assert len(handed) == (0 if crash == "after_commit" else 1)
                (row,) = outbox.load_pending(w.store.db)  # what the sender loads at start
                assert "12%" in row.message
                if earlier is not None:  # the answer stored then is the one sent
                    assert row.message.endswith(earlier)

    try:
        trio.run(main)
    finally:
        questions._PROGRESS_STEPS = PROGRESS_STEPS  # noqa: SLF001


@attrs.define
class CachingAnalyzer(PlainAnalyzer):
    """A plain analyzer with a query cache, as Kiwi's has; counts the analyses made while the
    storage actor's request runs (``inside``)."""

    cache: dict[str, Any] = attrs.Factory(dict)
    inside: bool = False
    analysed_inside: list[str] = attrs.Factory(list)

    def analyze_query(self, text: str) -> Any:
        if text not in self.cache:
            if self.inside:
                self.analysed_inside.append(text)
            self.cache[text] = super().analyze_query(text)
        return self.cache[text]


async def test_the_question_is_analysed_before_the_request_not_inside_it(tmp_path):
    """The question's analysis needs no database: it is made before the storage request (in
    a worker thread), so the request, which holds every write queued behind it, only reads,
    ranks and words (the analyzer's cache has the question)."""
    from contextlib import AsyncExitStack

    analyzer = CachingAnalyzer()

    class Marking:
        def __getattr__(self, name: str) -> Any:
            return getattr(posts, name)

        def answer_post(self, db: Any, post: Post, **kwargs: Any) -> Any:
            analyzer.inside = True
            try:
                return posts.answer_post(db, post, **kwargs)
            finally:
                analyzer.inside = False

    async with AsyncExitStack() as stack:
        path = str(tmp_path / "a.db")
        store = await stack.enter_async_context(open_store(path))
        chat = await stack.enter_async_context(open_embedded_chat_service(
            path, store=store, analyzer=analyzer))
        room = await chat.create_room(name="quality", kind="channel")
        kim = await chat.create_user(name="kim", email=None)
        await chat.add_room_member(room.id, kim.id)
        await chat.send_message(room.id, kim.id, "/remember X부품 불량률 12%", post_id="m1",
                                respond=True, prompt="/remember X부품 불량률 12%")
        w = World(store, chat, Mapper(room.id, kim.id))
        send, recv = trio.open_memory_channel[OutboundRequest](10)
        handler = w.handler(send)
        handler.repos = attrs.evolve(handler.repos, posts=Marking())
        await handler(question())
        reply = recv.receive_nowait()
        assert isinstance(reply, SendReply) and "12%" in reply.message
    assert analyzer.analysed_inside == []
    assert "X부품 불량률 몇 %야?" in analyzer.cache  # analysed, before the request


async def test_with_the_sentence_encoder_a_question_is_still_one_storage_request(
        tmp_path: Path, encoder: Any, monkeypatch: Any) -> None:
    """The default embeds questions (the encoder in the wheel): the vector is computed before
    the request, and the search inside it ranks the vectors the service's cache holds, so a
    question is still ONE request and no read of its own (before: embeddings sent every
    question to the read-apart path, one more round trip)."""
    from contextlib import AsyncExitStack

    from mchat_actors.chat.chat_db import ChatDatabase
    from mchat_actors.chat.embeddings import pending

    reads: list[str] = []
    real_read = ChatDatabase.read

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(getattr(fn, "__name__", "?"))
        return await real_read(self, fn, *args, **kwargs)

    async with AsyncExitStack() as stack:
        path = str(tmp_path / "q.db")
        store = await stack.enter_async_context(open_store(path))
        chat = await stack.enter_async_context(open_embedded_chat_service(
            path, store=store, embeddings=encoder.with_intervals(idle_s=0.01)))
        room = await chat.create_room(name="quality", kind="channel")
        kim = await chat.create_user(name="kim", email=None)
        await chat.add_room_member(room.id, kim.id)
        await chat.send_message(room.id, kim.id, "/remember X부품 불량률 12%", post_id="m1",
                                respond=True, prompt="/remember X부품 불량률 12%")
        with trio.fail_after(10):
            while await chat.db(pending, encoder.model, 1):  # noqa: ASYNC110
                await trio.sleep(0.01)
        w = World(store, chat, Mapper(room.id, kim.id))
        monkeypatch.setattr(ChatDatabase, "read", counted)
        send, recv = trio.open_memory_channel[OutboundRequest](10)
        before = w.store.writer.stats.requests
        await w.handler(send)(question())
        assert w.store.writer.stats.requests - before == 1
        assert [r for r in reads if r != "pending"] == []  # the embedder's own look
        reply = recv.receive_nowait()
        assert isinstance(reply, SendReply) and "12%" in reply.message
        assert len(chat.database._conn.vectors) >= 1  # noqa: SLF001 - ranked from the cache
