"""The AI Memory Agent's search results and data rows as ``MemoryRecord``s (``chat.remote``).

The real shapes (src/agent/schemas.py at ``0d62821``): ``AgentMemorySearchResult`` has
``memory_id``, ``content``, ``scope``, ``category``, ``importance``, ``score``, ``created_at``
(naive ISO 8601, UTC) and ``metadata`` (ours, plus ``source`` and ``agent_instance_id``);
``AgentDataResponse`` has ``id`` (the agent_data id), ``content``, ``metadata``, ``created_at``.
Our audience fields live in the metadata as ``mchat_scope``, ``mchat_room_id``,
``mchat_owner_id`` (the old adapter wrote ``scope`` and ``room_id``: read as well). A memory
written through the Agent API by another client has none of them: it has no room, so no reply
may show it (``chat.audience``), unless it is marked for a whole team with ``mchat_scope
"team"`` and ``mchat_team_id`` (the Mattermost team id).

``audience_filter`` is THE place where the remote backend decides which of these records a reply
may show: every search, list and forget of ``chat.remote`` goes through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from ..messages import AgentUserId, RoomId
from .audience import TEAM, Audience, RoomInfo, may_use
from .protocol import ChatService, MemoryRecord

Scoped = tuple[list[MemoryRecord], list[MemoryRecord], Audience, Mapping[str, RoomInfo]]


@runtime_checkable
class _AudienceSource(Protocol):
    async def audience_scope(self, room: RoomId, user: AgentUserId, *, only_asker: bool,
                             memory_rooms: Sequence[str]
                             ) -> tuple[Audience, dict[str, RoomInfo]]: ...


def parse_server_time(value: Any) -> int:
    """Milliseconds since the epoch of the server's ISO time (naive means UTC); 0 if unusable."""
    if not isinstance(value, str):
        return 0
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def meta(item: Mapping[str, Any]) -> Mapping[str, Any]:
    """The item's metadata object ({} when absent or not an object)."""
    value = item.get("metadata")
    return value if isinstance(value, dict) else {}


def meta_str(fields: Mapping[str, Any], *keys: str) -> str | None:
    """The first string among ``keys`` (``mchat_*``, then the old adapter's plain names)."""
    for key in keys:
        if isinstance(fields.get(key), str):
            return str(fields[key])
    return None


def record_from_result(result: Mapping[str, Any], *, id_key: str = "memory_id") -> MemoryRecord:
    """A search result (``AgentMemorySearchResult``) or data row (``AgentDataResponse``, with
    ``id_key="id"``) as a ``MemoryRecord`` carrying the fields an audience filter needs."""
    m = meta(result)
    owner = meta_str(m, "mchat_owner_id")
    room = meta_str(m, "mchat_room_id", "room_id")
    marked = meta_str(m, "mchat_scope", "scope")
    scope = "personal" if marked == "personal" else TEAM if marked == TEAM and not room else "room"
    score = result.get("score")
    return MemoryRecord(
        id=str(result.get(id_key) or ""), content=str(result.get("content") or ""),
        scope=scope, team_id=meta_str(m, "mchat_team_id") if scope == TEAM else None,
        room_id=RoomId(room) if room else None,
        owner_id=AgentUserId(owner) if owner else None,
        source_post_id=meta_str(m, "mchat_post_id", "post_id"),
        permalink=meta_str(m, "mchat_permalink", "permalink"),
        created_at_ms=parse_server_time(result.get("created_at")),
        score=float(score) if isinstance(score, int | float) else 0.0,
    )


def audience_filter(memories: Sequence[MemoryRecord], audience: Audience,
                    rooms: Mapping[str, RoomInfo]) -> tuple[list[MemoryRecord], list[MemoryRecord]]:
    """``(the memories every reader of the reply may see, in order; the others)``.

    The rules are the embedded service's (``chat.audience.may_use``): ``audience`` and the kind,
    members and team of the memories' rooms come from our local store. "The others" never
    reach a reply nor an LLM; callers only count them (``hidden_elsewhere``).
    """
    allowed: list[MemoryRecord] = []
    hidden: list[MemoryRecord] = []
    for memory in memories:
        (allowed if may_use(audience, memory, rooms) else hidden).append(memory)
    return allowed, hidden


async def scoped(local: ChatService, records: Sequence[MemoryRecord], room: RoomId,
                 user: AgentUserId, *, only_asker: bool) -> Scoped:
    """``records`` split by the audience of a reply in ``room`` to ``user`` (``only_asker``:
    one only ``user`` reads), the audience read from the ``local`` store: (allowed, left out,
    the audience, the memories' rooms)."""
    audience: Audience
    rooms: Mapping[str, RoomInfo]
    if isinstance(local, _AudienceSource):
        audience, rooms = await local.audience_scope(
            room, user, only_asker=only_asker,
            memory_rooms=sorted({m.room_id for m in records if m.room_id}))
    else:  # a local store that cannot say who reads what: this room's memories only
        audience = (Audience.only(user, room) if only_asker
                    else Audience.of(kind="channel", room=room, members=(), asker=user))
        rooms = {}
    allowed, hidden = audience_filter(records, audience, rooms)
    return allowed, hidden, audience, rooms


def hidden_elsewhere(hidden: Sequence[MemoryRecord]) -> list[MemoryRecord]:
    """Of the memories a reply left out, those some other reply (a DM) could show: a memory
    with neither room nor team is shown nowhere, so it is not worth a note."""
    return [m for m in hidden if m.room_id is not None or m.scope in ("personal", TEAM)]


def forgettable(memory: MemoryRecord, room: str, user: str,
                rooms: Mapping[str, RoomInfo]) -> bool:
    """Whether ``user`` may forget ``memory`` from ``room``: their own personal memory, or one
    of the room asked in or of a room they are a member of (reading a team-wide memory does
    not make it yours to forget; a memory without a room is nobody's here)."""
    if memory.scope == "personal":
        return memory.owner_id == user
    if memory.room_id is None:
        return False
    info = rooms.get(memory.room_id)
    return memory.room_id == room or (info is not None and user in info.members)


__all__ = ["Scoped", "audience_filter", "forgettable", "hidden_elsewhere", "meta", "meta_str",
           "parse_server_time", "record_from_result", "scoped"]
