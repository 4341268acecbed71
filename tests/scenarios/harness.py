"""Run the whole service (``app.run``) against the fake Mattermost, with fast timings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

from mchat_actors import app
from mchat_actors.app import Runtime
from mchat_actors.config import Config
from mchat_actors.testing import FakeMattermost

FAST = {
    "MCHAT_BACKOFF_INITIAL": "0.05",
    "MCHAT_BACKOFF_MAX": "0.4",
    "MCHAT_POLL_INTERVAL": "0.2",
    "MCHAT_WS_PING_INTERVAL": "1",
    "MCHAT_HELLO_TIMEOUT": "2",
    "MCHAT_REST_TIMEOUT": "3",
    "MCHAT_RATE_LIMIT": "200",
    "MCHAT_HTTP_LISTEN": "127.0.0.1:0",
}


def bot_config(mm: FakeMattermost, db_path: str, **env: str) -> Config:
    values = {"MCHAT_URL": mm.url, "MCHAT_TOKEN": mm.bot_token, "MCHAT_DB": db_path, **FAST,
              **env}
    return Config.from_env(values)


@asynccontextmanager
async def running_bot(mm: FakeMattermost, db_path: str, *, chat: Any = None,
                      **env: str) -> AsyncIterator[Runtime]:
    config = bot_config(mm, db_path, **env)
    async with trio.open_nursery() as nursery:
        rt: Runtime = await nursery.start(partial(app.run, config, chat=chat))
        try:
            yield rt
        finally:
            rt.request_shutdown()


def bot_posts(mm: FakeMattermost, channel: str | None = None) -> list[Mapping[str, Any]]:
    return [p for p in mm.posts(channel, include_deleted=False) if p["user_id"] == mm.bot.id]


def replies_to(mm: FakeMattermost, post_id: str) -> list[Mapping[str, Any]]:
    return [p for p in mm.posts() if p["user_id"] == mm.bot.id
            and (p.get("props") or {}).get("mchat_reply_key") == f"{post_id}:reply"]


async def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)
