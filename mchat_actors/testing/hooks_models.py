"""Records of the fake server's integrations: hooks, slash commands, response URLs, deliveries.

``to_json`` renders the real server's JSON for hooks and commands (``model.IncomingWebhook``,
``model.OutgoingWebhook``, ``model.Command``); tokens appear in it, as in the create answers.
"""

from __future__ import annotations

import attrs

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@attrs.frozen(kw_only=True)
class IncomingHook:
    id: str
    user_id: str
    channel_id: str
    team_id: str
    display_name: str = ""
    description: str = ""
    username: str = ""
    icon_url: str = ""
    channel_locked: bool = False
    create_at: int = 0

    def to_json(self) -> dict[str, object]:
        return {**attrs.asdict(self), "update_at": self.create_at, "delete_at": 0}


@attrs.frozen(kw_only=True)
class OutgoingHook:
    id: str
    token: str = attrs.field(repr=False)
    creator_id: str
    team_id: str
    channel_id: str = ""
    trigger_words: tuple[str, ...] = ()
    trigger_when: int = 0
    callback_urls: tuple[str, ...] = ()
    content_type: str = FORM
    display_name: str = ""
    description: str = ""
    username: str = ""
    icon_url: str = ""
    create_at: int = 0

    def to_json(self) -> dict[str, object]:
        out = attrs.asdict(self)
        out.update(trigger_words=list(self.trigger_words), callback_urls=list(self.callback_urls),
                   update_at=self.create_at, delete_at=0)
        return out


@attrs.frozen(kw_only=True)
class SlashCommand:
    id: str
    token: str = attrs.field(repr=False)
    creator_id: str
    team_id: str
    trigger: str
    url: str
    method: str = "P"
    username: str = ""
    icon_url: str = ""
    display_name: str = ""
    description: str = ""
    create_at: int = 0

    def to_json(self) -> dict[str, object]:
        return {**attrs.asdict(self), "update_at": self.create_at, "delete_at": 0,
                "auto_complete": False, "auto_complete_desc": "", "auto_complete_hint": "",
                "plugin_id": ""}


@attrs.define(kw_only=True)
class CommandWebhook:
    """A ``response_url``: valid 30 minutes (``created`` is ``trio.current_time()``), 5 uses."""

    id: str
    command_id: str
    user_id: str
    channel_id: str
    root_id: str
    created: float
    use_count: int = 0


@attrs.frozen(kw_only=True)
class Delivery:
    """One call out (outgoing webhook or slash command) and what came of it.

    ``outcome``: ``posted``, ``no post`` (empty body or neither text nor attachments),
    ``invalid json``, ``timeout``, ``error`` (connection), ``post failed``, ``answered`` (a
    command that got its answer), ``bad status``.
    """

    kind: str  # "outgoing" | "command"
    hook_id: str
    url: str
    method: str
    content_type: str
    body: bytes
    outcome: str
    status: int | None = None
    response: bytes = b""
    post_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        out = attrs.asdict(self)
        out.update(body=self.body.decode("utf-8", "replace"),
                   response=self.response.decode("utf-8", "replace"), post_ids=list(self.post_ids))
        return out


@attrs.frozen
class HttpAnswer:
    status: int
    reason: str
    content_type: str
    body: bytes
