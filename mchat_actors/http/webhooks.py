"""``POST /mchat/webhook/outgoing``: Mattermost outgoing webhooks into the normal pipeline.

The payload (JSON with ``timestamp`` in ms, or a form with ``timestamp`` in seconds) becomes a
``PostCreated(source="webhook")`` on the runtime's events channel, so the post is stored,
ordered with its channel's other messages and deduplicated by post id with the WebSocket copy.
Before injecting it we register with ``rt.webhook_replies``: when the answer is ready
within ``webhook_answer_within_s`` (4.5 s) it goes back in this response
(``{"text", "response_type": "comment"}``: Mattermost threads it under the post); otherwise the
response body is empty (Mattermost then posts nothing) and the runtime sends the answer later
through the outbox and the sender.

A post the trigger rules will not answer (no mention, not a command) is only queued: the
response is empty at once. A post that will be answered is first read back through REST for
its ``root_id`` (the payload has none, and a threaded reply must go under the thread's root).
Outgoing webhooks only fire in public channels, hence ``channel_type="O"``.

Webhook-only mode (no bot token, ``rt.directory`` set): the payload is kept in the durable
``webhook_inbox`` before the 200 (nothing can backfill it: Mattermost never sends it twice),
its channel and user are recorded for the mapper, nothing is read back through REST, and the
response is always empty: every answer goes through the durable outbox and the incoming
webhook. ``replay_kept`` queues the kept payloads not handled yet (at start, then every 30 s).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import attrs
import trio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from .. import posts, webhook_inbox
from ..errors import ChatServiceError, MattermostError, StoreError
from ..messages import ChannelId, MattermostUserId, Post, PostCreated, PostId
from ..trigger import decide
from .auth import check_source, check_webhook_token
from .context import Surface, surface
from .errors import ApiError
from .payloads import read_fields, text_field, timestamp_ms

if TYPE_CHECKING:
    from ..app import Runtime

logger = logging.getLogger(__name__)

router = APIRouter(tags=["integrations"])

LOOKUP_TIMEOUT_S = 1.0

_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_NAME = {"type": "string", "maxLength": 256}
_TEXT = {"type": "string", "maxLength": 100_000}
_FIELDS = {  # the constraints the handler enforces (unlisted fields are not read)
    "token": {"type": "string"}, "team_id": {"type": "string", "maxLength": 64},
    "team_domain": {"type": "string"}, "channel_id": _ID, "channel_name": _NAME,
    "user_id": _ID, "user_name": _NAME, "post_id": _ID, "text": _TEXT,
    "trigger_word": {"type": "string"}, "file_ids": _TEXT,
}
_REQUIRED = ["token", "channel_id", "user_id", "post_id"]
OPENAPI_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "required": _REQUIRED, "properties": {
        **_FIELDS, "timestamp": {"type": "integer", "minimum": 0, "maximum": 10**15,
                                 "description": "create_at in ms"}}}},
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object", "required": _REQUIRED, "properties": {
            **_FIELDS, "timestamp": {"type": "string", "pattern": r"^[0-9]{1,12}$",
                                     "description": "create_at in s"}}}},
}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The answer (``text``, ``response_type: comment``), or an empty body "
                         "when the answer will be posted later"},
    400: {"description": "Malformed JSON or form, or a required field is missing"},
    401: {"description": "Token missing or not accepted"},
    403: {"description": "Source address not in MCHAT_WEBHOOK_ALLOW"},
    413: {"description": "Body larger than MCHAT_MAX_BODY_BYTES"},
    415: {"description": "Neither JSON nor a form"},
    503: {"description": "The service is shutting down or overloaded"},
}


@router.post("/mchat/webhook/outgoing", openapi_extra=OPENAPI_BODY, responses=_RESPONSES,
             summary="Mattermost outgoing webhook")
async def outgoing_webhook(request: Request, s: Surface = Depends(surface)) -> Response:  # noqa: B008
    check_source(request, s)
    fields, encoding = await read_fields(request)
    token = fields.get("token")
    check_webhook_token(request, s, token if isinstance(token, str) else None)
    event = _event_from(fields, encoding)
    post = event.post
    if await s.rt.store.run(posts.is_post_seen, post.id):
        s.stats.webhook_outcomes[("outgoing", "duplicate")] += 1
        return Response(status_code=200)  # the WebSocket copy was handled (and answered) first
    if s.rt.directory is not None:  # webhook-only: kept durably, answered through the outbox
        await s.rt.store.run(webhook_inbox.keep, post.id, fields, encoding, now=time.time())
        await _record_payload(s.rt, event)
        try:
            await _inject_and_wait(s, event, wait=False)
        except ApiError:
            logger.warning("http: webhook post %s kept; it is handled by the next replay",
                           post.id)
        s.stats.webhook_outcomes[("outgoing", "queued")] += 1
        return Response(status_code=200)
    if not decide(post, channel_type="O", bot=s.rt.bot).respond:
        await _inject_and_wait(s, event, wait=False)  # stored, never answered: no waiting
        s.stats.webhook_outcomes[("outgoing", "stored")] += 1
        return Response(status_code=200)
    event = attrs.evolve(event, post=await _with_thread(s, post))
    answer = await _inject_and_wait(s, event)
    if answer is None:
        s.stats.webhook_outcomes[("outgoing", "deferred")] += 1
        return Response(status_code=200)
    s.stats.webhook_outcomes[("outgoing", "answered")] += 1
    return JSONResponse({"text": answer, "response_type": "comment"})


async def replay_kept(rt: Runtime, *, received_before: float) -> int:
    """Webhook-only mode: queue again every kept payload not handled yet (after a crash, or
    one that found the queue full). Returns how many were queued."""
    kept = await rt.store.run(webhook_inbox.pending, received_before=received_before)
    for fields, encoding in kept:
        try:
            event = _event_from(fields, encoding)
        except ApiError as exc:  # it parsed when it was kept: only a changed parser gets here
            logger.warning("http: a kept webhook payload no longer parses (%s: %s); skipped",
                           exc.error, exc.detail)
            continue
        await _record_payload(rt, event)
        await rt.events.send(event)
    if kept:
        logger.info("http: %d kept webhook post(s) queued again", len(kept))
    return len(kept)


def _event_from(fields: dict[str, Any], encoding: str) -> PostCreated:
    return PostCreated(post=_post_from(fields, encoding), channel_type="O",
                       channel_name=text_field(fields, "channel_name", max_chars=256),
                       team_id=text_field(fields, "team_id", max_chars=64),
                       sender_name=text_field(fields, "user_name", max_chars=256),
                       source="webhook")


async def _record_payload(rt: Runtime, event: PostCreated) -> None:
    """Webhook-only mode: name the channel and user for the mapper, and make the asker a
    member of the channel's room (nothing else tells us who is in it)."""
    assert rt.directory is not None
    post = event.post
    new_member = rt.directory.record(
        channel_id=post.channel_id, channel_name=event.channel_name, team_id=event.team_id,
        user_id=post.user_id, user_name=event.sender_name, public=True)
    if new_member:
        try:
            await rt.mapper.member_joined(post.channel_id, post.user_id)
        except (MattermostError, ChatServiceError, StoreError) as exc:
            logger.warning("http: webhook post %s: mapping its channel failed (%s); the "
                           "serializer tries again", post.id, type(exc).__name__)


async def _inject_and_wait(s: Surface, event: PostCreated, *, wait: bool = True) -> str | None:
    """Queue ``event`` and (when ``wait``) wait for its answer until the window closes.

    Raises:
        ApiError: 503 when the events channel is closed (shutdown) or stays full all window.
    """
    window_s = s.rt.config.http.webhook_answer_within_s
    deadline = trio.current_time() + window_s
    replies = s.rt.webhook_replies
    post_id = event.post.id
    if wait:
        replies.expect(post_id)  # before the post can reach its serializer
    try:
        queued = False
        with trio.move_on_at(deadline):
            try:
                await s.rt.events.send(event)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise ApiError(503, "unavailable", "the service is shutting down") from None
            queued = True
        if not queued:
            s.stats.webhook_outcomes[("outgoing", "busy")] += 1
            logger.warning("http: webhook post %s not queued within %.1f s (the WebSocket or "
                           "the next backfill brings it)", post_id, window_s)
            raise ApiError(503, "unavailable",
                           "the service is busy; the post will be picked up from the channel")
        if not wait:
            return None
        return await replies.wait(post_id, max(0.0, deadline - trio.current_time()))
    finally:
        with trio.CancelScope(shield=True):
            await replies.wait(post_id, 0)  # drop the registration if still there (no-op else)


async def _with_thread(s: Surface, post: Post) -> Post:
    """The post as Mattermost stores it, for its ``root_id`` (the payload has none).

    A reply in a thread must be answered under the thread's root: Mattermost refuses a
    ``root_id`` that is itself a reply. One REST read, only for posts that get an answer;
    when it fails or takes more than a second, the payload's post is used.
    """
    with trio.move_on_after(LOOKUP_TIMEOUT_S):
        try:
            found = Post.from_api(await s.rt.client.get_post(post.id))
        except (MattermostError, KeyError, TypeError, ValueError) as exc:
            logger.info("http: webhook post %s: lookup failed (%s); using the payload",
                        post.id, type(exc).__name__)
            return post
        if found.id == post.id and found.channel_id == post.channel_id:
            return attrs.evolve(post, root_id=found.root_id, type=found.type,
                                from_bot=found.from_bot, from_webhook=found.from_webhook)
    return post


def _post_from(fields: dict[str, Any], encoding: str) -> Post:
    file_ids = text_field(fields, "file_ids")
    created = timestamp_ms(fields, encoding)
    return Post(
        id=PostId(text_field(fields, "post_id", required=True, max_chars=64)),
        channel_id=ChannelId(text_field(fields, "channel_id", required=True, max_chars=64)),
        user_id=MattermostUserId(text_field(fields, "user_id", required=True, max_chars=64)),
        message=text_field(fields, "text"),
        create_at=created,
        update_at=created,
        file_ids=tuple(f for f in file_ids.split(",") if f),
    )
