"""Command line: ``mchat-actors serve | fake-mattermost | demo``.

Each sub-command imports its implementation lazily so ``--help`` stays fast and a broken optional
part cannot stop the others.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mchat-actors", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("MCHAT_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the bot (settings from the environment)")
    serve.add_argument("--config", help="TOML file with the same keys as the environment")

    fake = sub.add_parser("fake-mattermost", help="run the fake Mattermost server")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8065)
    fake.add_argument("--bot-token", help="the bot's access token (printed when generated)")
    fake.add_argument("--seed", help="JSON file describing teams, users and channels")
    fake.add_argument("--rate-limit", type=float, default=0.0,
                      help="requests per second per token (0: off, like the real default)")
    fake.add_argument("--rate-burst", type=int, default=100)
    fake.add_argument("--tls-cert", help="PEM certificate (chain): serve https/wss")
    fake.add_argument("--tls-key", help="PEM private key of --tls-cert (if not in that file)")

    demo = sub.add_parser("demo", help="fake server + bot + a web chat page, all on 127.0.0.1")
    demo.add_argument("--port", type=int, default=8065, help="fake Mattermost port")
    demo.add_argument("--http-port", type=int, default=8800, help="the bot's HTTP port")
    demo.add_argument("--db", default=None, help="database file (default: a temporary one)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .logsetup import FORMATS, configure

    log_format = os.environ.get("MCHAT_LOG_FORMAT", "text").strip().lower()
    configure(args.log_level, log_format if log_format in FORMATS else "text")
    try:
        if args.command == "serve":
            from .serve import serve_main

            return serve_main(config_path=args.config, environ=os.environ)
        if args.command == "fake-mattermost":
            from .testing.cli import fake_main

            return fake_main(args)
        if args.command == "demo":
            from .demo import demo_main

            return demo_main(args)
    except ConfigError as exc:
        from .logsetup import redact

        for problem in exc.problems:
            print(redact(f"mchat-actors: configuration error: {problem}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    raise AssertionError(args.command)  # pragma: no cover
