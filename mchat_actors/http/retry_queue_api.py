"""The admin API over the durable retry queue of inbound events (``retry_queue.py``).

``GET /api/v1/mchat/retry-queue`` lists parked events (channel, post id, kind, tries, next try,
last error; never the message text, which may come from a private channel), and an admin
resolves them: ``POST .../{id}/retry`` (try now) or ``POST .../{id}/discard`` (give up on it;
the post is recorded as ``discarded``). Both write an ``audit_log`` row. The parked channel's
serializer re-reads its head at least every ``dispatcher.RECHECK_S`` seconds, so an admin
action takes effect within that time.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from .. import retry_queue
from .admin_api import _AUTH_RESPONSES, Caller, Ctx, Limit
from .errors import ApiError

router = APIRouter(prefix="/api/v1/mchat", tags=["admin"], responses=_AUTH_RESPONSES)
RowId = Annotated[int, Path(ge=1, le=2**62)]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such row"},
    409: {"description": "The row is not pending (already discarded)"}}


@router.get("/retry-queue", summary="Inbound events waiting to be stored")
async def get_retry_queue(caller: Caller, s: Ctx, limit: Limit = 200) -> dict[str, Any]:
    return {"counts": await s.rt.store.run(retry_queue.counts),
            "rows": await s.rt.store.run(retry_queue.listing, limit=limit)}


@router.post("/retry-queue/{row_id}/retry", summary="Try a parked event now",
             responses=_RESPONSES)
async def retry_now(row_id: RowId, caller: Caller, s: Ctx) -> JSONResponse:
    result = await s.rt.store.run(retry_queue.retry_now, row_id, remote_addr=caller)
    return _answer(row_id, result, "requeued")


@router.post("/retry-queue/{row_id}/discard", summary="Give up on a parked event",
             responses=_RESPONSES)
async def discard(row_id: RowId, caller: Caller, s: Ctx) -> JSONResponse:
    result = await s.rt.store.run(retry_queue.discard, row_id, remote_addr=caller)
    return _answer(row_id, result, "discarded")


def _answer(row_id: int, result: str, wanted: str) -> JSONResponse:
    if result == "not_found":
        raise ApiError(404, "not found", "no such retry-queue row")
    if result != wanted:
        raise ApiError(409, "conflict", f"the row is {result.removeprefix('already ')}, "
                       "not pending")
    return JSONResponse({"id": row_id, "status": result})
