"""Peer ``serial``: the original system's design, kept small.

One asyncio loop; the WebSocket receive loop awaits each event's handler before it reads the
next frame; every HTTP request (the ChatService, the reply) opens its own client. When the
socket closes it reconnects after a second, without resuming and without a backfill.

    MCHAT_URL=... MCHAT_TOKEN=... CHAT_BACKEND_URL=... python -m bench.peers.serial
"""

from __future__ import annotations

import asyncio
import json
import logging
import os

import httpx
import websockets

logger = logging.getLogger("serial")


class SerialBot:
    def __init__(self) -> None:
        self.url = os.environ["MCHAT_URL"].rstrip("/")
        self.token = os.environ["MCHAT_TOKEN"]
        agent = os.environ["CHAT_BACKEND_URL"].rstrip("/")
        self.search_url = (f"{agent}/api/v1/agents/{os.environ['CHAT_BACKEND_AGENT_ID']}"
                           "/memories/search")
        self.agent_key = os.environ["CHAT_BACKEND_API_KEY"]
        self.me = ""

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def run(self) -> None:
        async with httpx.AsyncClient() as client:
            me = await client.get(f"{self.url}/api/v4/users/me", headers=self.headers())
            self.me = me.json()["id"]
        ws_url = self.url.replace("http", "ws", 1) + "/api/v4/websocket"
        while True:
            try:
                async with websockets.connect(ws_url, additional_headers=self.headers(),
                                              max_size=None) as ws:
                    async for frame in ws:
                        await self.on_event(json.loads(frame))
            except Exception as exc:  # the original's catch-all: log and reconnect  # noqa: BLE001
                logger.warning("websocket: %s; reconnecting", exc)
                await asyncio.sleep(1.0)

    async def on_event(self, event: dict) -> None:
        if event.get("event") != "posted":
            return
        post = json.loads(event["data"]["post"])
        if post["user_id"] == self.me or "@ai" not in post["message"].lower():
            return
        try:
            async with httpx.AsyncClient(timeout=120) as client:
                answer = await client.post(self.search_url, json={
                    "query": post["message"], "limit": 8, "external_user_id": post["user_id"]},
                    headers={"X-API-Key": self.agent_key})
                found = answer.json().get("results", [])
            text = "\n".join(r["content"] for r in found) or "관련된 기억이 없습니다."
            async with httpx.AsyncClient(timeout=30) as client:
                await client.post(f"{self.url}/api/v4/posts", headers=self.headers(), json={
                    "channel_id": post["channel_id"], "root_id": post["id"], "message": text})
        except Exception as exc:  # noqa: BLE001
            logger.warning("handler: %s", exc)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(SerialBot().run())
