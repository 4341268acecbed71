"""Custom slash commands: ``POST /api/v4/commands/execute`` and the ``response_url`` hook.

Executing ``/trigger text`` (``executeCommand`` → ``ExecuteCommand`` → ``DoCommandRequest``,
§8 of the protocol doc): the command's URL gets a form POST (or a GET with the same values
in the query) with ``Authorization: Token <command token>``; it must answer 200 within the
server's timeout. A JSON content type is parsed as a CommandResponse, anything else is the
text of an ephemeral answer. ``in_channel`` becomes a post by the invoking user (threaded when
the command ran in a thread; it may trigger outgoing webhooks), ephemeral answers become an
``ephemeral_message`` event for the invoker only, ``extra_responses`` are handled the same
way. The endpoint answers 200 with the CommandResponse. ``response_url``
(``POST /hooks/commands/{id}``) takes further CommandResponses for 30 minutes, 5 times.

As on the real server, custom command posts always carry ``from_webhook: "true"``, and
in-channel text is not split (a too long answer is
``api.command.execute_command.create_post_failed.app_error``).
"""

from __future__ import annotations

import base64
import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import attrs
import httpx
import orjson
import trio

from .apperror import AppError, invalid_param, permission_denied, route_not_found
from .events import Broadcast, WsEvent
from .hooks_models import FORM, CommandWebhook, Delivery, SlashCommand
from .hooks_slack import (
    attachments_to_markdown,
    links_to_markdown,
    process_attachments,
    process_slack_text,
)
from .models import FakeChannel, FakeUser, is_valid_id, new_id
from .routing import Response, json_response

if TYPE_CHECKING:
    from .hooks import Hooks
    from .routing import Request, Router

logger = logging.getLogger(__name__)

RESPONSE_URL_LIFETIME_S = 30 * 60.0
RESPONSE_URL_MAX_USES = 5
_AT_MENTION = re.compile(r"(?<![A-Za-z0-9_])@([A-Za-z0-9][A-Za-z0-9.\-_:]*)")
_CHANNEL_MENTION = re.compile(r"(?<![A-Za-z0-9_])~([A-Za-z0-9\-_]+)")
_RESPONSE_FIELDS = {
    "response_type": str, "text": str, "username": str, "channel_id": str, "icon_url": str,
    "type": str, "props": dict, "goto_location": str, "trigger_id": str,
    "skip_slack_parsing": bool, "attachments": list, "extra_responses": list,
}


@attrs.frozen(kw_only=True)
class CommandArgs:
    user: FakeUser
    channel: FakeChannel
    team_id: str
    root_id: str = ""
    command: str = ""


@attrs.define(eq=False)
class SlashCommands:
    hooks: Hooks

    def register(self, router: Router) -> None:
        router.add("POST", "/api/v4/commands/execute", self.execute_endpoint)
        router.add("POST", "/hooks/commands/{hook_id}", self.response_url_endpoint, auth=False)

    async def execute_endpoint(self, request: Request) -> Response:
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            raise invalid_param("command_args") from None
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k, ""), str) for k in ("command", "channel_id", "team_id",
                                                       "root_id")
        ):
            raise invalid_param("command_args")
        return json_response(await self.execute(
            request.caller, str(body.get("channel_id", "")), str(body.get("command", "")),
            team_id=str(body.get("team_id", "")), root_id=str(body.get("root_id", ""))))

    async def execute(self, user: FakeUser, channel_id: str, command: str, *,
                      team_id: str = "", root_id: str = "") -> dict[str, object]:
        """Run ``command`` as ``user`` in a channel; the CommandResponse as the server answers it.

        Raises:
            AppError: what ``POST /api/v4/commands/execute`` answers.
        """
        if len(command) <= 1 or not command.startswith("/") or not is_valid_id(channel_id):
            raise AppError(400, "api.command.execute_command.start.app_error",
                           "No command trigger found.")
        state = self.hooks.state
        channel = state.channels.get(channel_id)
        if channel is None or not state.is_member(channel.id, user.id):
            raise permission_denied()
        if channel.delete_at:
            raise AppError(400, "api.command.execute_command.deleted.error",
                           "Can not run command in deleted channel.")
        if not channel.is_direct_or_group:
            team_id = channel.team_id
        elif team_id and not state.is_team_member(team_id, user.id):
            raise permission_denied()
        trigger, _, message = _split_command(command)
        team = state.teams.get(team_id)
        if team is None:
            raise AppError(404, "app.team.get.find.app_error", "Unable to find the existing team.")
        found = [c for c in self.hooks.commands.values()
                 if c.team_id == team.id and c.trigger == trigger]
        if not found:
            raise AppError(404, "api.command.execute_command.not_found.app_error",
                           f"Command with a trigger of '/{trigger}' not found. To send a "
                           "message beginning with \"/\", try adding an empty space at the "
                           "beginning of the message.")
        cmd = found[-1]
        args = CommandArgs(user=user, channel=channel, team_id=team.id, root_id=root_id,
                           command=command)
        client_trigger_id = new_id()
        response = await self._request(cmd, args, trigger, message, team.name, client_trigger_id)
        response["trigger_id"] = client_trigger_id
        return self.handle_response(cmd, args, response)

    async def response_url_endpoint(self, request: Request) -> Response:
        hook_id = request.params["hook_id"]
        if not re.fullmatch(r"[A-Za-z0-9]+", hook_id):
            raise route_not_found()
        try:
            response = parse_command_response(request.header("content-type") or "",
                                              request.body)
        except ValueError:
            raise AppError(400, "web.command_webhook.parse.app_error",
                           "Unable to parse incoming data.") from None
        hook = self.hooks.command_webhooks.get(hook_id)
        if hook is None or trio.current_time() - hook.created > RESPONSE_URL_LIFETIME_S:
            raise AppError(404, "app.command_webhook.get.missing", "Unable to find the webhook.")
        cmd = self.hooks.commands.get(hook.command_id)
        if cmd is None:
            raise AppError(400, "web.command_webhook.command.app_error",
                           "Could not find the command.")
        if hook.use_count >= RESPONSE_URL_MAX_USES:
            raise AppError(400, "app.command_webhook.try_use.invalid", "Invalid webhook.")
        hook.use_count += 1
        state = self.hooks.state
        args = CommandArgs(user=state.users[hook.user_id],
                           channel=state.channels[hook.channel_id], team_id=cmd.team_id,
                           root_id=hook.root_id)
        self.handle_response(cmd, args, response)
        return Response(200, b"ok", "text/plain")

    # -- the call out --------------------------------------------------------------------------

    async def _request(self, cmd: SlashCommand, args: CommandArgs, trigger: str, message: str,
                       team_name: str, client_trigger_id: str) -> dict[str, object]:
        hooks = self.hooks
        hook = CommandWebhook(id=new_id(), command_id=cmd.id, user_id=args.user.id,
                              channel_id=args.channel.id, root_id=args.root_id,
                              created=trio.current_time())
        hooks.command_webhooks[hook.id] = hook
        fields = [
            ("token", cmd.token), ("team_id", cmd.team_id), ("team_domain", team_name),
            ("channel_id", args.channel.id), ("channel_name", args.channel.name),
            ("user_id", args.user.id), ("user_name", args.user.username),
            ("command", f"/{trigger}"), ("text", message),
            ("trigger_id", _trigger_id(client_trigger_id, args.user.id)),
            ("response_url", f"{hooks.site_url()}/hooks/commands/{hook.id}"),
            *self._mentions(message, cmd.team_id),
        ]
        encoded = urlencode(sorted(fields, key=lambda kv: kv[0]))
        headers = [("Accept", "application/json"), ("Authorization", f"Token {cmd.token}")]
        if cmd.method == "G":
            url, body = f"{cmd.url}{'&' if '?' in cmd.url else '?'}{encoded}", None
        else:
            url, body = cmd.url, encoded.encode()
            headers.append(("Content-Type", FORM))
        method = "GET" if cmd.method == "G" else "POST"
        failed = AppError(500, "api.command.execute_command.failed.app_error",
                          f"Command with a trigger of '{trigger}' failed.")
        delivery = attrs.evolve(_EMPTY_DELIVERY, hook_id=cmd.id, url=url, method=method,
                                content_type=FORM if body else "", body=body or b"")
        try:
            answer = await hooks.send(method, url, headers, body)
        except trio.TooSlowError:
            hooks.record(attrs.evolve(delivery, outcome="timeout"))
            raise failed from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            logger.info("slash command /%s: %s %s failed: %s", trigger, method, url, exc)
            hooks.record(attrs.evolve(delivery, outcome="error"))
            raise failed from None
        delivery = attrs.evolve(delivery, status=answer.status, response=answer.body)
        if answer.status != 200:
            hooks.record(attrs.evolve(delivery, outcome="bad status"))
            raise AppError(500, "api.command.execute_command.failed_resp.app_error",
                           f"Command with a trigger of '{trigger}' returned response "
                           f"{answer.status} {answer.reason}.")
        try:
            response = parse_command_response(answer.content_type, answer.body)
        except ValueError:
            hooks.record(attrs.evolve(delivery, outcome="invalid json"))
            raise failed from None
        hooks.record(attrs.evolve(delivery, outcome="answered"))
        return response

    def _mentions(self, message: str, team_id: str) -> list[tuple[str, str]]:
        """``user_mentions``/``_ids`` of team members, ``channel_mentions``/``_ids`` of public
        channels, as ``MentionsToTeamMembers``/``MentionsToPublicChannels`` find them."""
        state = self.hooks.state
        out: list[tuple[str, str]] = []
        for name in dict.fromkeys(m.lower() for m in _AT_MENTION.findall(message)):
            while name:
                user = state.find_user(name)
                if user is not None and user.username.lower() == name:
                    if state.is_team_member(team_id, user.id):
                        out += [("user_mentions", name), ("user_mentions_ids", user.id)]
                    break
                if name[-1] not in ".-_":
                    break
                name = name[:-1]
        for name in dict.fromkeys(_CHANNEL_MENTION.findall(message)):
            channel = next((c for c in state.channels.values()
                            if c.team_id == team_id and c.name == name), None)
            if channel is not None and channel.type == "O":
                out += [("channel_mentions", name), ("channel_mentions_ids", channel.id)]
        return out

    # -- answers -------------------------------------------------------------------------------

    def handle_response(self, cmd: SlashCommand, args: CommandArgs,
                        response: dict[str, object]) -> dict[str, object]:
        """``HandleCommandResponse``: the response and its ``extra_responses``; returns the
        (processed) response.

        Raises:
            AppError: 500 ``create_post_failed`` when one of them could not be posted.
        """
        failed: AppError | None = None
        extra = response.get("extra_responses") or []
        assert isinstance(extra, list)
        for item in [response, *(e for e in extra if isinstance(e, dict))]:
            try:
                self._response_post(cmd, args, item)
            except AppError as err:
                logger.info("slash command %s: response not posted: %s", cmd.trigger, err)
                failed = err
        if failed is not None:
            trigger = args.command.split(" ")[0][1:].lower() if args.command else ""
            raise AppError(500, "api.command.execute_command.create_post_failed.app_error",
                           f"Command '{trigger}' failed to post response. Please contact your "
                           "System Administrator.")
        return _render_response(response)

    def _response_post(self, cmd: SlashCommand, args: CommandArgs,
                       response: dict[str, object]) -> None:
        hooks, state = self.hooks, self.hooks.state
        channel, user = args.channel, args.user
        props = dict(response.get("props") or {})  # type: ignore[call-overload]
        target = str(response.get("channel_id") or "")
        if target:
            if not state.is_member(target, user.id):
                raise AppError(403, "api.command.command_post.forbidden.app_error",
                               "Specified user is not a member of specified channel.")
            channel = state.channels[target]
        if hooks.allow_overrides:
            if cmd.username or response.get("username"):
                props["override_username"] = cmd.username or response["username"]
            props["override_icon_url"] = cmd.icon_url or response.get("icon_url") or ""
        props["from_webhook"] = "true"
        text = str(response.get("text") or "")
        raw = response.get("attachments")
        attachments = process_attachments(raw if isinstance(raw, list) else None,
                                          hooks.username_of)
        if not response.get("skip_slack_parsing"):
            text = links_to_markdown(process_slack_text(text, hooks.username_of))
            response["text"] = text
        post_type = str(response.get("type") or "")
        if post_type.startswith("system_"):
            raise AppError(400, "api.context.invalid_param.app_error",
                           "Invalid post.type parameter.")
        if raw is not None:
            props["attachments"] = attachments_to_markdown(attachments)
            post_type = post_type or "slack_attachment"
        kind = response.get("response_type") or "ephemeral"
        if kind == "in_channel":
            hooks.app.create_post(user, channel.id, text, root_id=args.root_id, props=props,
                                  post_type=post_type)
        elif kind == "ephemeral" and (text or raw is not None):
            self._send_ephemeral(user, channel, text, props, args.root_id)

    def _send_ephemeral(self, user: FakeUser, channel: FakeChannel, text: str,
                        props: dict[str, object], root_id: str) -> None:
        """``SendEphemeralPost``: an ``ephemeral_message`` to ``user`` only, not stored."""
        post = {
            "id": new_id(), "create_at": self.hooks.state.now_ms(), "update_at": 0,
            "edit_at": 0, "delete_at": 0, "is_pinned": False, "user_id": user.id,
            "channel_id": channel.id, "root_id": root_id, "original_id": "", "message": text,
            "type": "system_ephemeral", "props": props, "hashtags": "", "pending_post_id": "",
            "reply_count": 0, "last_reply_at": 0, "participants": None, "metadata": {},
        }
        self.hooks.app.hub.publish(WsEvent(
            event="ephemeral_message", data={"post": orjson.dumps(post).decode()},
            broadcast=Broadcast(user_id=user.id, channel_id=channel.id),
        ))


_EMPTY_DELIVERY = Delivery(kind="command", hook_id="", url="", method="", content_type="",
                           body=b"", outcome="")


def parse_command_response(content_type: str, body: bytes) -> dict[str, object]:
    """``CommandResponseFromHTTPBody``: JSON for ``application/json``, else plain text.

    Raises:
        ValueError: the JSON is invalid or is not a CommandResponse.
    """
    if content_type.split(";")[0].strip().lower() != "application/json":
        return {"text": body.decode("utf-8", "replace")}
    value = orjson.loads(body)  # orjson.JSONDecodeError is a ValueError
    if value is None:
        return {}
    _check_response(value)
    return dict(value)


def _check_response(value: object) -> None:
    if not isinstance(value, dict):
        raise ValueError("a CommandResponse is a JSON object")
    for key, kind in _RESPONSE_FIELDS.items():
        if value.get(key) is not None and not isinstance(value[key], kind):
            raise ValueError(f"{key!r} has the wrong type")
    for extra in value.get("extra_responses") or []:
        _check_response(extra)


def _render_response(response: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {
        "response_type": "", "text": "", "username": "", "channel_id": "", "icon_url": "",
        "type": "", "props": None, "goto_location": "", "trigger_id": "",
        "skip_slack_parsing": False, "attachments": None, "extra_responses": None,
    }
    out.update({k: v for k, v in response.items() if k in out})
    return out


def _split_command(command: str) -> tuple[str, str, str]:
    """``(trigger without "/", lower-cased; separator; text)``: split at the first space."""
    match = re.search(r"\s", command)
    head, sep, text = (command, "", "") if match is None else (
        command[:match.start()], match.group(0), command[match.end():])
    return head.lower()[1:], sep, text


def _trigger_id(client_trigger_id: str, user_id: str) -> str:
    raw = f"{client_trigger_id}:{user_id}:{new_id()}"
    return base64.b64encode(raw.encode()).decode()
