"""Peer ``driver``: a bot on the ``mattermostdriver`` package, written as its README shows.

``Driver(...).login()``, then ``init_websocket(handler)`` runs the driver's own asyncio loop
and calls the async handler for every event; the handler uses the driver's (blocking, requests
based) REST API for the reply and a requests session for the ChatService, as the design
document's example does. The driver reconnects by itself (``keepalive``), without resuming.

    MCHAT_URL=... MCHAT_TOKEN=... CHAT_BACKEND_URL=... python -m bench.peers.driver
"""

from __future__ import annotations

import json
import logging
import os
from urllib.parse import urlsplit

import requests
from mattermostdriver import Driver

logger = logging.getLogger("driver")


def main() -> None:
    parts = urlsplit(os.environ["MCHAT_URL"])
    driver = Driver({
        "url": parts.hostname, "port": parts.port, "scheme": parts.scheme,
        "token": os.environ["MCHAT_TOKEN"], "basepath": "/api/v4", "verify": False,
        "keepalive": True, "keepalive_delay": 1, "timeout": 30,
    })
    driver.login()
    me = driver.users.get_user("me")["id"]
    agent = os.environ["CHAT_BACKEND_URL"].rstrip("/")
    search_url = f"{agent}/api/v1/agents/{os.environ['CHAT_BACKEND_AGENT_ID']}/memories/search"
    session = requests.Session()
    session.headers["X-API-Key"] = os.environ["CHAT_BACKEND_API_KEY"]

    async def handler(message: str) -> None:
        event = json.loads(message)
        if event.get("event") != "posted":
            return
        post = json.loads(event["data"]["post"])
        if post["user_id"] == me or "@ai" not in post["message"].lower():
            return
        try:
            found = session.post(search_url, json={
                "query": post["message"], "limit": 8, "external_user_id": post["user_id"]},
                timeout=120).json().get("results", [])
            text = "\n".join(r["content"] for r in found) or "관련된 기억이 없습니다."
            driver.posts.create_post({"channel_id": post["channel_id"], "root_id": post["id"],
                                      "message": text})
        except Exception as exc:  # noqa: BLE001
            logger.warning("handler: %s", exc)

    driver.init_websocket(handler)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
