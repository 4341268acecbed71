"""Integrations of the fake server: incoming and outgoing webhooks, custom slash commands.

:class:`Hooks` holds the registrations, the server settings that matter to integrations
(``OutgoingIntegrationRequestsTimeout``, the username/icon override switches), the HTTP client
for calls out and the one place webhook posts are made (``CreateWebhookPost``). The protocol
parts live in ``hooks_incoming`` (``POST /hooks/{id}``), ``hooks_outgoing`` (the post-created
listener that calls the callback URLs), ``hooks_commands`` (``POST /api/v4/commands/execute``
and ``POST /hooks/commands/{id}``), ``hooks_slack`` (text rewriting, splitting) and
``hooks_control`` (``/_fake/`` registration). Registration happens through the Python API of
:class:`~.fake.FakeMattermost` or the control API, not the REST API.

Not modelled: ``AllowedUntrustedInternalConnections`` (the real server refuses callbacks to
127.0.0.1 unless allowed; the fake calls any URL), outgoing OAuth connections, plugins and
built-in commands (``/echo`` … are 404), signed incoming webhooks, post ``metadata.priority``
(validated, not stored).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs
import httpx
import trio

from .app import MAX_POST_RUNES
from .apperror import AppError, permission_denied
from .hooks_commands import SlashCommands
from .hooks_control import HookControl
from .hooks_incoming import IncomingWebhooks
from .hooks_models import (
    FORM,
    CommandWebhook,
    Delivery,
    HttpAnswer,
    IncomingHook,
    OutgoingHook,
    SlashCommand,
)
from .hooks_outgoing import OutgoingWebhooks
from .hooks_slack import attachments_to_markdown, links_to_markdown, split_webhook_post
from .models import FakeChannel, FakeUser, new_id

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from .app import FakeApp
    from .channels import ChannelOps
    from .hooks_slack import Attachment
    from .routing import Router
    from .state import FakeState

logger = logging.getLogger(__name__)

INTEGRATION_TIMEOUT_S = 30.0
MAX_RESPONSE_BYTES = 1024 * 1024
DEFAULT_WEBHOOK_USERNAME = "webhook"
_TRIGGER = re.compile(r"[^\s/][^\s]{0,127}")


@attrs.define(eq=False)
class Hooks:
    """Integrations of one fake server (see the module docstring)."""

    app: FakeApp
    channel_ops: ChannelOps
    site_url: Callable[[], str]
    timeout_s: float = INTEGRATION_TIMEOUT_S
    allow_overrides: bool = False  # EnablePostUsernameOverride + EnablePostIconOverride
    incoming: dict[str, IncomingHook] = attrs.field(factory=dict)
    outgoing: dict[str, OutgoingHook] = attrs.field(factory=dict)
    commands: dict[str, SlashCommand] = attrs.field(factory=dict)
    command_webhooks: dict[str, CommandWebhook] = attrs.field(factory=dict)
    deliveries: list[Delivery] = attrs.field(factory=list)
    slash: SlashCommands = attrs.field(init=False)
    _dispatcher: OutgoingWebhooks = attrs.field(init=False)
    _client: httpx.AsyncClient | None = None

    def __attrs_post_init__(self) -> None:
        self.slash = SlashCommands(self)
        self._dispatcher = OutgoingWebhooks(self)

    @property
    def state(self) -> FakeState:
        return self.app.state

    def register(self, router: Router, control: Router) -> None:
        """Add the REST and control routes (the outgoing-webhook post listener is added with
        the first outgoing webhook, so posts cost nothing extra without one)."""
        IncomingWebhooks(self).register(router)
        self.slash.register(router)
        HookControl(self).register(control)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        """Own the HTTP client for calls out (made on first use); closed when cancelled."""
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            client, self._client = self._client, None
            if client is not None:
                with trio.CancelScope(shield=True):
                    await client.aclose()

    # -- registration --------------------------------------------------------------------------

    def create_incoming_webhook(
        self, channel: str, *, creator: str | None = None, display_name: str = "",
        description: str = "", username: str = "", icon_url: str = "",
        channel_locked: bool = False,
    ) -> dict[str, object]:
        """An incoming webhook posting to ``channel`` (name or id) by default, as ``creator``."""
        user = self._user(creator)
        target = self._channel(channel)
        if not self.state.can_read(user, target):
            raise permission_denied()
        hook = IncomingHook(
            id=new_id(), user_id=user.id, channel_id=target.id, team_id=target.team_id,
            display_name=display_name, description=description,
            username=username if self.allow_overrides else "",
            icon_url=icon_url if self.allow_overrides else "",
            channel_locked=channel_locked, create_at=self.state.now_ms(),
        )
        self.incoming[hook.id] = hook
        return hook.to_json()

    def create_outgoing_webhook(
        self, channel: str | None = None, trigger_words: Sequence[str] = (),
        trigger_when: int = 0, callback_urls: Sequence[str] = (), content_type: str = FORM,
        token: str | None = None, *, creator: str | None = None, display_name: str = "",
        description: str = "", username: str = "", icon_url: str = "",
    ) -> dict[str, object]:
        """An outgoing webhook of the default team (or of ``channel``'s team); incl. its token."""
        user = self._user(creator)
        target = self._channel(channel) if channel else None
        if target is not None and target.type != "O":
            raise AppError(403, "api.webhook.create_outgoing.not_open.app_error",
                           "Outgoing webhooks can only be created for public channels.")
        words = tuple(trigger_words)
        if target is None and not words:
            raise AppError(400, "api.webhook.create_outgoing.triggers.app_error",
                           "Either trigger_words or channel_id must be set.")
        if any(not isinstance(w, str) or not w.strip() for w in words):
            raise AppError(400, "model.outgoing_hook.is_valid.words.app_error",
                           "Invalid trigger words.")
        if trigger_when not in (0, 1):
            raise AppError(400, "model.outgoing_hook.is_valid.trigger_when.app_error",
                           "Invalid trigger when.")
        if not callback_urls or not all(_is_http_url(u) for u in callback_urls):
            raise AppError(400, "model.outgoing_hook.is_valid.callback.app_error",
                           "Invalid callback urls.")
        hook = OutgoingHook(
            id=new_id(), token=token or new_id(), creator_id=user.id,
            team_id=target.team_id if target else self.state.default_team_id,
            channel_id=target.id if target else "", trigger_words=words,
            trigger_when=trigger_when, callback_urls=tuple(callback_urls),
            content_type=content_type or FORM, display_name=display_name,
            description=description, username=username, icon_url=icon_url,
            create_at=self.state.now_ms(),
        )
        if not self.outgoing:
            self.app.post_listeners.append(self._dispatcher.on_post_created)
        self.outgoing[hook.id] = hook
        return hook.to_json()

    def create_slash_command(
        self, trigger: str, url: str, method: str = "P", token: str | None = None, *,
        creator: str | None = None, team: str | None = None, username: str = "",
        icon_url: str = "", display_name: str = "", description: str = "",
    ) -> dict[str, object]:
        """A custom slash command ``/trigger`` of the default team (or ``team``, by name)."""
        user = self._user(creator)
        team_id = self._team_id(team)
        trigger = trigger.lower()
        if not _TRIGGER.fullmatch(trigger):
            raise AppError(400, "model.command.is_valid.trigger.app_error", "Invalid trigger.")
        if not _is_http_url(url):
            raise AppError(400, "model.command.is_valid.url_http.app_error",
                           "Invalid URL. Must be a valid URL and start with http:// or https://.")
        if method not in ("P", "G"):
            raise AppError(400, "model.command.is_valid.method.app_error", "Invalid Method.")
        if any(c.team_id == team_id and c.trigger == trigger for c in self.commands.values()):
            raise AppError(400, "api.command.duplicate_trigger.app_error",
                           "This trigger word is already in use. Please choose another word.")
        command = SlashCommand(
            id=new_id(), token=token or new_id(), creator_id=user.id, team_id=team_id,
            trigger=trigger, url=url, method=method, username=username, icon_url=icon_url,
            display_name=display_name, description=description, create_at=self.state.now_ms(),
        )
        self.commands[command.id] = command
        return command.to_json()

    # -- shared by the three kinds ---------------------------------------------------------------

    def username_of(self, user_id: str) -> str | None:
        user = self.state.users.get(user_id)
        return user.username if user else None

    def direct_channel(self, a: str, b: str) -> FakeChannel:
        """``GetOrCreateDirectChannel`` of two user ids."""
        users = self.state.users
        channel, _created = self.channel_ops.direct(users[a], users[a], users[b])
        return channel

    def create_webhook_posts(
        self, creator: FakeUser, channel: FakeChannel, text: str, *, username: str = "",
        icon_url: str = "", icon_emoji: str = "", props: Mapping[str, object] | None = None,
        attachments: Sequence[Attachment] = (), post_type: str = "", root_id: str = "",
        priority: object = None,
    ) -> list[dict[str, object]]:
        """``CreateWebhookPost``: ``from_webhook`` props, overrides, split at MaxPostSize.

        The posts do not trigger outgoing webhooks and need no channel membership.

        Raises:
            AppError: 400 for a ``system_*`` type, a priority without ``priority`` or props
                too large; 500 when a post cannot be created.
        """
        text = links_to_markdown(text)
        if isinstance(priority, dict) and not isinstance(priority.get("priority"), str):
            raise AppError(400, "api.context.invalid_param.app_error",
                           "Invalid webhook.priority.priority parameter.")
        if post_type.startswith("system_"):
            raise AppError(400, "api.context.invalid_param.app_error",
                           "Invalid post.type parameter.")
        base: dict[str, object] = {"from_webhook": "true"}
        if self.allow_overrides:
            base["override_username"] = username or DEFAULT_WEBHOOK_USERNAME
            if icon_url:
                base["override_icon_url"] = icon_url
            if icon_emoji:
                base["override_icon_emoji"] = icon_emoji
        for key, value in (props or {}).items():
            if key not in ("attachments", "override_icon_url", "override_username",
                           "from_webhook"):
                base[key] = value
        if attachments:
            post_type = post_type or "slack_attachment"
        splits = split_webhook_post(text, base, attachments_to_markdown(attachments),
                                    MAX_POST_RUNES)
        posts = []
        for message, split_props in splits:
            try:
                post, _created = self.app.create_post(
                    creator, channel.id, message, root_id=root_id, props=split_props,
                    post_type=post_type, system=True)
            except AppError as err:
                logger.info("webhook post in %s failed: %s", channel.id, err)
                raise AppError(500, "api.post.create_webhook_post.creating.app_error",
                               "Error creating post.") from err
            posts.append(post)
        return posts

    async def send(self, method: str, url: str, headers: Sequence[tuple[str, str]],
                   content: bytes | None = None) -> HttpAnswer:
        """One request out, within :attr:`timeout_s`; at most 1 MiB of the body is kept.

        Raises:
            trio.TooSlowError: no complete answer within the timeout.
            httpx.HTTPError: connection or protocol failure.
        """
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=None, follow_redirects=True,
                                             trust_env=False)
        body = bytearray()
        with trio.fail_after(self.timeout_s):
            async with self._client.stream(method, url, headers=list(headers),
                                           content=content) as response:
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= MAX_RESPONSE_BYTES:
                        break
        return HttpAnswer(response.status_code, response.reason_phrase,
                          response.headers.get("content-type", ""),
                          bytes(body[:MAX_RESPONSE_BYTES]))

    def record(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)

    # -- lookups -------------------------------------------------------------------------------

    def _user(self, key: str | None) -> FakeUser:
        if key is None:
            return next(u for u in self.state.users.values() if u.is_admin)
        return self.state.user(key)

    def _channel(self, key: str) -> FakeChannel:
        return self.state.channel(key)

    def _team_id(self, name: str | None) -> str:
        if name is None:
            return self.state.default_team_id
        for team in self.state.teams.values():
            if name in (team.name, team.id):
                return team.id
        raise AppError(404, "app.team.get_by_name.missing.app_error",
                       "Unable to find the existing team.")


def _is_http_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
