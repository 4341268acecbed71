"""``mchat-actors demo``: the fake Mattermost, the bot and a web chat page, on 127.0.0.1.

Starts the fake server (seeded team, users, channels) with its web chat page, runs the bot
against it with the embedded ChatService, plays a short scripted conversation (a ``/remember``
and an ``@ai`` question, answered from that memory), prints the URLs and the admin token, and
runs until Ctrl-C. Everything stays on loopback; the database is a temporary file unless
``--db`` is given.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import sys
import tempfile
from functools import partial
from pathlib import Path

import trio

from . import app
from ._groups import collapse_groups
from .config import Config
from .testing import FakeMattermost, webchat

logger = logging.getLogger(__name__)

SCRIPT = (
    ("kim", "quality", "/remember X부품 불량률 12%"),
    ("lee", "quality", "@ai 오늘 X부품 불량률 몇 %야?"),
)


def demo_config(mm: FakeMattermost, *, db: str, http_port: int, admin_token: str) -> Config:
    return Config.from_env({
        "MCHAT_URL": mm.url,
        "MCHAT_TOKEN": mm.bot_token,
        "MCHAT_DB": db,
        "MCHAT_HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "MCHAT_ADMIN_TOKEN": admin_token,
    })


async def play_script(mm: FakeMattermost, out: list[str]) -> None:
    """Post the scripted conversation and wait (up to 20 s) for the bot's answer."""
    last = None
    for user, channel, text in SCRIPT:
        last = await mm.post_as(user, channel, text)
        out.append(f"  @{user} in ~{channel}: {text}")
        await trio.sleep(0.5)
    assert last is not None
    with trio.move_on_after(20):
        while True:
            replies = [p for p in mm.posts("quality") if p["user_id"] == mm.bot.id
                       and p.get("root_id") == last["id"]]
            if replies:
                out.append(f"  @{mm.bot.username}: {replies[0]['message']}")
                return
            await trio.sleep(0.1)


async def run_demo(args: argparse.Namespace, *, task_status: trio.TaskStatus[dict[str, str]]
                   = trio.TASK_STATUS_IGNORED) -> None:
    admin_token = secrets.token_urlsafe(18)
    with tempfile.TemporaryDirectory(prefix="mchat-demo-") as tmp:
        db = args.db or str(Path(tmp) / "demo.db")
        async with FakeMattermost(port=args.port) as mm:
            webchat.register(mm)
            config = demo_config(mm, db=db, http_port=args.http_port, admin_token=admin_token)
            async with trio.open_nursery() as nursery:
                rt = await nursery.start(partial(app.run, config, chat=None))
                http_url = rt.http_url or f"http://{config.http.listen}"
                urls = {
                    "chat": f"{mm.url}/webchat?admin={http_url}/admin",
                    "admin": f"{http_url}/admin",
                    "admin_token": admin_token,
                    "health": f"{http_url}/mchat/health",
                    "metrics": f"{http_url}/metrics",
                    "mattermost": mm.url,
                    "bot_token": mm.bot_token,
                }
                lines: list[str] = []
                with trio.move_on_after(30):
                    while rt.reconnect_stats.state.mode != "websocket":  # noqa: ASYNC110
                        await trio.sleep(0.05)  # a plain state field, no event to wait on
                await play_script(mm, lines)
                print("\nmchat-actors demo is running (Ctrl-C to stop)\n", flush=True)
                print(f"  web chat      {urls['chat']}")
                print(f"  admin page    {urls['admin']}   (admin token: {admin_token})")
                print(f"  health        {urls['health']}")
                print(f"  metrics       {urls['metrics']}")
                print(f"  fake server   {mm.url}   (bot token: {mm.bot_token})")
                print("\nscripted conversation:")
                print("\n".join(lines), flush=True)
                task_status.started(urls)
                await _wait_for_signal()
                rt.request_shutdown()


async def _wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


def demo_main(args: argparse.Namespace) -> int:
    """Entry point of ``mchat-actors demo``."""
    for noisy in ("httpx", "hypercorn.access", "mchat_actors.testing"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        with collapse_groups():
            trio.run(run_demo, args)
    except OSError as exc:
        print(f"mchat-actors demo: cannot listen: {exc} (use --port / --http-port)",
              file=sys.stderr)
        return 1
    return 0
