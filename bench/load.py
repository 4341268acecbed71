"""The load generator: users posting through the fake's REST API, and a user watching replies.

``Users.post`` is ``POST /api/v4/posts`` with the user's own token, as a Mattermost client does;
the fake rate-limits each token, so posts rotate over many users. ``Watcher`` is one more user's
WebSocket (``watch`` belongs to every channel) that counts the bot's replies as they appear, for
the progress line. Figures never come from the watcher: they come from the fake's own record of
posts and requests once a run is over (``outcome``).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable

import attrs
import httpx
import trio
import trio_websocket

from .procs import Fake


@attrs.define
class Sent:
    post_id: str
    channel: str
    message: str
    create_at: int  # server ms
    question: bool


@attrs.define
class Users:
    """Posts as rotating users; a 429 for a user is retried with the next one."""

    fake: Fake
    client: httpx.AsyncClient
    names: list[str]
    sent: list[Sent] = attrs.Factory(list)
    errors: int = 0
    _turn: itertools.cycle = attrs.field(default=None)  # type: ignore[type-arg]

    @classmethod
    def open(cls, fake: Fake, max_connections: int = 32) -> Users:
        client = httpx.AsyncClient(base_url=fake.url + "/api/v4", timeout=30,
                                   limits=httpx.Limits(max_connections=max_connections,
                                                       max_keepalive_connections=max_connections))
        names = sorted(n for n in fake.users if n.startswith("u"))
        return cls(fake=fake, client=client, names=names, turn=itertools.cycle(names))

    async def post(self, channel: str, message: str, *, question: bool) -> Sent | None:
        channel_id = self.fake.channels[channel]
        for _attempt in range(len(self.names)):
            user = next(self._turn)
            try:
                response = await self.client.post(
                    "/posts", json={"channel_id": channel_id, "message": message},
                    headers={"Authorization": f"Bearer {self.fake.users[user]}"})
            except httpx.TransportError:
                self.errors += 1
                await trio.sleep(0.05)
                continue
            if response.status_code == 429:
                continue
            if response.status_code != 201:
                self.errors += 1
                return None
            body = response.json()
            sent = Sent(post_id=body["id"], channel=channel, message=message,
                        create_at=int(body["create_at"]), question=question)
            self.sent.append(sent)
            return sent
        self.errors += 1
        return None

    async def aclose(self) -> None:
        await self.client.aclose()


@attrs.define
class Watcher:
    """Counts the bot's posts as the ``watch`` user sees them; reconnects when dropped."""

    fake: Fake
    replies: int = 0
    reply_times: list[float] = attrs.Factory(list)
    reply_roots: list[str] = attrs.Factory(list)  # the post each reply answers, in order seen

    async def run(self) -> None:
        url = self.fake.url.replace("http://", "ws://") + "/api/v4/websocket"
        headers = [("Authorization", f"Bearer {self.fake.users['watch']}")]
        while True:
            try:
                async with trio_websocket.open_websocket_url(
                        url, extra_headers=headers, max_message_size=1 << 24) as ws:
                    while True:
                        self._see(await ws.get_message())
            except (trio_websocket.HandshakeError, trio_websocket.ConnectionClosed, OSError):
                await trio.sleep(0.2)

    def _see(self, frame: str | bytes) -> None:
        event = json.loads(frame)
        if event.get("event") != "posted":
            return
        post = json.loads(event["data"]["post"])
        if post.get("user_id") == self.fake.bot_id:
            self.replies += 1
            self.reply_times.append(time.time())
            self.reply_roots.append(str(post.get("root_id") or ""))


async def progress(label: str, started: float, users: Users, watcher: Watcher,
                   every_s: float = 1.0, extra: Callable[[], str] | None = None) -> None:
    """One line a second while a run goes on (cancelled by its caller)."""
    while True:
        await trio.sleep(every_s)
        more = f" {extra()}" if extra else ""
        print(f"    {label:<28} t={time.time() - started:6.1f}s posted={len(users.sent):>6} "
              f"replies={watcher.replies:>6}{more}", flush=True)


# -- the outcome of a run, from the fake's own record -------------------------------------------

@attrs.define
class Answer:
    trigger: dict[str, object]
    replies: list[dict[str, object]]

    @property
    def latency_s(self) -> float | None:
        if not self.replies:
            return None
        return (int(self.replies[0]["create_at"]) - int(self.trigger["create_at"])) / 1000


@attrs.define
class Outcome:
    answers: list[Answer]  # one per question, in create order
    bot_requests: list[dict[str, object]]  # the bot token's REST requests, in arrival order
    bot_posts: list[dict[str, object]]

    @property
    def lost(self) -> int:
        return sum(1 for a in self.answers if not a.replies)

    @property
    def duplicated(self) -> int:
        return sum(max(0, len(a.replies) - 1) for a in self.answers)

    @property
    def reordered(self) -> int:
        """Adjacent questions of one channel whose first replies came in the other order."""
        by_channel: dict[str, list[Answer]] = {}
        for a in self.answers:
            by_channel.setdefault(str(a.trigger["channel_id"]), []).append(a)
        bad = 0
        for answers in by_channel.values():
            times = [int(a.replies[0]["create_at"]) for a in answers if a.replies]
            bad += sum(1 for x, y in itertools.pairwise(times) if y < x)
        return bad


def is_question(post: dict[str, object]) -> bool:
    return "@ai" in str(post.get("message", "")).lower()


async def outcome(fake: Fake, *, since_ms: int = 0) -> Outcome:
    """Questions posted after ``since_ms`` with their replies, and the bot's requests."""
    posts = await fake.posts()
    bot_posts = [p for p in posts if p.get("user_id") == fake.bot_id]
    by_root: dict[str, list[dict[str, object]]] = {}
    for p in bot_posts:
        by_root.setdefault(str(p.get("root_id") or ""), []).append(p)
    answers = [Answer(trigger=p, replies=by_root.get(str(p["id"]), []))
               for p in posts
               if p.get("user_id") != fake.bot_id and is_question(p)
               and int(p["create_at"]) >= since_ms]
    requests = [r for r in await fake.requests() if r.get("user_id") == fake.bot_id]
    return Outcome(answers=answers, bot_requests=requests, bot_posts=bot_posts)
