"""Helpers for talking to the fake server in tests: auth headers and WebSocket frames."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from trio_websocket import WebSocketConnection, open_websocket_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mchat_actors.testing import FakeMattermost


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ws_url(mm: FakeMattermost, query: str = "") -> str:
    return mm.url.replace("http://", "ws://", 1) + "/api/v4/websocket" + query


@asynccontextmanager
async def connect(mm: FakeMattermost, token: str | None = None, query: str = ""
                  ) -> AsyncIterator[WebSocketConnection]:
    """A WebSocket to the fake, header-authenticated when ``token`` is given."""
    headers = [("Authorization", f"Bearer {token}")] if token else []
    async with open_websocket_url(ws_url(mm, query), extra_headers=headers,
                                  disconnect_timeout=2) as ws:
        yield ws


async def recv(ws: WebSocketConnection) -> dict[str, Any]:
    return json.loads(await ws.get_message())


async def send(ws: WebSocketConnection, seq: int, action: str, data: object = None) -> None:
    frame: dict[str, object] = {"seq": seq, "action": action}
    if data is not None:
        frame["data"] = data
    await ws.send_message(json.dumps(frame))


async def next_event(ws: WebSocketConnection, name: str) -> dict[str, Any]:
    """Skip frames until an event called ``name``."""
    while True:
        frame = await recv(ws)
        if frame.get("event") == name:
            return frame


async def hello(ws: WebSocketConnection) -> dict[str, Any]:
    frame = await recv(ws)
    assert frame["event"] == "hello", frame
    return frame


async def ping_barrier(ws: WebSocketConnection, seq: int) -> list[dict[str, Any]]:
    """Send a ``ping`` action and return every frame received before its reply.

    Frames are written in order, so this proves what did (not) arrive before the barrier.
    """
    await send(ws, seq, "ping")
    before: list[dict[str, Any]] = []
    while True:
        frame = await recv(ws)
        if frame.get("seq_reply") == seq:
            return before
        before.append(frame)
