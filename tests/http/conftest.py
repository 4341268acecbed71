"""A real ``Runtime`` with in-memory parts for the HTTP surface's tests.

Real store (tmp SQLite), mapper, invoker, handler and dispatcher; ``FakeChat`` as the
ChatService; a small fake REST for the mapper; the replies channel drained into a list instead
of the sender. ``Harness.client`` talks to the app in-process through ``httpx.ASGITransport``.
"""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any

import attrs
import httpx
import pytest
import trio
import trio.testing

from mchat_actors.actors import dispatcher
from mchat_actors.actors.handler import Handler
from mchat_actors.actors.invoker import Invoker
from mchat_actors.actors.mapper import Mapper
from mchat_actors.webhook_replies import WebhookReplies
from mchat_actors.actors.sweeper import Sweeper
from mchat_actors.app import Runtime
from mchat_actors.config import ChatConfig, Config, HttpConfig, MattermostConfig
from mchat_actors.errors import MattermostApiError
from mchat_actors.http.app import create_app
from mchat_actors.mattermost.rest import ClientStatistics
from mchat_actors.messages import InboundEvent, OutboundRequest, SendReply
from mchat_actors.ratelimit import TokenBucket
from mchat_actors.retry_queue import SqliteRetryQueue
from mchat_actors.store import Store, open_store, store_error
from mchat_actors.trigger import BotIdentity
from tests.fakes import FakeChat

BOT_TOKEN = "bot-token-SECRET-1234567890"
WEBHOOK_TOKEN = "hook-token-SECRET-abcdef"
ADMIN_TOKEN = "admin-token-SECRET-xyz987"
SECRETS = (BOT_TOKEN, WEBHOOK_TOKEN, ADMIN_TOKEN)
BOT_ID = "botuserid000000000000000000"[:26]


@attrs.define
class FakeRest:
    """What the mapper needs from the REST client; ``missing-*`` channels answer 404."""

    requests: int = 0

    async def get_channel(self, channel_id: str) -> dict[str, Any]:
        self.requests += 1
        if channel_id.startswith("missing"):
            raise MattermostApiError(404, "app.channel.get.existing.app_error")
        return {"id": channel_id, "type": "O", "name": channel_id,
                "display_name": channel_id, "team_id": "team1"}

    async def get_channel_members(self, channel_id: str, *, page: int = 0,
                                  per_page: int = 200) -> list[dict[str, Any]]:
        return [{"user_id": "u1"}] if page == 0 else []

    async def get_user(self, user_id: str) -> dict[str, Any]:
        return {"id": user_id, "username": f"name-{user_id}", "email": f"{user_id}@example.com"}

    posts: dict[str, dict[str, Any]] = attrs.Factory(dict)  # what get_post knows

    async def get_post(self, post_id: str) -> dict[str, Any]:
        self.requests += 1
        if post_id not in self.posts:
            raise MattermostApiError(404, "app.post.get.app_error")
        return self.posts[post_id]

    def statistics(self) -> ClientStatistics:
        return ClientStatistics(requests=self.requests, errors=MappingProxyType({}),
                                rate_limited=0)


def make_config(tmp_path, **http: Any) -> Config:
    return Config(
        mattermost=MattermostConfig(url="http://mm.test", token=BOT_TOKEN),
        http=HttpConfig(**{"webhook_tokens": (WEBHOOK_TOKEN,), "admin_token": ADMIN_TOKEN,
                           **http}),
        chat=ChatConfig(timeout_s=20.0),
        db_path=str(tmp_path / "mchat.db"),
    )


@attrs.define
class Harness:
    rt: Runtime
    chat: FakeChat
    rest: FakeRest
    replies: list[OutboundRequest]
    client: httpx.AsyncClient
    app: Any
    nursery: trio.Nursery

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async def wait_replies(self, n: int, timeout_s: float = 5.0) -> list[SendReply]:
        await poll_until(lambda: len(self.replies) >= n, timeout_s)
        return [r for r in self.replies if isinstance(r, SendReply)]


async def poll_until(predicate: Any, timeout_s: float = 5.0) -> None:
    """Wait until ``predicate()`` (sync or async) is true.

    For state that changes in another thread, socket or the store, where there is no event
    to wait on; fails the test after ``timeout_s``.
    """
    with trio.fail_after(timeout_s):
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await trio.sleep(0.01)


@asynccontextmanager
async def open_harness(config: Config, *, background: bool = True,
                       http_client: httpx.AsyncClient | None = None,
                       chat: FakeChat | None = None) -> AsyncIterator[Harness]:
    chat = FakeChat() if chat is None else chat
    rest = FakeRest()
    async with open_store(config.db_path) as store:
        events_send, events_recv = trio.open_memory_channel[InboundEvent](16)
        replies_send, replies_recv = trio.open_memory_channel[OutboundRequest](16)
        bot = BotIdentity(user_id=BOT_ID, username="mchat-bot")
        mapper = Mapper(store=store, rest=rest, chat=chat, bot_user_id=BOT_ID)
        invoker = Invoker(chat=chat, timeout_s=config.chat.timeout_s,
                          limiter=trio.CapacityLimiter(4))
        webhook_replies = WebhookReplies()
        handler = Handler(cfg=config.mattermost, store=store, mapper=mapper, invoker=invoker,
                          replies=replies_send, bot=bot, webhook_replies=webhook_replies)
        sweeper = Sweeper(rest=rest, store=store, events=events_send.clone())
        rt = Runtime(config=config, store=store, chat=chat, client=rest,
                     bucket=TokenBucket(10.0), bot=bot, mapper=mapper, invoker=invoker,
                     handler=handler, sweeper=sweeper, events=events_send,
                     replies=replies_send, webhook_replies=webhook_replies,
                     started_at=trio.current_time())
        replies: list[OutboundRequest] = []

        async def drain() -> None:
            async for request in replies_recv:
                replies.append(request)

        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: dispatcher.run(
                config.queues, inbox=events_recv, handle=handler, stats=rt.dispatcher_stats,
                lanes=rt.dispatcher_lanes,
                retry_queue=SqliteRetryQueue(store), catch_up=sweeper.catch_up,
                task_status=task_status))
            nursery.start_soon(drain)
            app = create_app(rt, background=nursery if background else None,
                             http_client=http_client)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield Harness(rt=rt, chat=chat, rest=rest, replies=replies, client=c, app=app,
                              nursery=nursery)
            nursery.cancel_scope.cancel()


@pytest.fixture
async def harness(tmp_path) -> AsyncIterator[Harness]:
    async with open_harness(make_config(tmp_path)) as h:
        yield h


@attrs.define
class Receiver:
    """A tiny HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it."""

    url: str = ""
    bodies: list[Any] = attrs.Factory(list)
    arrived: trio.Event = attrs.Factory(trio.Event)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        import json

        self.bodies.append(json.loads(b"".join(chunks) or b"null"))
        self.arrived.set()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


@asynccontextmanager
async def open_receiver() -> AsyncIterator[Receiver]:
    from hypercorn.trio import serve

    from mchat_actors.http.server import hypercorn_config

    receiver = Receiver()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, receiver, hypercorn_config("127.0.0.1:0"))
        receiver.url = binds[0]
        yield receiver
        nursery.cancel_scope.cancel()


@attrs.define
class ServerThread:
    """The HTTP surface of a harness served on 127.0.0.1:0 from its own thread and trio run,
    for synchronous clients (schemathesis uses ``requests``)."""

    config: Config
    url: str = ""
    _ready: Any = None
    _token: Any = None
    _stop: Any = None
    _thread: Any = None
    _error: list[BaseException] = attrs.Factory(list)

    def __enter__(self) -> ServerThread:
        import threading

        from mchat_actors.http.server import serve_http

        self._ready = threading.Event()

        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            async with open_harness(self.config) as h:
                self.url = await h.nursery.start(serve_http, h.rt)
                self._ready.set()
                await self._stop.wait()

        def target() -> None:
            try:
                trio.run(main)
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread

                self._error.append(exc)
                self._ready.set()

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error:
            raise self._error[0]
        return self

    def __exit__(self, *exc_info: object) -> None:
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(10)
        if self._error:
            raise self._error[0]



@pytest.fixture
def autojump_clock(monkeypatch: pytest.MonkeyPatch) -> trio.testing.MockClock:
    """A virtual clock, with the store's SQLite work (writes and reads) run inline on the trio
    thread.

    The real store runs SQLite in a worker thread; an autojump clock cannot see threads and
    would jump to the next deadline while a write is still in progress (every task looks
    idle), expiring windows in a few real milliseconds. Inline, SQLite takes no virtual time.
    """
    async def run_inline(self: Store, fn: Any, *args: Any, **kwargs: Any) -> Any:
        await trio.lowlevel.checkpoint()
        try:
            return fn(self.db, *args, **kwargs)
        except sqlite3.Error as exc:
            raise store_error(fn, exc) from exc

    monkeypatch.setattr(Store, "run", run_inline)
    monkeypatch.setattr(Store, "read", run_inline)  # the WAL read connection's thread too
    return trio.testing.MockClock(autojump_threshold=0)
