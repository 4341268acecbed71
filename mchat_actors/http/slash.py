"""``POST /mchat/slash``: registered Mattermost slash commands (``/remember``, ``/search`` ...).

The form (token, channel_id, user_id, command, text, response_url ...) becomes the prompt
``"/<cmd> <text>"``; the channel and user are mapped through the mapper and the ChatService is
called through the invoker (timeout, concurrency limit, apology on failure). A command registered
under another trigger (``/ai remember milk``) is read from its first word.

Answer: ``{"response_type": "ephemeral" | "in_channel", "text": ...}`` (search results are
ephemeral, as the ChatService says). ``in_channel`` answers start with the bot's marker so the
bot ignores the post Mattermost makes from them. When the work takes longer than 2.5 s the
command is answered at once with an ephemeral "working on it", and the final answer is POSTed to
``response_url`` from the surface's background nursery (one pooled client; Mattermost keeps the
URL valid for 30 minutes).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx
import trio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..actors.invoker import APOLOGY
from ..errors import ChatServiceError, MattermostError, StoreError
from ..mattermost.hygiene import clean_answer
from ..messages import ChannelId, MattermostUserId, Post, PostId
from ..trigger import COMMANDS, MARKER
from .auth import check_source, check_webhook_token
from .context import Surface, surface
from .payloads import read_fields, text_field

logger = logging.getLogger(__name__)

router = APIRouter(tags=["integrations"])

WORKING = "⏳ Working on it… the answer will appear here shortly."
HELP = ("Commands: `/remember <text>`, `/search <query>`, `/forget <query>`, `/memory`, "
        "`/help`.")
STILL_WORKING = ("⏳ Still working on it; Mattermost sent no response_url, so the result "
                 "cannot be shown here.")
SYNC_OFF = "This channel is not synchronised with the memory agent (sync is off)."
UNAVAILABLE = "The memory agent cannot be reached right now. Please try again in a moment."

_FORM_FIELDS = ("token", "team_id", "team_domain", "channel_id", "channel_name", "user_id",
                "user_name", "command", "text", "trigger_id", "response_url")
_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "token": {"type": "string"}, "channel_id": _ID, "user_id": _ID, "command": _ID,
    "text": {"type": "string", "maxLength": 100_000},
    "response_url": {"type": "string", "maxLength": 2048}}
OPENAPI_BODY = {"requestBody": {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object", "required": ["token", "channel_id", "user_id", "command"],
        "properties": {name: _FIELD_SCHEMAS.get(name, {"type": "string"})
                       for name in _FORM_FIELDS}}}}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A CommandResponse (``response_type``, ``text``)"},
    400: {"description": "Malformed form or a required field is missing"},
    401: {"description": "Token missing or not accepted"},
    403: {"description": "Source address not in MCHAT_WEBHOOK_ALLOW"},
    413: {"description": "Body larger than MCHAT_MAX_BODY_BYTES"},
    415: {"description": "Not a form"},
}


@attrs.frozen(kw_only=True)
class SlashCommand:
    command: str  # remember, search, ... (without the slash)
    text: str
    channel_id: ChannelId
    user_id: MattermostUserId
    response_url: str | None

    @property
    def prompt(self) -> str:
        return f"/{self.command} {self.text}".strip()


@attrs.define
class _Pending:
    """Hand-over between the request and its worker (one trio thread: no lock needed)."""

    done: trio.Event = attrs.Factory(trio.Event)
    answer: dict[str, str] | None = None
    deferred: bool = False


@router.post("/mchat/slash", openapi_extra=OPENAPI_BODY, responses=_RESPONSES,
             summary="Mattermost slash command")
async def slash_command(request: Request, s: Surface = Depends(surface)) -> JSONResponse:  # noqa: B008
    check_source(request, s)
    fields, _ = await read_fields(request, allow_json=False)
    check_webhook_token(request, s, fields.get("token"), kind="slash")
    cmd = _parse(fields)
    if s.rt.directory is not None:
        await _record_payload(s, fields)
    if cmd is not None:
        cmd = attrs.evolve(cmd, response_url=_trusted_response_url(s, cmd.response_url))
    if cmd is None:
        s.stats.webhook_outcomes[("slash", "help")] += 1
        return JSONResponse({"response_type": "ephemeral", "text": HELP})
    pending = _Pending()
    if s.background is None:  # no nursery to finish in: answer inline
        with trio.move_on_after(s.slash_max_wait_s):
            await _work(s, cmd, pending)
    else:
        s.background.start_soon(_work, s, cmd, pending)
        wait_s = s.slash_answer_within_s if cmd.response_url else s.slash_max_wait_s
        with trio.move_on_after(wait_s):
            await pending.done.wait()
    if pending.answer is not None:
        s.stats.webhook_outcomes[("slash", "answered")] += 1
        return JSONResponse(pending.answer)
    pending.deferred = True  # the worker posts to response_url when it is done
    s.stats.webhook_outcomes[("slash", "deferred")] += 1
    return JSONResponse({"response_type": "ephemeral",
                         "text": WORKING if cmd.response_url else STILL_WORKING})


async def _record_payload(s: Surface, fields: dict[str, Any]) -> None:
    """Webhook-only mode: the payload names the channel and user for the mapper (the channel's
    type is unknown: a DM by its name, else private until an outgoing webhook shows it public)
    and makes the user a member of the channel's room."""
    assert s.rt.directory is not None
    channel_id = text_field(fields, "channel_id", required=True, max_chars=64)
    user_id = text_field(fields, "user_id", required=True, max_chars=64)
    new_member = s.rt.directory.record(
        channel_id=channel_id, channel_name=text_field(fields, "channel_name", max_chars=256),
        team_id=text_field(fields, "team_id", max_chars=64), user_id=user_id,
        user_name=text_field(fields, "user_name", max_chars=256), public=False)
    if new_member:
        try:
            await s.rt.mapper.member_joined(ChannelId(channel_id), MattermostUserId(user_id))
        except (MattermostError, ChatServiceError, StoreError) as exc:
            logger.warning("http: slash in %s: mapping failed (%s)", channel_id,
                           type(exc).__name__)


def _parse(fields: dict[str, Any]) -> SlashCommand | None:
    trigger = text_field(fields, "command", required=True, max_chars=64).lstrip("/").lower()
    text = text_field(fields, "text").strip()
    channel_id = text_field(fields, "channel_id", required=True, max_chars=64)
    user_id = text_field(fields, "user_id", required=True, max_chars=64)
    if trigger not in COMMANDS:  # e.g. "/ai remember milk": the command is the first word
        first, _, rest = text.partition(" ")
        if first.lstrip("/").lower() not in COMMANDS:
            return None
        trigger, text = first.lstrip("/").lower(), rest.strip()
    url = text_field(fields, "response_url", max_chars=2048)
    return SlashCommand(command=trigger, text=text, channel_id=ChannelId(channel_id),
                        user_id=MattermostUserId(user_id), response_url=url or None)


def _trusted_response_url(s: Surface, url: str | None) -> str | None:
    """``url`` when it points at the Mattermost server's own origin (MCHAT_URL's scheme, host
    and port); anything else is dropped, logged and counted: following it would let a caller
    make this service POST wherever it likes (request forgery)."""
    if not url:
        return None
    if same_origin(url, s.rt.config.mattermost.url):
        return url
    s.stats.response_url_posts["rejected"] += 1
    logger.warning("http: slash response_url ignored: not on the Mattermost server's origin")
    return None


def same_origin(url: str, base: str) -> bool:
    try:
        a, b = urlsplit(url), urlsplit(base)
        ports = (a.port, b.port)
    except ValueError:
        return False
    default = {"http": 80, "https": 443}
    if a.scheme.lower() not in default or a.username or a.password:
        return False
    return (a.scheme.lower() == b.scheme.lower()
            and (a.hostname or "") == (b.hostname or "")
            and (ports[0] or default[a.scheme.lower()])
            == (ports[1] or default.get(b.scheme.lower(), 0)))


async def _work(s: Surface, cmd: SlashCommand, pending: _Pending) -> None:
    """Run the command; hand the answer to the request, or post it to ``response_url``."""
    try:
        answer = await _answer(s, cmd)
    except Exception:  # the error boundary of one slash command: log, count, apologise
        logger.exception("http: slash /%s in %s failed", cmd.command, cmd.channel_id)
        s.stats.unexpected_errors += 1
        answer = {"response_type": "ephemeral", "text": APOLOGY}
    answer["text"] = clean_answer(answer["text"])  # output hygiene, as for posted replies
    if not pending.deferred:
        pending.answer = answer
        pending.done.set()
        return
    if cmd.response_url is not None:
        await _post_response(s, cmd.response_url, answer)


async def _answer(s: Surface, cmd: SlashCommand) -> dict[str, str]:
    if cmd.command == "help" and not cmd.text:
        return {"response_type": "ephemeral", "text": HELP}
    try:
        info = await s.rt.mapper.channel(cmd.channel_id)
        if not info.sync_enabled:
            return {"response_type": "ephemeral", "text": SYNC_OFF}
        user = await s.rt.mapper.user(cmd.user_id)
    except (MattermostError, ChatServiceError, StoreError) as exc:
        logger.warning("http: slash /%s in %s: mapping failed (%s)", cmd.command,
                       cmd.channel_id, type(exc).__name__)
        return {"response_type": "ephemeral", "text": UNAVAILABLE}
    post = Post(id=PostId(f"slash-{uuid.uuid4().hex}"), channel_id=cmd.channel_id,
                user_id=cmd.user_id, message=cmd.prompt, create_at=int(time.time() * 1000))
    outcome = await s.rt.invoker.send(post, room=info.room_id, user=user, respond=True,
                                      prompt=cmd.prompt)
    text = outcome.answer or APOLOGY
    if outcome.failed or outcome.result is None or outcome.result.ephemeral:
        return {"response_type": "ephemeral", "text": text}
    return {"response_type": "in_channel", "text": f"{MARKER} {text}"}


async def _post_response(s: Surface, url: str, answer: dict[str, str]) -> None:
    """POST the final CommandResponse to Mattermost's ``response_url`` (best effort, one try)."""
    if s.http_client is None:
        logger.warning("http: no client to post a delayed slash answer")
        s.stats.response_url_posts["failed"] += 1
        return
    try:
        response = await s.http_client.post(url, json=answer)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        logger.warning("http: posting a delayed slash answer failed (%s)", type(exc).__name__)
        s.stats.response_url_posts["failed"] += 1
        return
    if response.is_success:
        s.stats.response_url_posts["ok"] += 1
    else:
        logger.warning("http: response_url answered %d", response.status_code)
        s.stats.response_url_posts["failed"] += 1
