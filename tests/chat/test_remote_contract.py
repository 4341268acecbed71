"""The AI Memory Agent twin answers with the real server's shapes and status codes.

``contract/agent_api_examples.json`` was written by hand from the real repository's Pydantic
models and handlers (illing1230/ai-memory-agent@0d62821); these tests replay its steps against
the twin over a real socket and compare status codes, key sets and JSON types.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from mchat_actors.testing.fake_agent_api import FakeAgentAPI

EXAMPLES = Path(__file__).parent / "contract" / "agent_api_examples.json"
KEY = "agent-key-123"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def assert_same_shape(actual: Any, example: Any, where: str = "$") -> None:
    """Same JSON types; objects with the same keys; lists compared by their first element;
    ``*_at`` strings are naive ISO datetimes in both."""
    assert _kind(actual) == _kind(example), f"{where}: {actual!r} is not like {example!r}"
    if isinstance(example, dict):
        assert set(actual) == set(example), f"{where}: keys {sorted(actual)} != {sorted(example)}"
        for key, value in example.items():
            assert_same_shape(actual[key], value, f"{where}.{key}")
            if key.endswith("_at") and isinstance(value, str):
                parsed = datetime.fromisoformat(actual[key])
                assert parsed.tzinfo is None, f"{where}.{key}: the server sends naive UTC"
    elif isinstance(example, list) and example:
        assert actual, f"{where}: empty, the example has items"
        assert_same_shape(actual[0], example[0], f"{where}[0]")


def _dig(value: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _fill(value: Any, captured: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, got in captured.items():
            value = value.replace("{" + name + "}", got)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, captured) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, captured) for v in value]
    return value


def test_examples_file_cites_the_real_commit() -> None:
    doc = json.loads(EXAMPLES.read_text())
    assert "0d62821" in doc["source"]
    assert len(doc["steps"]) >= 15


async def test_twin_matches_every_example() -> None:
    steps = json.loads(EXAMPLES.read_text())["steps"]
    captured: dict[str, str] = {}
    async with FakeAgentAPI(api_key=KEY) as fake, httpx.AsyncClient(base_url=fake.url) as http:
        for step in steps:
            headers = {"api_key": {"X-API-Key": KEY}, "wrong_key": {"X-API-Key": "nope"},
                       "none": {}, "bearer": {"Authorization": f"Bearer {captured.get('token')}"}
                       }[step["auth"]]
            response = await http.request(step["method"], _fill(step["path"], captured),
                                          json=_fill(step.get("body"), captured),
                                          headers=headers)
            assert response.status_code == step["status"], (step["name"], response.text)
            if "response" in step:
                assert_same_shape(response.json(), step["response"], step["name"])
            for name, dotted in step.get("capture", {}).items():
                captured[name] = str(_dig(response.json(), dotted))


def test_shape_check_can_fail() -> None:
    with pytest.raises(AssertionError):
        assert_same_shape({"id": "x", "metadata": {}}, {"id": "x", "metadata": {},
                                                         "created_at": "2026-01-01T00:00:00"})
    with pytest.raises(AssertionError):  # the old stand-in's integer created_at
        assert_same_shape({"created_at": 12.5}, {"created_at": "2026-01-01T00:00:00"})


async def test_sixty_per_minute_then_429_with_retry_after(autojump_clock: trio.abc.Clock,
                                                          ) -> None:
    """src/shared/rate_limiter.py: sliding 60 s window per key on /api/v1/agents/ only."""
    async with FakeAgentAPI(api_key=KEY) as fake, httpx.AsyncClient(base_url=fake.url) as http:
        body = {"query": "x", "context_sources": {"include_agent": True}}
        for _ in range(60):
            ok = await http.post("/api/v1/agents/a/memories/search", json=body,
                                 headers={"X-API-Key": KEY})
            assert ok.status_code == 200
        await trio.sleep(20)
        limited = await http.post("/api/v1/agents/a/memories/search", json=body,
                                  headers={"X-API-Key": KEY})
        assert limited.status_code == 429
        assert limited.json() == {"detail": "Rate limit exceeded. Too many requests."}
        assert 40 <= int(limited.headers["Retry-After"]) <= 41
        # the chat API is not limited, nor is a request without a key
        assert (await http.get("/api/v1/users")).status_code == 200
        await trio.sleep(int(limited.headers["Retry-After"]))
        again = await http.post("/api/v1/agents/a/memories/search", json=body,
                                headers={"X-API-Key": KEY})
        assert again.status_code == 200


async def test_search_caps_each_source_at_five() -> None:
    async with FakeAgentAPI(api_key=KEY) as fake, httpx.AsyncClient(base_url=fake.url) as http:
        for n in range(8):
            fake.seed_agent_memory(f"X부품 불량률 {n}%")
        found = await http.post("/api/v1/agents/a/memories/search", headers={"X-API-Key": KEY},
                                json={"query": "X부품 불량률", "limit": 50,
                                      "context_sources": {"include_agent": True}})
        assert found.json()["total"] == 5


async def test_delete_by_data_id_leaves_the_memory() -> None:
    """The real delete accepts an agent_data id but deletes only that row (not the memory)."""
    async with FakeAgentAPI(api_key=KEY) as fake, httpx.AsyncClient(base_url=fake.url) as http:
        h = {"X-API-Key": KEY}
        item = (await http.post("/api/v1/agents/a/data", headers=h,
                                json={"data_type": "memory", "content": "A라인 정지"})).json()
        gone = await http.delete(f"/api/v1/agents/a/memories/{item['id']}", headers=h)
        assert gone.status_code == 200
        assert [m.content for m in fake.world.memories.values()] == ["A라인 정지"]
        assert (await http.get("/api/v1/agents/a/data", headers=h)).json()["total"] == 0
