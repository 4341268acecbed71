"""The admin API under ``/api/v1/mchat/``: mappings, status, outbox, audit log.

Every route needs ``Authorization: Bearer <MCHAT_ADMIN_TOKEN>`` (see ``auth``). Every change
writes an ``audit_log`` row: actor ``admin``, the action, its target, the time and the caller's
address. Responses never contain secrets (the config is shown through ``config.describe``).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import trio
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from .. import mapping, outbox
from ..errors import ChatServiceError, MattermostApiError, MattermostError, StoreError
from ..messages import ChannelId, OutboundRequest, SendReply
from ..store import audit
from . import outbox_admin, status
from .auth import require_admin
from .context import Surface, surface
from .errors import ApiError

logger = logging.getLogger(__name__)

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Bearer token missing or wrong"},
    403: {"description": "MCHAT_ADMIN_TOKEN is not set: the admin API is off"},
}

router = APIRouter(prefix="/api/v1/mchat", tags=["admin"], responses=_AUTH_RESPONSES)

Caller = Annotated[str, Depends(require_admin)]  # the caller's address, for the audit log
Ctx = Annotated[Surface, Depends(surface)]
Limit = Annotated[int, Query(ge=1, le=1000)]


class MapChannel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel_id: str = Field(pattern=ID_PATTERN, description="Mattermost channel id")


class SyncSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(description="store and answer this channel's posts")


@router.get("/mappings/channels", summary="Channel -> room mappings")
async def list_channels(caller: Caller, s: Ctx) -> dict[str, Any]:
    return {"channels": await s.rt.store.run(mapping.list_channels)}


@router.post("/mappings/channels", status_code=201, summary="Map a channel now",
             responses={404: {"description": "No such channel (or the bot cannot see it)"},
                        503: {"description": "Mattermost or the ChatService is unavailable"}})
async def map_channel(body: MapChannel, caller: Caller, s: Ctx) -> dict[str, Any]:
    cid = ChannelId(body.channel_id)
    try:
        info = await s.rt.mapper.channel(cid)
    except MattermostApiError as exc:
        if exc.status in (403, 404):
            raise ApiError(404, "not found", "no such channel, or the bot cannot see it") \
                from None
        raise ApiError(503, "unavailable", f"Mattermost answered {exc.status}") from None
    except (MattermostError, ChatServiceError, StoreError) as exc:
        raise ApiError(503, "unavailable", type(exc).__name__) from None
    await s.rt.store.run(audit, actor="admin", action="mapping.channel.create", target=cid,
                         detail=f"room {info.room_id}", remote_addr=caller)
    return {"channel": await s.rt.store.run(mapping.get_channel, cid)}


@router.put("/mappings/channels/{channel_id}/sync", summary="Turn a channel's sync on or off",
            responses={404: {"description": "The channel is not mapped"}})
async def set_sync(channel_id: Annotated[str, Path(pattern=ID_PATTERN)], body: SyncSetting,
                   caller: Caller, s: Ctx) -> dict[str, Any]:
    if not await s.rt.mapper.set_sync(ChannelId(channel_id), body.enabled):
        raise ApiError(404, "not found", "the channel is not mapped")
    await s.rt.store.run(audit, actor="admin", action="mapping.channel.sync", target=channel_id,
                         detail="enabled" if body.enabled else "disabled", remote_addr=caller)
    return {"channel_id": channel_id, "sync_enabled": body.enabled}


@router.get("/mappings/users", summary="Mattermost user -> agent user mappings")
async def list_users(caller: Caller, s: Ctx) -> dict[str, Any]:
    return {"users": await s.rt.store.run(mapping.list_users)}


@router.get("/status", summary="Connection, mode, counters and the (secret-free) config")
async def get_status(caller: Caller, s: Ctx) -> dict[str, Any]:
    return await status.collect(s)


@router.get("/outbox", summary="Pending and failed replies")
async def get_outbox(caller: Caller, s: Ctx, limit: Limit = 100) -> dict[str, Any]:
    out = await s.rt.store.run(outbox_admin.overview)
    out["pending"] = await s.rt.store.run(outbox_admin.list_rows, "pending", limit=limit)
    out["failed"] = await s.rt.store.run(outbox_admin.list_rows, "failed", limit=limit)
    return out


@router.post("/outbox/{row_id}/retry", summary="Send a failed reply again",
             responses={404: {"description": "No such outbox row"},
                        409: {"description": "The row is not failed (pending or sent)"}})
async def retry_row(row_id: Annotated[int, Path(ge=1, le=2**62)], caller: Caller,
                    s: Ctx) -> JSONResponse:
    result = await s.rt.store.run(outbox_admin.retry, row_id, remote_addr=caller)
    if result == "not_found":
        raise ApiError(404, "not found", "no such outbox row")
    if result != "requeued":
        raise ApiError(409, "conflict", f"the row is {result}, not failed")
    await _nudge_sender(s, row_id)
    return JSONResponse({"id": row_id, "status": "pending"})


@router.get("/audit", summary="Recent admin actions, newest first")
async def get_audit(caller: Caller, s: Ctx, limit: Limit = 50) -> dict[str, Any]:
    return {"entries": await s.rt.store.run(outbox_admin.recent_audit, limit=limit)}


async def _nudge_sender(s: Surface, row_id: int) -> None:
    """Tell the sender about the requeued row: the same reply key maps to the existing row."""
    row = await s.rt.store.run(outbox.get_row, row_id)
    if row is None:
        return
    request: OutboundRequest = SendReply(channel_id=row.channel_id, message=row.message,
                                         reply_key=row.reply_key, root_id=row.root_id,
                                         trigger_post_id=row.trigger_post_id)
    try:
        s.rt.replies.send_nowait(request)
    except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
        logger.info("http: outbox row %d requeued; the sender picks it up on its next scan",
                    row_id)
