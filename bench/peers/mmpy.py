"""Peer ``mmpy``: a bot on ``mmpy_bot`` (2.x), a plugin with ``@listen_to`` as its docs show.

Runs from its own virtualenv (``.venv-mmpy``, made by ``make bench``): mmpy_bot pins
``httpx<0.28``, older than the service's own. Self-contained (stdlib + mmpy_bot + httpx).

    MCHAT_URL=... MCHAT_TOKEN=... CHAT_BACKEND_URL=... .venv-mmpy/bin/python bench/peers/mmpy.py
"""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import urlsplit

import httpx
from mmpy_bot import Bot, Message, Plugin, Settings, listen_to

AGENT = os.environ["CHAT_BACKEND_URL"].rstrip("/")
SEARCH_URL = f"{AGENT}/api/v1/agents/{os.environ['CHAT_BACKEND_AGENT_ID']}/memories/search"


class Answer(Plugin):
    @listen_to("@ai", re.IGNORECASE)
    async def answer(self, message: Message) -> None:
        async with httpx.AsyncClient(timeout=120) as client:
            found = (await client.post(SEARCH_URL, json={
                "query": message.text, "limit": 8, "external_user_id": message.user_id},
                headers={"X-API-Key": os.environ["CHAT_BACKEND_API_KEY"]})).json()
        text = "\n".join(r["content"] for r in found.get("results", []))
        text = text or "관련된 기억이 없습니다."
        self.driver.reply_to(message, text)


def main() -> None:
    parts = urlsplit(os.environ["MCHAT_URL"])
    bot = Bot(
        settings=Settings(
            MATTERMOST_URL=f"{parts.scheme}://{parts.hostname}",
            MATTERMOST_PORT=parts.port,
            MATTERMOST_API_PATH="/api/v4",
            BOT_TOKEN=os.environ["MCHAT_TOKEN"],
            BOT_TEAM="bench",
            SSL_VERIFY=False,
            LOG_LEVEL=logging.WARNING,
        ),
        plugins=[Answer()],
    )
    bot.run()


if __name__ == "__main__":
    main()
