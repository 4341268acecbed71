"""``raw``: the decode limit, not a bot. Reads the WebSocket and decodes every frame and post.

The ingest scenario's yardstick: trio-websocket (the service's own client library, 64 KiB
reads) plus orjson for the frame and the post inside it, nothing stored. It answers ``@ai``
probes with an immediate reply (no ChatService) so the same probes time it as the bots.

    MCHAT_URL=... MCHAT_TOKEN=... python -m bench.peers.raw
"""

from __future__ import annotations

import os

import httpx
import orjson
import trio
import trio_websocket


async def main() -> None:
    url = os.environ["MCHAT_URL"].rstrip("/")
    headers = {"Authorization": f"Bearer {os.environ['MCHAT_TOKEN']}"}
    async with httpx.AsyncClient(base_url=url + "/api/v4", headers=headers) as rest:
        me = (await rest.get("/users/me")).json()["id"]
        send, receive = trio.open_memory_channel[dict[str, object]](10_000)

        async def replier() -> None:
            async for post in receive:
                body = {"channel_id": post["channel_id"], "root_id": post["id"],
                        "message": "pong"}
                # the server's limiter said 429: wait a little and send it again
                while (await rest.post("/posts", json=body)).status_code == 429:  # noqa: ASYNC110
                    await trio.sleep(0.1)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(replier)
            while True:
                try:
                    async with trio_websocket.open_websocket_url(
                            url.replace("http", "ws", 1) + "/api/v4/websocket",
                            extra_headers=list(headers.items()), max_message_size=1 << 24,
                            receive_buffer_size=65536) as ws:
                        while True:
                            event = orjson.loads(await ws.get_message())
                            if event.get("event") != "posted":
                                continue
                            post = orjson.loads(event["data"]["post"])
                            if post["user_id"] != me and "@ai" in post["message"].lower():
                                send.send_nowait(post)
                except (trio_websocket.HandshakeError, trio_websocket.ConnectionClosed,
                        OSError):
                    await trio.sleep(0.2)


if __name__ == "__main__":
    trio.run(main)
