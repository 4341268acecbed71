"""The admin API's memory view under ``/api/v1/mchat/memories`` (embedded ChatService only).

- ``GET /memories?q=&state=current|forgotten|superseded|retracted|all&limit=``: search;
- ``GET /memories/{id}``: every version of its subject (who, where, when, source permalink)
  and each version's audit trail;
- ``POST /memories/{id}/forget`` and ``/restore``: the soft mark people set with ``/forget``,
  and its undo; audited twice (``memory_audit`` with actor ``admin``, and ``audit_log`` with the
  caller's address).

Texts are shown as ``mask_sensitive`` leaves them (phone numbers and e-mails masked; RRNs,
cards and secrets never were stored). A backend without these methods (the remote adapter)
answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from ..chat.masking import mask_sensitive
from ..chat.protocol import MemoryRecord
from ..store import audit
from .admin_api import _AUTH_RESPONSES, Caller, Ctx
from .context import Surface
from .errors import ApiError

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_AUTH_RESPONSES,
    404: {"description": "No such memory, or the backend has no memory view (remote)"},
}
router = APIRouter(prefix="/api/v1/mchat/memories", tags=["admin"], responses=_RESPONSES)

MemoryId = Annotated[int, Path(ge=1, le=2**62)]
State = Literal["current", "forgotten", "superseded", "retracted", "all"]


def _service(s: Surface) -> Any:
    chat = s.rt.chat
    if not hasattr(chat, "admin_memories"):
        raise ApiError(404, "not found", "the memory view needs CHAT_BACKEND=embedded")
    return chat


def _render(m: MemoryRecord) -> dict[str, Any]:
    if m.forgotten_at_ms is not None:
        state = "forgotten"
    elif m.valid_to_ms is not None:
        state = "superseded"
    else:
        state = "current"
    return {
        "id": m.id, "content": mask_sensitive(m.content), "state": state, "scope": m.scope,
        "kind": m.kind, "room": m.room_name or m.room_id, "author": m.author_name or m.author_id,
        "valid_from_ms": m.valid_from_ms, "valid_to_ms": m.valid_to_ms,
        "superseded_by": m.superseded_by, "forgotten_at_ms": m.forgotten_at_ms,
        "permalink": m.permalink,
    }


@router.get("", summary="Search memories (current, forgotten, superseded, retracted or all)")
async def list_memories(caller: Caller, s: Ctx,
                        q: Annotated[str, Query(max_length=200)] = "",
                        state: State = "current",
                        limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    found = await _service(s).admin_memories(query=q, state=state, limit=limit)
    return {"memories": [_render(m) for m in found]}


@router.get("/{memory_id}", summary="A memory's versions and audit trail")
async def memory_history(memory_id: MemoryId, caller: Caller, s: Ctx) -> dict[str, Any]:
    svc = _service(s)
    versions = await svc.memory_versions(memory_id)
    if not versions:
        raise ApiError(404, "not found", "no such memory")
    trails = {v.id: await svc.memory_audit(int(v.id[1:])) for v in versions}
    return {"versions": [{**_render(v), "audit": trails[v.id]} for v in versions]}


async def _mark(s: Surface, caller: str, memory_id: int, action: str) -> dict[str, Any]:
    svc = _service(s)
    method = svc.forget_memory if action == "forget" else svc.restore_memory
    if not await method(memory_id, actor="admin"):
        if not await svc.memory_versions(memory_id):
            raise ApiError(404, "not found", "no such memory")
        raise ApiError(409, "conflict",
                       "already forgotten" if action == "forget" else "not forgotten")
    await s.rt.store.run(audit, actor="admin", action=f"memory.{action}",
                         target=f"m{memory_id}", remote_addr=caller)
    return {"id": f"m{memory_id}", "state": "forgotten" if action == "forget" else "restored"}


@router.post("/{memory_id}/forget", summary="Mark a memory forgotten (answers stop using it)",
             responses={409: {"description": "Already forgotten"}})
async def forget(memory_id: MemoryId, caller: Caller, s: Ctx) -> dict[str, Any]:
    return await _mark(s, caller, memory_id, "forget")


@router.post("/{memory_id}/restore", summary="Undo a forget",
             responses={409: {"description": "Not forgotten"}})
async def restore(memory_id: MemoryId, caller: Caller, s: Ctx) -> dict[str, Any]:
    return await _mark(s, caller, memory_id, "restore")


