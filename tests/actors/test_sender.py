from __future__ import annotations

import json
import sqlite3
from contextlib import asynccontextmanager
from functools import partial

import attrs
import httpx
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mchat_actors import outbox, posts
from mchat_actors.actors import sender as sender_module
from mchat_actors.actors.sender import Sender, SenderStats
from mchat_actors.config import MattermostConfig
from mchat_actors.errors import MattermostAuthError, StoreError
from mchat_actors.mattermost.rest import open_mattermost_client
from mchat_actors.mattermost.split import split_message
from mchat_actors.messages import (
    AddReaction,
    ChannelId,
    OutboundRequest,
    Post,
    PostId,
    SendReply,
)
from mchat_actors.ratelimit import TokenBucket
from mchat_actors.store import connect, migrate

EPOCH = 1_700_000_000.0
BOT = "botuser"
CFG = MattermostConfig(url="http://mm.test", token="t0ken-secret")


def wall() -> float:
    """Wall-clock seconds that advance with trio's (mock) clock."""
    return EPOCH + trio.current_time()


class InlineStore:
    """Store.run without the worker thread, so MockClock autojumps stay deterministic."""

    def __init__(self, path):
        self.db = connect(path)
        migrate(self.db)

    async def run(self, fn, *args, **kwargs):
        await trio.lowlevel.checkpoint()
        try:
            return fn(self.db, *args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    async def run_lazy(self, fn, *args, **kwargs):
        return await self.run(fn, *args, **kwargs)


class FakeMattermost:
    """A scriptable in-memory Mattermost REST API (posts, pending_post_id dedup, reactions).

    Faults for create_post calls come from ``faults_for[reply key]``, else from ``faults``
    (then ``always``):
    ok, 429, 503, network (never reaches the server), pending500, 400, lost (the post is
    created but the response is lost), malformed (created, body is not JSON).
    """

    def __init__(self):
        self.posts: list[dict] = []
        self.by_pending: dict[str, tuple[dict, float]] = {}
        self.create_calls: list[float] = []
        self.faults: list[str] = []
        self.faults_for: dict[str, list[str]] = {}  # by props.mchat_reply_key, checked first
        self.always: str | None = None
        self.get_posts_calls = 0
        self.reactions: list[tuple[str, str, str]] = []
        self.reaction_fault: str | None = None
        self.created = trio.Event()
        self.down_until = 0.0  # every request answers 503 before this trio time
        self.pings = 0

    async def handler(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/api/v4/system/ping":
            self.pings += 1
        if trio.current_time() < self.down_until:
            if method == "POST" and path == "/api/v4/posts":
                self.create_calls.append(trio.current_time())
            return httpx.Response(503, json={"id": "", "message": "unavailable"})
        if path == "/api/v4/system/ping":
            return httpx.Response(200, json={"status": "OK"})
        if method == "POST" and path == "/api/v4/posts":
            return self._create(json.loads(request.content))
        if method == "GET" and path.startswith("/api/v4/channels/") and path.endswith("/posts"):
            self.get_posts_calls += 1
            channel = path.split("/")[4]
            in_channel = [p for p in self.posts if p["channel_id"] == channel]
            if "since" in request.url.params:  # like the server: capped at 1000
                since = int(request.url.params["since"])
                found = [p for p in in_channel if p["update_at"] > since][-1000:]
            else:  # newest first, page by page
                page = int(request.url.params.get("page", 0))
                per_page = int(request.url.params.get("per_page", 60))
                newest_first = in_channel[::-1]
                found = newest_first[page * per_page:(page + 1) * per_page][::-1]
            return httpx.Response(200, json={
                "order": [p["id"] for p in reversed(found)], "posts": {p["id"]: p for p in found},
                "next_post_id": "", "prev_post_id": ""})
        if "reactions" in path:
            if self.reaction_fault == "slow":
                await trio.sleep(100)
            if self.reaction_fault == "500":
                return httpx.Response(500, json={"id": "", "message": "Internal Server Error"})
            if method == "DELETE":  # /api/v4/users/{user}/posts/{post}/reactions/{emoji}
                parts = path.split("/")
                self.reactions.append((method, parts[6], parts[8]))
            else:
                body = json.loads(request.content)
                self.reactions.append((method, body["post_id"], body["emoji_name"]))
            return httpx.Response(200, json={"status": "OK"})
        return httpx.Response(404, json={"id": "api.no_route", "message": "nope"})

    def _create(self, body: dict) -> httpx.Response:
        self.create_calls.append(trio.current_time())
        own = self.faults_for.get(body.get("props", {}).get("mchat_reply_key", ""))
        if own:
            fault = own.pop(0)
        else:
            fault = self.faults.pop(0) if self.faults else (self.always or "ok")
        if fault == "429":
            return httpx.Response(429, text="limit exceeded\n", headers={
                "Retry-After": "2", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "10"})
        if fault == "503":
            return httpx.Response(503, json={"id": "", "message": "unavailable"})
        if fault == "network":
            raise httpx.ConnectError("connection refused")
        if fault == "pending500":
            return httpx.Response(500, json={"id": "api.post.deduplicate_create_post.pending",
                                             "message": "pending"})
        if fault == "400":
            return httpx.Response(400, json={"id": "api.post.create_post.root_id.app_error",
                                             "message": "Invalid RootId parameter."})
        post = self._store_post(body)
        if fault == "lost":
            raise httpx.ReadError("connection reset after the request was processed")
        if fault == "malformed":
            return httpx.Response(201, text="<html>proxy</html>")
        return httpx.Response(201, json=post)

    def _store_post(self, body: dict) -> dict:
        pending = body.get("pending_post_id") or ""
        if pending in self.by_pending and wall() - self.by_pending[pending][1] < 30:
            return self.by_pending[pending][0]
        now_ms = int(wall() * 1000)
        post = {"id": f"post{len(self.posts):04d}", "channel_id": body["channel_id"],
                "user_id": BOT, "message": body["message"], "root_id": body.get("root_id", ""),
                "props": body.get("props", {}), "pending_post_id": pending, "type": "",
                "create_at": now_ms, "update_at": now_ms, "delete_at": 0}
        self.posts.append(post)
        if pending:
            self.by_pending[pending] = (post, wall())
        self.created.set()
        return post

    def keys(self, channel: str | None = None) -> list[str]:
        """props.mchat_reply_key of the posts made (in one channel), in creation order."""
        return [p["props"]["mchat_reply_key"] for p in self.posts
                if channel is None or p["channel_id"] == channel]


def trigger(r: SendReply) -> Post:
    """The post ``r`` answers."""
    assert r.trigger_post_id is not None
    return Post(id=r.trigger_post_id, channel_id=r.channel_id, user_id="kim", message="@ai ?")


def reply(channel: str, n: int, message: str | None = None) -> SendReply:
    return SendReply(channel_id=ChannelId(channel), message=message or f"answer {n} in {channel}",
                     reply_key=f"{channel}-trigger{n}:0", root_id=PostId(f"root-{channel}"),
                     trigger_post_id=PostId(f"{channel}-trigger{n}"))


@attrs.define
class Running:
    send: trio.MemorySendChannel[OutboundRequest]
    sender: Sender
    scope: trio.CancelScope

    def crash(self) -> None:
        self.scope.cancel()


@asynccontextmanager
async def sender_running(store, fake, *, cfg=CFG, settings=None, rate=10.0):
    """Run a Sender over ``fake``; leaving the block closes its inbox and waits for it."""
    bucket = TokenBucket(rate)
    transport = httpx.MockTransport(fake.handler)
    with trio.fail_after(3600):
        async with open_mattermost_client(cfg, bucket=bucket, transport=transport) as client:
            send, recv = trio.open_memory_channel[OutboundRequest](1000)
            snd = Sender(cfg, store=store, client=client, bot_user_id=BOT, settings=settings,
                         wall_clock=wall)
            async with trio.open_nursery() as nursery:
                await nursery.start(partial(snd.run, recv))
                async with send:
                    yield Running(send, snd, nursery.cancel_scope)


def pending_count(store) -> int:
    return outbox.status_counts(store.db)[outbox.PENDING]


async def test_posts_a_reply_with_its_pending_post_id_and_props(autojump_clock, tmp_path):
    """A reply is stored, then posted once with the row's pending_post_id and reply-key props."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    async with sender_running(store, fake) as run:
        await run.send.send(reply("c1", 1))
    (post,) = fake.posts
    (row,) = list(store.db.query("SELECT * FROM outbox"))
    assert post["pending_post_id"] == row["pending_post_id"]
    assert post["props"] == {"mchat_reply_key": "c1-trigger1:0", "from_bot": "true",
                             "unsafe_links": "true"}  # hygiene: no link previews
    assert (post["root_id"], post["message"]) == ("root-c1", "answer 1 in c1")
    assert (row["status"], row["mm_post_id"], row["attempts"]) == ("sent", post["id"], 1)
    snapshot = run.sender.statistics()
    assert isinstance(snapshot, SenderStats) and snapshot.sent == 1 and snapshot.pending == 0
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snapshot.sent = 5


class CountingStore(InlineStore):
    """``InlineStore`` that records the name of every unit of work it runs."""

    def __init__(self, path):
        super().__init__(path)
        self.calls: list[str] = []

    async def run(self, fn, *args, **kwargs):
        self.calls.append(fn.__name__)
        return await super().run(fn, *args, **kwargs)


async def test_a_row_committed_with_its_attempt_is_posted_without_marking_again(autojump_clock,
                                                                            tmp_path):
    """The handler's commit wrote the row and its first attempt: the sender posts it with no
    store call before the post (only mark_sent after), and the row says one attempt."""
    store, fake = CountingStore(tmp_path / "s.db"), FakeMattermost()
    r = reply("c1", 1)
    async with sender_running(store, fake) as run:
        (row,) = posts.finish_post(store.db, trigger(r), status="answered", source="websocket",
                                   replies=(r,), max_chars=1000, attempt_at=wall())
        assert row.marked_unsent and row.attempts == 1
        assert outbox.load_pending(store.db)[0].marked_unsent is False  # never read back
        await run.send.send(attrs.evolve(r, committed=(row,)))
    assert fake.keys() == ["c1-trigger1:0"]
    assert store.calls == ["load_pending", "mark_sent"]  # the start's load, then after the post
    stored = outbox.get_row(store.db, row.id)
    assert (stored.status, stored.attempts) == ("sent", 1)


async def test_a_committed_row_whose_post_was_lost_is_found_not_posted_again(autojump_clock,
                                                                            tmp_path):
    """Crash after the server made the post of a row the commit marked attempted: restarted
    40 s later (past the pending_post_id memory), the row is looked up, not posted again."""
    path = tmp_path / "s.db"
    store, fake = InlineStore(path), FakeMattermost()
    fake.always = "lost"
    r = reply("a", 0)
    async with sender_running(store, fake) as run:
        rows = posts.finish_post(store.db, trigger(r), status="answered", source="websocket",
                                 replies=(r,), max_chars=1000, attempt_at=wall())
        await run.send.send(attrs.evolve(r, committed=tuple(rows)))
        await fake.created.wait()
        run.crash()
    await trio.sleep(40)
    fake.always = None
    async with sender_running(InlineStore(path), fake):
        pass
    assert len(fake.posts) == 1 and fake.get_posts_calls == 1
    assert pending_count(store) == 0


async def test_duplicate_requests_post_once(autojump_clock, tmp_path):
    """A reply enqueued by the serializer and then sent to the sender three times posts once."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    outbox.enqueue_replies(store.db, [reply("c1", 1)], max_chars=1000, now=wall())
    async with sender_running(store, fake) as run:
        for _ in range(3):
            await run.send.send(reply("c1", 1))
    assert fake.keys() == ["c1-trigger1:0"]
    assert run.sender.statistics().replies == 3


async def test_channel_order_holds_under_failures(autojump_clock, tmp_path):
    """Transient failures of a channel's head never let a later reply of that channel overtake."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    fake.faults = ["ok", "503", "network", "pending500", "429", "ok", "503", "malformed"]
    async with sender_running(store, fake) as run:
        for n in range(6):
            await run.send.send(reply("a", n))
            await run.send.send(reply("b", n))
        await trio.sleep(120)
    for channel in "ab":
        assert fake.keys(channel) == [f"{channel}-trigger{n}:0" for n in range(6)]
    assert pending_count(store) == 0


async def test_busy_channel_does_not_starve_another(autojump_clock, tmp_path):
    """With 100 replies queued for one channel, another channel's reply goes within 3 posts."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    backlog = [reply("busy", n) for n in range(100)]
    outbox.enqueue_replies(store.db, backlog, max_chars=1000, now=wall())
    async with sender_running(store, fake) as run:
        await run.send.send(reply("quiet", 1))
    assert fake.keys().index("quiet-trigger1:0") <= 2
    assert fake.keys("busy") == [f"busy-trigger{n}:0" for n in range(100)]


async def test_round_robin_alternates_between_backlogged_channels(autojump_clock, tmp_path):
    """Two backlogged channels take turns, one post each."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    outbox.enqueue_replies(store.db, [reply("a", n) for n in range(5)], max_chars=1000, now=wall())
    outbox.enqueue_replies(store.db, [reply("b", n) for n in range(5)], max_chars=1000, now=wall())
    async with sender_running(store, fake):
        pass
    assert [key[0] for key in fake.keys()] == list("ababababab")


async def test_failing_head_holds_back_only_its_channel_and_is_sent_later(autojump_clock,
                                                                         tmp_path):
    """A head that keeps failing stays pending (never dropped) and is sent once the server heals."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    fake.faults_for = {"a-trigger0:0": ["503"] * 8}  # 4 tries, deferral, 4 tries, deferral
    async with sender_running(store, fake) as run:
        await run.send.send(reply("a", 0))
        await run.send.send(reply("a", 1))
        await trio.sleep(0.05)
        await run.send.send(reply("b", 0))
        await trio.sleep(20)
        assert fake.keys() == ["b-trigger0:0"]
        row = outbox.get_row(store.db, 1)
        assert (row.status, row.attempts) == ("pending", 4)
        assert "MattermostUnavailable" in row.last_error
        assert row.next_attempt_at == pytest.approx(row.last_attempt_at + 30, abs=0.5)
        await trio.sleep(120)
    assert fake.keys("a") == ["a-trigger0:0", "a-trigger1:0"]
    stats = run.sender.statistics()
    assert stats.deferred == 2 and stats.retries == 8 and stats.sent == 3


async def test_quick_retries_back_off_by_factor_two(autojump_clock, tmp_path):
    """Transient failures are retried after 1, 2 and 4 s, then deferred 30 s."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    fake.faults = ["503"] * 4
    async with sender_running(store, fake) as run:
        await run.send.send(reply("a", 0))
        await trio.sleep(60)
    gaps = [round(b - a, 1) for a, b in zip(fake.create_calls, fake.create_calls[1:], strict=False)]
    assert gaps[:3] == [1.0, 2.0, 4.0]
    assert gaps[3] >= 30.0


async def test_permanent_error_marks_the_row_failed_and_admin_retry_sends_it(autojump_clock,
                                                                            tmp_path):
    """A 400 marks the row failed, the channel moves on, and an admin retry posts it later."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    fake.faults = ["400"]
    async with sender_running(store, fake) as run:
        await run.send.send(reply("a", 0))
        await run.send.send(reply("a", 1))
        await trio.sleep(1)
        assert fake.keys() == ["a-trigger1:0"]
        row = outbox.get_row(store.db, 1)
        assert row.status == "failed" and "root_id" in row.last_error
        assert outbox.retry_failed(store.db, 1, now=wall())
        await trio.sleep(15)  # the periodic rescan picks it up
    assert fake.keys() == ["a-trigger1:0", "a-trigger0:0"]
    assert run.sender.statistics().failed == 1


async def test_429_waits_for_retry_after_then_retries(autojump_clock, tmp_path):
    """After a 429 with Retry-After 2 no request goes for 2 s, and the reply is posted once."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    fake.faults = ["429"]
    async with sender_running(store, fake) as run:
        await run.send.send(reply("a", 0))
        await run.send.send(reply("b", 0))
    assert fake.create_calls[1] - fake.create_calls[0] >= 2.0
    assert sorted(fake.keys()) == ["a-trigger0:0", "b-trigger0:0"]


async def test_restart_sends_pending_rows_once(autojump_clock, tmp_path):
    """Rows left pending by a run against a dead server are sent once by the next run."""
    path = tmp_path / "s.db"
    store, fake = InlineStore(path), FakeMattermost()
    fake.always = "503"
    async with sender_running(store, fake) as run:
        for n in range(3):
            await run.send.send(reply("a", n))
    assert fake.posts == [] and pending_count(store) == 3
    await trio.sleep(60)
    fake.always = None
    async with sender_running(InlineStore(path), fake):
        pass
    assert fake.keys() == [f"a-trigger{n}:0" for n in range(3)]
    assert pending_count(store) == 0


async def test_lost_response_is_found_by_lookup_and_not_posted_again(autojump_clock, tmp_path):
    """A post whose response was lost is found among the bot's posts after 25 s, not re-posted."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    fake.faults = ["lost", "network", "network", "network"]
    async with sender_running(store, fake) as run:
        await run.send.send(reply("a", 0))
        await trio.sleep(60)
    assert len(fake.posts) == 1 and len(fake.create_calls) == 4
    assert fake.get_posts_calls == 1
    assert outbox.get_row(store.db, 1).mm_post_id == fake.posts[0]["id"]
    assert run.sender.statistics().in_doubt_found == 1


async def test_crash_mid_send_then_late_restart_does_not_duplicate(autojump_clock, tmp_path):
    """A crash after the server created the post, restarted 40 s later, posts nothing new."""
    path = tmp_path / "s.db"
    store, fake = InlineStore(path), FakeMattermost()
    fake.always = "lost"
    async with sender_running(store, fake) as run:
        await run.send.send(reply("a", 0))
        await fake.created.wait()
        run.crash()
    await trio.sleep(40)  # past the server's 30 s pending_post_id memory
    fake.always = None
    async with sender_running(InlineStore(path), fake):
        pass
    assert len(fake.posts) == 1 and fake.get_posts_calls == 1
    assert pending_count(store) == 0


async def test_in_doubt_lookup_finds_the_post_in_a_busy_channel(autojump_clock, tmp_path):
    """1 500 posts followed the lost one: the lookup pages back to it (old code asked with
    since=, which the server caps at 1 000 newest posts, missed it and posted again)."""
    path = tmp_path / "s.db"
    store, fake = InlineStore(path), FakeMattermost()
    fake.always = "lost"
    async with sender_running(store, fake) as run:
        await run.send.send(reply("a", 0))
        await fake.created.wait()
        run.crash()
    fake.always = None
    for n in range(1500):  # other people talk in the channel
        fake._store_post({"channel_id": "a", "message": f"chat {n}", "props": {}})
    await trio.sleep(40)
    async with sender_running(InlineStore(path), fake):
        pass
    assert [p for p in fake.posts if p["props"].get("mchat_reply_key")] == fake.posts[:1]
    assert pending_count(store) == 0


async def test_crash_then_quick_restart_resends_with_the_same_pending_post_id(autojump_clock,
                                                                             tmp_path):
    """Restarted within the dedup window, the resend returns the original post (no lookup)."""
    path = tmp_path / "s.db"
    store, fake = InlineStore(path), FakeMattermost()
    fake.always = "lost"
    async with sender_running(store, fake) as run:
        await run.send.send(reply("a", 0))
        await fake.created.wait()
        run.crash()
    await trio.sleep(5)
    fake.always = None
    async with sender_running(InlineStore(path), fake):
        pass
    assert len(fake.posts) == 1 and len(fake.create_calls) == 2
    assert fake.get_posts_calls == 0
    assert outbox.get_row(store.db, 1).mm_post_id == fake.posts[0]["id"]


async def test_split_reply_keeps_its_order_in_the_thread(autojump_clock, tmp_path):
    """A reply over max_post_chars is posted as ordered chunks in the same thread."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    fake.faults = ["ok", "503", "ok"]
    text = "\n\n".join(f"Paragraph {i}: " + "word " * 8 for i in range(6))
    cfg = attrs.evolve(CFG, max_post_chars=60)
    async with sender_running(store, fake, cfg=cfg) as run:
        await run.send.send(reply("a", 0, message=text))
        await run.send.send(reply("a", 1))
        await trio.sleep(60)
    keys = fake.keys()
    assert keys[:-1] == [f"a-trigger0:0#{n}" for n in range(len(keys) - 1)]
    assert keys[-1] == "a-trigger1:0"
    assert "".join(p["message"] for p in fake.posts[:-1]) == text
    assert {p["root_id"] for p in fake.posts} == {"root-a"}
    assert all(len(p["message"]) <= 60 for p in fake.posts)


async def test_reactions_are_best_effort(autojump_clock, tmp_path):
    """Reactions are added and removed; failures and timeouts are counted, replies still flow."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    async with sender_running(store, fake) as run:
        await run.send.send(AddReaction(post_id=PostId("p1"), emoji_name="hourglass"))
        await run.send.send(AddReaction(post_id=PostId("p1"), emoji_name="hourglass",
                                        remove=True))
        await trio.sleep(1)
        fake.reaction_fault = "500"
        await run.send.send(AddReaction(post_id=PostId("p2"), emoji_name="x"))
        await trio.sleep(1)
        fake.reaction_fault = "slow"
        await run.send.send(AddReaction(post_id=PostId("p3"), emoji_name="y"))
        start = trio.current_time()
        await run.send.send(reply("a", 0))
        await fake.created.wait()
        assert trio.current_time() - start < 1.0
    assert fake.reactions == [("POST", "p1", "hourglass"), ("DELETE", "p1", "hourglass")]
    stats = run.sender.statistics()
    assert (stats.reactions_sent, stats.reactions_failed) == (2, 2)


async def test_rejected_token_is_fatal(autojump_clock, tmp_path):
    """A 401 on create_post ends the sender with MattermostAuthError."""
    store = InlineStore(tmp_path / "s.db")

    class Rejecting(FakeMattermost):
        def _create(self, body):
            return httpx.Response(401, json={"id": "api.context.session_expired.app_error",
                                             "message": "expired"})

    with pytest.raises(BaseExceptionGroup) as info:
        async with sender_running(store, Rejecting()) as run:
            await run.send.send(reply("a", 0))
    assert info.group_contains(MattermostAuthError)
    assert pending_count(store) == 1


async def test_unexpected_error_is_contained_to_one_message(autojump_clock, tmp_path):
    """A failing store call is logged and counted; the next reply is still posted."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    real_run = store.run

    async def flaky_run(fn, *args, **kwargs):
        if fn is outbox.enqueue_replies and args[0][0].reply_key.startswith("a-trigger0"):
            raise StoreError("disk I/O error")
        return await real_run(fn, *args, **kwargs)

    store.run = flaky_run
    async with sender_running(store, fake) as run:
        await run.send.send(reply("a", 0))
        await run.send.send(reply("a", 1))
    assert fake.keys() == ["a-trigger1:0"]
    assert run.sender.statistics().errors == 1


async def test_module_run_and_statistics_snapshot(autojump_clock, tmp_path):
    """The module-level run() serves an inbox until it ends."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    send, recv = trio.open_memory_channel[OutboundRequest](10)
    async with open_mattermost_client(CFG, bucket=TokenBucket(10.0),
                                      transport=httpx.MockTransport(fake.handler)) as client:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(sender_module.run, CFG, store=store, client=client,
                                        inbox=recv, bot_user_id=BOT))
            await send.send(reply("a", 0))
            await send.aclose()
    assert fake.keys() == ["a-trigger0:0"]


FAULTS = st.sampled_from(["ok", "ok", "429", "503", "network", "pending500", "lost",
                          "malformed"])


@settings(max_examples=30)
@given(
    plan=st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 5), st.booleans()),
                  min_size=1, max_size=12),
    faults=st.lists(st.tuples(FAULTS, st.integers(1, 4)), max_size=8).map(
        lambda runs: [fault for fault, n in runs for _ in range(n)]),
    crash_after=st.one_of(st.none(), st.floats(0, 15)),
    restart_gap=st.floats(0, 80),
    committed=st.sets(st.sampled_from("abc")),
)
def test_every_reply_is_posted_exactly_once_in_channel_order(plan, faults, crash_after,
                                                             restart_gap, committed):
    """For random replies, duplicates, fault schedules and crashes: once per key, in order.
    The replies of the ``committed`` channels come as the handler sends them: written by its
    commit with their first attempt recorded (``finish_post(attempt_at=...)``), so the sender
    posts them without marking an attempt itself."""
    fake = FakeMattermost()
    fake.faults = list(faults)
    store = InlineStore(":memory:")
    cfg = attrs.evolve(CFG, max_post_chars=40)
    requests = [reply(ch, n, message=("long " * 20 if is_long else None))
                for ch, n, is_long in plan]
    expected: dict[str, list[str]] = {}
    for r in requests:
        keys = expected.setdefault(r.channel_id, [])
        if any(k.split("#")[0] == r.reply_key for k in keys):
            continue
        chunks = len(split_message(r.message, 40))
        keys.extend([r.reply_key] if chunks == 1 else
                    [f"{r.reply_key}#{i}" for i in range(chunks)])

    async def main():
        async with sender_running(store, fake, cfg=cfg) as run:
            for r in requests:
                if r.channel_id in committed:
                    rows = posts.finish_post(store.db, trigger(r), status="answered",
                                             source="websocket", replies=(r,), max_chars=40,
                                             attempt_at=wall())
                    r = attrs.evolve(r, committed=tuple(rows))
                await run.send.send(r)
            if crash_after is not None:
                await trio.testing.wait_all_tasks_blocked()  # every request is in the outbox
                await trio.sleep(crash_after)
                run.crash()
        for _ in range(10):
            if not pending_count(store):
                break
            await trio.sleep(restart_gap)
            async with sender_running(store, fake, cfg=cfg):
                pass

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert pending_count(store) == 0
    for channel, keys in expected.items():
        assert fake.keys(channel) == keys


async def test_held_replies_go_out_at_full_rate_when_the_server_is_back(autojump_clock,
                                                                         tmp_path):
    """An 8 s server-wide 503 window with 30 replies held over 3 channels: the circuit opens,
    the server is probed (not every row retried), and all 30 are out within 30 / 10 + 2 s of
    the end. Old code deferred each head 30 s after 3 quick retries: ~32 s late."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    fake.down_until = 8.0
    async with sender_running(store, fake) as run:
        for n in range(10):
            for channel in "abc":
                await run.send.send(reply(channel, n))
        await trio.sleep(40)
    assert len(fake.posts) == 30
    last = max(p["create_at"] for p in fake.posts) / 1000 - EPOCH
    assert last <= 8.0 + 30 / 10 + 2
    for channel in "abc":
        assert fake.keys(channel) == [f"{channel}-trigger{n}:0" for n in range(10)]
    failed_posts = [t for t in fake.create_calls if t < 8.0]
    assert len(failed_posts) <= 2  # probes, not posts, while the server is down
    stats = run.sender.statistics()
    assert stats.circuit_opens == 1 and stats.deferred == 0 and not stats.circuit_open


async def test_a_row_that_fails_alone_does_not_open_the_circuit(autojump_clock, tmp_path):
    """A 503 for one row while the server answers pings is that row's problem: per-row
    retries; other channels go on."""
    store, fake = InlineStore(tmp_path / "s.db"), FakeMattermost()
    fake.faults_for = {"a-trigger0:0": ["503"] * 2}
    async with sender_running(store, fake) as run:
        await run.send.send(reply("a", 0))
        await run.send.send(reply("b", 0))
        await trio.sleep(10)
    assert sorted(fake.keys()) == ["a-trigger0:0", "b-trigger0:0"]
    assert run.sender.statistics().circuit_opens == 0 and fake.pings == 2
