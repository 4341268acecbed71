"""``mchat-actors fake-mattermost``: run the fake server until SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

import trio

from .fake import FakeMattermost

if TYPE_CHECKING:
    import argparse


def fake_main(args: argparse.Namespace) -> int:
    """Serve on ``--host``/``--port``; print the URL and every seeded user's token.

    With ``--tls-cert`` (and ``--tls-key`` unless the key is in the same PEM file) it serves
    https and wss. Returns 0 after SIGINT/SIGTERM, 1 when the port cannot be bound, the seed is
    unusable or the certificate/key cannot be loaded.
    """
    try:
        trio.run(_run, args)
    except (OSError, ValueError, KeyError) as exc:
        print(f"mchat-actors fake-mattermost: {exc}", file=sys.stderr)
        return 1
    return 0


async def _run(args: argparse.Namespace) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        tls = None
        if getattr(args, "tls_cert", None):
            tls = FakeMattermost.server_ssl_context(args.tls_cert, args.tls_key)
        async with FakeMattermost(
            host=args.host, port=args.port, rate_limit_per_s=args.rate_limit,
            rate_burst=args.rate_burst, seed=args.seed, bot_token=args.bot_token,
            ssl_context=tls,
        ) as mm:
            print(f"fake Mattermost listening on {mm.url}", flush=True)
            print(f"  bot      {mm.bot.username:<10} token {mm.bot_token}", flush=True)
            for user in mm.state.users.values():
                if user.id != mm.bot.id:
                    role = " (system admin)" if user.is_admin else ""
                    print(f"  user     {user.username:<10} token {user.token}{role}", flush=True)
            print(f"  team     {mm.team.name} ({mm.team.display_name}); control API under "
                  f"{mm.url}/_fake/  (GET /_fake/seed for everything)", flush=True)
            async for _signum in signals:
                break
