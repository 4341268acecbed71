"""The ``/_fake/`` control routes for integrations (registered next to those of ``control``).

=====================================  ==========================================================
``POST /_fake/incoming_webhooks``      ``{"channel","creator"?,"display_name"?,"username"?,
                                       "icon_url"?,"channel_locked"?}`` -> 201 IncomingWebhook
``POST /_fake/outgoing_webhooks``      ``{"channel"?,"trigger_words"?,"trigger_when"?,
                                       "callback_urls","content_type"?,"token"?,"creator"?,
                                       "display_name"?,"username"?,"icon_url"?}`` -> 201
                                       OutgoingWebhook (with its token)
``POST /_fake/commands``               ``{"trigger","url","method"?,"token"?,"creator"?,"team"?,
                                       "username"?,"icon_url"?}`` -> 201 Command
``GET /_fake/deliveries``              calls made to callback and command URLs, oldest first
=====================================  ==========================================================

Unknown keys and wrongly typed values are 400 ``api.fake.control.invalid``; the hook rules
of the real server answer with its AppErrors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from .routing import json_response

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .hooks import Hooks
    from .routing import Request, Response, Router

_INCOMING = {"channel": str, "creator": str, "display_name": str, "description": str,
             "username": str, "icon_url": str, "channel_locked": bool}
_OUTGOING = {"channel": str, "trigger_words": list, "trigger_when": int, "callback_urls": list,
             "content_type": str, "token": str, "creator": str, "display_name": str,
             "description": str, "username": str, "icon_url": str}
_COMMAND = {"trigger": str, "url": str, "method": str, "token": str, "creator": str,
            "team": str, "username": str, "icon_url": str, "display_name": str,
            "description": str}


def _options(request: Request, schema: Mapping[str, type], required: tuple[str, ...]
             ) -> dict[str, Any]:
    body = request.json_object("body")
    for key, value in body.items():
        kind = schema.get(key)
        if kind is None:
            raise ValueError(f"unknown key {key!r}")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{key!r} must be a {kind.__name__}")
    missing = [k for k in required if k not in body]
    if missing:
        raise ValueError(f"missing {missing}")
    return body


@attrs.define(eq=False)
class HookControl:
    hooks: Hooks

    def register(self, router: Router) -> None:
        router.add("POST", "/_fake/incoming_webhooks", self.incoming, auth=False)
        router.add("POST", "/_fake/outgoing_webhooks", self.outgoing, auth=False)
        router.add("POST", "/_fake/commands", self.command, auth=False)
        router.add("GET", "/_fake/deliveries", self.deliveries, auth=False)

    async def incoming(self, request: Request) -> Response:
        options = _options(request, _INCOMING, ("channel",))
        return json_response(self.hooks.create_incoming_webhook(options.pop("channel"),
                                                                **options), 201)

    async def outgoing(self, request: Request) -> Response:
        options = _options(request, _OUTGOING, ("callback_urls",))
        return json_response(self.hooks.create_outgoing_webhook(**options), 201)

    async def command(self, request: Request) -> Response:
        options = _options(request, _COMMAND, ("trigger", "url"))
        return json_response(self.hooks.create_slash_command(**options), 201)

    async def deliveries(self, request: Request) -> Response:
        return json_response([d.to_json() for d in self.hooks.deliveries])
