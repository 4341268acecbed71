"""``FakeMattermost``: the fake server as an async context manager, with a Python API for tests.

Usage::

    async with FakeMattermost() as mm:           # 127.0.0.1, a free port, the default seed
        post = await mm.post_as("kim", "town-square", "hello @mchat-bot")
        mm.fail_requests(2.0, status=503)          # fault knobs, see the methods below

Everything the Python API does goes through the same app-layer code as the REST API
(validation, ``posted`` broadcast, post-created listeners).
"""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING, Any

import trio

from .app import FakeApp, PostListener
from .channels import ChannelOps
from .control import ControlHandlers
from .faults import Faults
from .hooks import INTEGRATION_TIMEOUT_S, Hooks
from .hooks_models import FORM
from .hub import Hub
from .ratelimit import RateLimiter
from .rest_channels import ChannelHandlers
from .rest_posts import PostHandlers
from .rest_users import UserHandlers
from .routing import Router
from .seed import apply_seed, load_seed
from .server import HttpServer
from .state import FakeState

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path
    from types import TracebackType

    from .models import FakeChannel, FakeTeam, FakeUser, RequestRecord

logger = logging.getLogger(__name__)

_DROP_WAIT_S = 5.0


class FakeMattermost:
    """A faithful fake Mattermost (API v4 subset + WebSocket) on a real TCP port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit_per_s: float = 0.0,
        rate_burst: int = 100,
        seed: str | Path | Mapping[str, Any] | None = None,
        bot_token: str | None = None,
        resume_buffer: int = 128,
        integration_timeout_s: float = INTEGRATION_TIMEOUT_S,
        enable_post_overrides: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context``: a server context (``server_ssl_context``) to serve https/wss."""
        self.state = FakeState()
        self.hub = Hub(self.state, resume_buffer)
        self.app = FakeApp(self.state, self.hub)
        self.channel_ops = ChannelOps(self.app)
        self.faults = Faults()
        self.limiter = RateLimiter()
        self.limiter.configure(rate_limit_per_s, rate_burst)
        self.router = Router()
        UserHandlers(self.state).register(self.router)
        ChannelHandlers(self.channel_ops).register(self.router)
        PostHandlers(self.app).register(self.router)
        self.control_router = Router()
        ControlHandlers(self).register(self.control_router)
        self.hooks = Hooks(self.app, self.channel_ops, lambda: self.url,
                           integration_timeout_s, enable_post_overrides)
        self.hooks.register(self.router, self.control_router)
        self.server = HttpServer(self.state, self.hub, self.faults, self.limiter, self.router,
                                 self.control_router, ssl_context=ssl_context)
        self.bot: FakeUser = apply_seed(self.state, load_seed(seed), bot_token)
        self.url = ""
        self._host = host
        self._port = port
        self._nursery_manager: Any = None
        self._nursery: trio.Nursery | None = None

    # -- life cycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> FakeMattermost:
        self._nursery_manager = trio.open_nursery()
        nursery = await self._nursery_manager.__aenter__()
        self._nursery = nursery
        try:
            listeners = await nursery.start(self.server.serve, self._host, self._port)
            await nursery.start(self.hooks.serve)
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self.app.background = nursery
        port = listeners[0].socket.getsockname()[1]
        host = self._host if self._host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        scheme = "https" if self.server.ssl_context is not None else "http"
        self.url = (f"{scheme}://{host}:{port}" if ":" not in host
                    else f"{scheme}://[{host}]:{port}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()
        self.app.background = None
        # Hand the nursery only a Cancelled it may own; other errors of the body propagate
        # unchanged instead of being wrapped in an ExceptionGroup.
        if exc is None or isinstance(exc, trio.Cancelled | BaseExceptionGroup):
            return bool(await self._nursery_manager.__aexit__(exc_type, exc, tb))
        await self._nursery_manager.__aexit__(None, None, None)
        return None

    @staticmethod
    def server_ssl_context(cert_file: str | Path, key_file: str | Path | None = None
                           ) -> ssl.SSLContext:
        """A TLS server context from PEM files (``--tls-cert``/``--tls-key``); the key may be
        in the certificate file."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
        return ctx

    async def serve_forever(self) -> None:
        """Sleep until cancelled (the CLI's main loop)."""
        await trio.sleep_forever()

    # -- lookups -------------------------------------------------------------------------------

    @property
    def bot_token(self) -> str:
        return self.bot.token

    @property
    def admin(self) -> FakeUser:
        return next(u for u in self.state.users.values() if u.is_admin)

    @property
    def team(self) -> FakeTeam:
        return self.state.teams[self.state.default_team_id]

    def user(self, key: str) -> FakeUser:
        """A user by username (case-insensitive) or id; ``KeyError`` when unknown."""
        user = self.state.find_user(key)
        if user is None:
            raise KeyError(key)
        return user

    def channel(self, key: str) -> FakeChannel:
        """A channel by name (default team first) or id; ``KeyError`` when unknown."""
        channel = self.state.find_channel(key)
        if channel is None:
            raise KeyError(key)
        return channel

    def posts(
        self, channel: str | None = None, include_deleted: bool = True
    ) -> list[dict[str, object]]:
        """Post JSON copies in create order, of one channel (name or id) or all."""
        if channel is None:
            found = list(self.state.posts.values())
        else:
            found = list(self.state.iter_channel_posts(self.channel(channel).id))
        return [self.state.render_post(p) for p in found if include_deleted or not p["delete_at"]]

    @property
    def request_log(self) -> list[RequestRecord]:
        return list(self.server.request_log)

    # -- actions (same code paths as REST) -----------------------------------------------------

    async def post_as(self, user: str, channel: str, message: str, root_id: str | None = None,
                      props: Mapping[str, object] | None = None,
                      pending_post_id: str | None = None) -> dict[str, object]:
        """Create a post as ``user`` exactly as ``POST /api/v4/posts`` would.

        Raises:
            AppError: what the REST call would have answered.
        """
        post, _created = self.app.create_post(
            self.user(user), self.channel(channel).id, message, root_id=root_id or "",
            props=props, pending_post_id=pending_post_id or "",
        )
        await trio.lowlevel.checkpoint()
        return post

    async def edit_post(
        self, post_id: str, message: str, *, by: str | None = None
    ) -> dict[str, object]:
        actor = self.user(by) if by else self.state.users[str(self.state.post(post_id)["user_id"])]
        return self.app.edit_post(actor, post_id, {"message": message})

    async def delete_post(self, post_id: str, *, by: str | None = None) -> None:
        actor = self.user(by) if by else self.state.users[str(self.state.post(post_id)["user_id"])]
        self.app.delete_post(actor, post_id)
        await trio.lowlevel.checkpoint()

    async def dm_channel(self, a: str, b: str) -> FakeChannel:
        """The DM of ``a`` and ``b``, created (as ``a``) like ``POST /channels/direct``."""
        channel, _created = self.channel_ops.direct(self.user(a), self.user(a), self.user(b))
        await trio.lowlevel.checkpoint()
        return channel

    async def add_member(self, channel: str, user: str, *, by: str | None = None) -> None:
        """``user`` joins ``channel`` (or is added by ``by``)."""
        target = self.user(user)
        self.channel_ops.add_member(self.user(by) if by else target, self.channel(channel), target)
        await trio.lowlevel.checkpoint()

    async def remove_member(self, channel: str, user: str, *, by: str | None = None) -> None:
        """``user`` leaves ``channel`` (or is removed by ``by``)."""
        target = self.user(user)
        self.channel_ops.remove_member(self.user(by) if by else target, self.channel(channel),
                                       target)
        await trio.lowlevel.checkpoint()

    async def create_channel(self, name: str, type: str = "O", members: Sequence[str] = (),  # noqa: A002
                             display_name: str | None = None) -> FakeChannel:
        """Created by ``members[0]`` (else the admin), who then adds the other members."""
        creator = self.user(members[0]) if members else self.admin
        channel = self.channel_ops.create_channel(creator, self.team.id, name,
                                                  display_name or name, type)
        for member in members[1:]:
            self.channel_ops.add_member(creator, channel, self.user(member))
        await trio.lowlevel.checkpoint()
        return channel

    async def delete_channel(self, name: str) -> None:
        self.channel_ops.delete_channel(self.admin, self.channel(name))
        await trio.lowlevel.checkpoint()

    def add_post_listener(self, listener: PostListener) -> None:
        """Run ``await listener(PostCreated)`` after every created post (see ``app.py``)."""
        self.app.post_listeners.append(listener)

    # -- integrations (hooks.py): webhooks and slash commands ---------------------------------

    def create_incoming_webhook(self, channel: str, **options: Any) -> dict[str, object]:
        """An incoming webhook (``POST {url}/hooks/{id}``); options: ``creator`` (default the
        admin), ``display_name``, ``username``, ``icon_url``, ``channel_locked``."""
        return self.hooks.create_incoming_webhook(channel, **options)

    def create_outgoing_webhook(
        self, channel: str | None = None, trigger_words: Sequence[str] = (),
        trigger_when: int = 0, callback_urls: Sequence[str] = (), content_type: str = FORM,
        token: str | None = None, **options: Any,
    ) -> dict[str, object]:
        """An outgoing webhook, incl. its token; options: ``creator``, ``display_name``,
        ``username``, ``icon_url``. Calls are recorded in ``self.hooks.deliveries``."""
        return self.hooks.create_outgoing_webhook(channel, trigger_words, trigger_when,
                                                  callback_urls, content_type, token, **options)

    def create_slash_command(self, trigger: str, url: str, method: str = "P",
                             token: str | None = None, **options: Any) -> dict[str, object]:
        """A custom ``/trigger`` command (``method`` ``P`` POST or ``G`` GET), incl. its token."""
        return self.hooks.create_slash_command(trigger, url, method, token, **options)

    async def run_slash_command(self, user: str, channel: str, command: str,
                                root_id: str = "") -> dict[str, object]:
        """``POST /api/v4/commands/execute`` as ``user``; the CommandResponse it answers.

        Raises:
            AppError: what the REST call would have answered.
        """
        return await self.hooks.slash.execute(self.user(user), self.channel(channel).id,
                                              command, team_id=self.team.id, root_id=root_id)

    # -- fault knobs ---------------------------------------------------------------------------

    async def drop_websockets(self, abrupt: bool = False) -> int:
        """Close every open user socket (1001, or no close frame); they stay resumable.

        Returns once those sockets are gone; the number dropped.
        """
        sockets = self.hub.drop_all(abrupt=abrupt)
        with trio.move_on_after(_DROP_WAIT_S):
            for socket in sockets:
                await socket.closed.wait()
        return len(sockets)

    def revoke_token(self, token: str) -> bool:
        """Revoke a token: REST answers 401, a WebSocket upgrade opens but never says hello."""
        return self.state.revoke_token(token)

    def forget_resume_state(self) -> int:
        return self.hub.forget_resume_state()

    def refuse_websockets(self, seconds: float) -> None:
        self.faults.refuse_websockets(seconds)

    def refuse_connections(self, seconds: float) -> None:
        self.faults.refuse_connections(seconds)

    def fail_requests(
        self, seconds: float, status: int = 503, path_prefix: str = "/api/v4/"
    ) -> None:
        self.faults.fail_requests(seconds, status, path_prefix)

    def stall(self, seconds: float) -> None:
        self.faults.stall(seconds)

    def set_latency(self, seconds: float) -> None:
        self.faults.set_latency(seconds)

    def set_rate_limit(self, per_s: float, burst: int = 100) -> None:
        self.limiter.configure(per_s, burst)

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 5) -> None:  # noqa: ASYNC109
        """Poll ``predicate`` until it is truthy. Raises ``trio.TooSlowError`` on timeout."""
        with trio.fail_after(timeout):
            while not predicate():  # noqa: ASYNC110 - polling an arbitrary predicate
                await trio.sleep(0.01)

    # -- description (for /_fake/seed and the CLI) ---------------------------------------------

    def describe(self) -> dict[str, object]:
        """The URL, team, users with tokens and channels with member usernames."""
        state = self.state
        return {
            "url": self.url,
            "team": state.render_team(self.team),
            "bot": _describe_user(self.bot),
            "users": [_describe_user(u) for u in state.users.values()],
            "channels": [
                {**state.render_channel(c),
                 "members": [state.users[i].username for i in state.member_ids(c.id)]}
                for c in state.channels.values()
            ],
        }


def _describe_user(user: FakeUser) -> dict[str, object]:
    return {"id": user.id, "username": user.username, "email": user.email, "token": user.token,
            "is_bot": user.is_bot, "roles": user.roles, "first_name": user.first_name,
            "last_name": user.last_name, "nickname": user.nickname}
