"""The AI Memory Agent's search results and data rows as ``MemoryRecord``s (``chat.remote``).

The real shapes (src/agent/schemas.py at ``0d62821``): ``AgentMemorySearchResult`` has
``memory_id``, ``content``, ``scope``, ``category``, ``importance``, ``score``, ``created_at``
(naive ISO 8601, UTC) and ``metadata`` (ours, plus ``source`` and ``agent_instance_id``);
``AgentDataResponse`` has ``id`` (the agent_data id), ``content``, ``metadata``, ``created_at``.
Our audience fields live in the metadata as ``mchat_scope``, ``mchat_room_id``,
``mchat_owner_id`` (the old adapter wrote ``scope`` and ``room_id``: read as well).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..messages import AgentUserId, RoomId
from .protocol import MemoryRecord


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
    score = result.get("score")
    return MemoryRecord(
        id=str(result.get(id_key) or ""), content=str(result.get("content") or ""),
        scope="personal" if meta_str(m, "mchat_scope", "scope") == "personal" else "room",
        room_id=RoomId(room) if room else None,
        owner_id=AgentUserId(owner) if owner else None,
        source_post_id=meta_str(m, "mchat_post_id", "post_id"),
        permalink=meta_str(m, "mchat_permalink", "permalink"),
        created_at_ms=parse_server_time(result.get("created_at")),
        score=float(score) if isinstance(score, int | float) else 0.0,
    )


__all__ = ["meta", "meta_str", "parse_server_time", "record_from_result"]
