"""``mchat-actors serve``: load the config, run the app until SIGINT/SIGTERM, exit cleanly."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Mapping

import trio

from . import app
from ._groups import collapse_groups
from .config import Config, describe
from .errors import (
    MattermostAuthError,
    MattermostCertificateError,
    MchatActorsError,
    SupervisionError,
)
from .logsetup import add_secrets, redact
from .secrecy import secret_values
from .supervision import FATAL

logger = logging.getLogger(__name__)


def dump_tasks() -> str:
    """Every trio task and where it waits (for SIGUSR1: what is the service stuck on?)."""
    lines: list[str] = []

    def walk(task: trio.lowlevel.Task, depth: int) -> None:
        where = []
        coro: object = task.coro
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                where.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        lines.append("  " * depth + f"{task.name} @ {' > '.join(where[-4:])}")
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child, depth + 1)

    root = trio.lowlevel.current_root_task()
    if root is not None:
        walk(root, 0)
    return "\n".join(lines)


async def _dump_on_sigusr1() -> None:
    with trio.open_signal_receiver(signal.SIGUSR1) as signals:
        async for _ in signals:
            logger.warning("serve: task dump\n%s", dump_tasks())


async def serve(config: Config) -> None:
    """Run the service; the first SIGINT/SIGTERM starts a clean shutdown (while the service is
    still starting, e.g. waiting for an unreachable server, it simply stops)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            runtime: list[app.Runtime] = []
            booting = trio.CancelScope()

            async def on_signal() -> None:
                async for signum in signals:
                    logger.info("serve: %s received, shutting down",
                                signal.Signals(signum).name)
                    if runtime:
                        runtime[0].request_shutdown()
                    else:
                        booting.cancel()
                    return

            async def run_app(task_status: trio.TaskStatus[app.Runtime]) -> None:
                await app.run(config, startup_quiet_s=1.0, task_status=task_status)
                nursery.cancel_scope.cancel()  # stopped: the signal watcher goes too

            nursery.start_soon(on_signal)
            nursery.start_soon(_dump_on_sigusr1)
            with booting:
                runtime.append(await nursery.start(run_app))
            if not runtime:
                nursery.cancel_scope.cancel()


def serve_main(*, config_path: str | None, environ: Mapping[str, str]) -> int:
    """Entry point of ``mchat-actors serve``; ConfigError is reported by the CLI (exit 2)."""
    config = Config.from_env(environ, toml_path=config_path)
    add_secrets(secret_values(config))  # from here on no log line can carry them
    logger.info("serve: configuration %s", describe(config))
    if config.mattermost.incoming_webhook_url and not config.mattermost.webhook_only:
        logger.warning("serve: MCHAT_INCOMING_WEBHOOK_URL is ignored because MCHAT_TOKEN is set: "
                       "replies go through the bot account's REST API")
    try:
        with collapse_groups(fatal=FATAL):
            trio.run(serve, config)
    except MattermostAuthError as exc:
        print(redact(f"mchat-actors: Mattermost rejected the bot token: {exc}"), file=sys.stderr)
        return 3
    except MattermostCertificateError as exc:
        print(redact(f"mchat-actors: cannot trust the Mattermost server's certificate: {exc}"),
              file=sys.stderr)
        return 5
    except SupervisionError as exc:
        print(redact(f"mchat-actors: stopped: {exc}"), file=sys.stderr)
        return 4
    except MchatActorsError as exc:
        print(redact(f"mchat-actors: stopped: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1
    return 0
