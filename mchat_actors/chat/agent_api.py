"""The Agent API of one AI Memory Agent instance (illing1230/ai-memory-agent,
src/agent/router.py at ``0d62821``), as ``chat.remote`` uses it; ``{a}`` is
``/api/v1/agents/{id}``:

- ``POST {a}/data`` (``data_type "memory"``) stores a memory item: an agent_data row and a memory;
- ``POST {a}/memories/search`` with ``context_sources`` (without it the server searches nothing);
- ``GET {a}/data?data_type=memory`` lists the items (agent_data rows), newest first;
- ``DELETE {a}/memories/{id}``: a memory id deletes the memory, an agent_data id only the row.

There is no update. HTTP (rate limit, 429/5xx, key never logged) is ``chat.agent_http``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, final
from urllib.parse import quote

from ..errors import ChatServiceError
from .agent_http import AgentHttp, HttpStatusError
from .remote_records import meta, meta_str

logger = logging.getLogger(__name__)

LIST_PAGE = 100
CONTEXT_SOURCES = {"include_agent": True}


@final
class AgentApi:
    """The Agent API of one agent instance (the key selects it; the path id is cosmetic)."""

    def __init__(self, http: AgentHttp) -> None:
        self._http = http

    def __repr__(self) -> str:
        return f"AgentApi({self._http!r})"

    async def store_memory(self, content: str, metadata: Mapping[str, Any]) -> str:
        """``POST data`` with ``data_type "memory"``; the agent_data id."""
        body = {"data_type": "memory", "content": content,
                "metadata": {k: v for k, v in metadata.items() if v is not None}}
        answer = await self._http.request("POST", "data", json=body)
        return str(answer.get("id", "")) if isinstance(answer, dict) else ""

    async def search(self, query: str, *, limit: int) -> list[Mapping[str, Any]]:
        """``POST memories/search`` over the agent's memories; results best first."""
        body = {"query": query, "limit": max(1, min(50, limit)),
                "context_sources": CONTEXT_SOURCES}
        answer = await self._http.request("POST", "memories/search", json=body)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise ChatServiceError("the memory agent answered a search without results")
        return [r for r in results if isinstance(r, dict) and isinstance(r.get("content"), str)
                and r.get("memory_id")]

    async def memory_items(self, *, offset: int = 0,
                           limit: int = LIST_PAGE) -> tuple[list[Mapping[str, Any]], int]:
        """``GET data?data_type=memory``: a page of memory items (agent_data rows), newest
        first, and how many there are in all."""
        answer = await self._http.request("GET", "data", params={
            "data_type": "memory", "limit": limit, "offset": offset})
        rows = answer.get("data") if isinstance(answer, dict) else None
        total = answer.get("total") if isinstance(answer, dict) else None
        if not isinstance(rows, list):
            raise ChatServiceError("the memory agent answered a listing without data")
        items: list[Mapping[str, Any]] = [
            r for r in rows if isinstance(r, dict) and isinstance(r.get("content"), str)]
        return items, total if isinstance(total, int) else len(rows)

    async def delete(self, some_id: str) -> bool:
        """``DELETE memories/{id}`` (a memory id or an agent_data id); False if already gone."""
        try:
            await self._http.request("DELETE", f"memories/{quote(some_id, safe='')}")
        except HttpStatusError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def items_of_post(self, post_id: str, *, pages: int = 5) -> list[Mapping[str, Any]]:
        """The memory items stored for Mattermost post ``post_id`` (``mchat_post_id``), looking
        through at most ``pages`` pages of the listing."""
        found: list[Mapping[str, Any]] = []
        offset = 0
        for _page in range(pages):
            items, total = await self.memory_items(offset=offset)
            found += [i for i in items if meta_str(meta(i), "mchat_post_id") == post_id]
            offset += len(items)
            if not items or offset >= total:
                break
        return found

    async def drop_item(self, item: Mapping[str, Any]) -> bool:
        """Delete a memory item: its memory (a search for its text, matched by ``mchat_ref``,
        else by post id: DELETE needs the memory id), then its data row. False when the memory
        is not among the search's results (the row then stays, so /memory shows what a search
        still finds)."""
        fields = meta(item)
        ref, post = meta_str(fields, "mchat_ref"), meta_str(fields, "mchat_post_id")
        results = await self.search(str(item.get("content") or ""), limit=50)
        match = next((r for r in results if (meta_str(meta(r), "mchat_ref") == ref if ref
                                             else meta_str(meta(r), "mchat_post_id") == post)),
                     None)
        if match is None:
            logger.warning("remote: the memory of an edited or deleted post was not found in "
                           "the agent; it stays until /forget")
            return False
        await self.delete(str(match["memory_id"]))
        await self.delete(str(item.get("id")))
        return True


__all__ = ["CONTEXT_SOURCES", "LIST_PAGE", "AgentApi"]
