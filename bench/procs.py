"""The processes of a bench run: the fake Mattermost, the fixed-delay ChatService, the bot.

Each runs in its own OS process, started with ``subprocess.Popen`` and stopped by this module
(SIGTERM, then SIGKILL after a grace period). Output goes to log files in the run's work folder
so a failed run can be read afterwards.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import attrs
import httpx
import trio

ROOT = Path(__file__).resolve().parent.parent
MMPY_PYTHON = ROOT / ".venv-mmpy" / "bin" / "python"
AGENT_KEY = "bench-agent-key"
AGENT_ID = "bench-agent"
PR_SET_PDEATHSIG = 1


class BenchError(RuntimeError):
    """A process of the bench did not start or behave as expected."""


@attrs.define
class Proc:
    """One started process and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str]
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def rss_kib(self) -> int:
        """Resident set size in KiB (VmRSS), 0 when the process is gone."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return 0
        return 0

    def kill(self) -> None:
        """SIGKILL (the storm's crash)."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    async def stop(self, grace_s: float = 8.0) -> int | None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL; the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            with trio.move_on_after(grace_s):
                while self.alive():  # noqa: ASYNC110 - a child process has no event
                    await trio.sleep(0.05)
            if self.alive():
                self.popen.send_signal(signal.SIGKILL)
        return self.popen.wait()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the bench process dies (Linux prctl)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _spawn(name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None,
           python: str | None = None) -> Proc:
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("MCHAT_", "CHAT_", "LLM_"))}
    full_env.update(env or {})
    full_env["PYTHONUNBUFFERED"] = "1"
    full_env["PYTHONPATH"] = str(ROOT)
    log_path = workdir / f"{name}.log"
    log = log_path.open("ab")
    cmd = [python or sys.executable, *argv]
    popen = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                             cwd=workdir, start_new_session=True, preexec_fn=_die_with_parent)
    log.close()
    return Proc(name=name, popen=popen, log_path=log_path, argv=cmd, env=dict(env or {}))


async def _wait_for_line(proc: Proc, pattern: str, timeout_s: float = 20.0) -> re.Match[str]:
    with trio.move_on_after(timeout_s):
        while True:
            text = proc.log_path.read_text(errors="replace")
            found = re.search(pattern, text)
            if found:
                return found
            if not proc.alive():
                break
            await trio.sleep(0.05)
    proc.kill()
    raise BenchError(f"{proc.name} did not print {pattern!r}:\n{proc.tail()}")


# -- the fake Mattermost -------------------------------------------------------------------------

@attrs.define
class Fake:
    proc: Proc
    url: str
    bot_id: str
    bot_token: str
    users: dict[str, str]  # username -> token
    user_ids: dict[str, str]  # username -> id
    channels: dict[str, str]  # name -> id
    client: httpx.AsyncClient = attrs.field(default=None)

    async def control(self, name: str, body: dict[str, object] | None = None) -> object:
        response = await self.client.post(f"/_fake/{name}", json=body or {})
        response.raise_for_status()
        return response.json()

    async def posts(self, channel: str | None = None) -> list[dict[str, object]]:
        params = {"channel": channel} if channel else {}
        response = await self.client.get("/_fake/posts", params=params, timeout=120)
        response.raise_for_status()
        return list(response.json())

    async def requests(self) -> list[dict[str, object]]:
        response = await self.client.get("/_fake/requests", timeout=120)
        response.raise_for_status()
        return list(response.json())


def make_seed(n_channels: int, n_users: int, *, bot_token: str) -> dict[str, object]:
    """Team ``bench``, users ``u0..`` with fixed tokens, public channels ``c0..``.

    Every user and the bot belong to every channel (a load user may post anywhere); the user
    ``watch`` is a member too and only listens (the load generator's WebSocket).
    """
    users = [{"username": f"u{i}", "email": f"u{i}@example.com", "token": f"tok-u{i:04d}",
              "first_name": "사용자", "last_name": str(i)} for i in range(n_users)]
    users.append({"username": "watch", "email": "watch@example.com", "token": "tok-watch"})
    channels = [{"name": f"c{i}", "display_name": f"부하 채널 {i}", "type": "O", "members": "*"}
                for i in range(n_channels)]
    return {"team": {"name": "bench", "display_name": "Bench"},
            "bot": {"username": "mchat-bot", "email": "mchat-bot@example.com", "token": bot_token},
            "users": users, "channels": channels}


async def start_fake(workdir: Path, *, n_channels: int, n_users: int, rate_per_s: float = 10.0,
                     burst: int = 10) -> Fake:
    """A fresh fake Mattermost in its own process, seeded, its rate limiter on."""
    bot_token = "bench-bot-token-0001"
    seed_path = workdir / f"seed-{n_channels}.json"
    seed_path.write_text(json.dumps(make_seed(n_channels, n_users, bot_token=bot_token)))
    proc = _spawn("fake", ["-m", "mchat_actors", "--log-level", "WARNING", "fake-mattermost",
                           "--port", "0", "--seed", str(seed_path), "--bot-token", bot_token,
                           "--rate-limit", str(rate_per_s), "--rate-burst", str(burst)], workdir)
    found = await _wait_for_line(proc, r"listening on (http://\S+)", timeout_s=60)
    url = found.group(1)
    client = httpx.AsyncClient(base_url=url, timeout=30,
                               limits=httpx.Limits(max_connections=4))
    seed = (await client.get("/_fake/seed")).json()
    return Fake(proc=proc, url=url, bot_id=seed["bot"]["id"], bot_token=bot_token,
                users={u["username"]: u["token"] for u in seed["users"]},
                user_ids={u["username"]: u["id"] for u in seed["users"]},
                channels={c["name"]: c["id"] for c in seed["channels"] if c.get("name")},
                client=client)


async def stop_fake(fake: Fake) -> None:
    await fake.client.aclose()
    fake.proc.kill()


# -- the fixed-delay ChatService -----------------------------------------------------------------

async def start_agent(workdir: Path, delay_s: float) -> tuple[Proc, str]:
    proc = _spawn("agent", ["-m", "bench.delay_agent", "--delay", str(delay_s)], workdir)
    found = await _wait_for_line(proc, r"listening on (http://\S+)")
    return proc, found.group(1)


# -- the bot under test --------------------------------------------------------------------------

SYSTEMS = ("mchat-actors", "serial", "driver", "mmpy")


def bot_env(fake: Fake, agent_url: str, db: Path, extra: dict[str, str] | None = None
            ) -> dict[str, str]:
    return {
        "MCHAT_URL": fake.url, "MCHAT_TOKEN": fake.bot_token, "MCHAT_DB": str(db),
        "MCHAT_HTTP_LISTEN": "127.0.0.1:0", "MCHAT_LOG_LEVEL": "WARNING",
        "MCHAT_RATE_LIMIT": "10",
        "CHAT_BACKEND": "remote", "CHAT_BACKEND_URL": agent_url,
        "CHAT_BACKEND_API_KEY": AGENT_KEY, "CHAT_BACKEND_AGENT_ID": AGENT_ID,
        "CHAT_BACKEND_RATE_PER_MIN": "10000000", "CHAT_TIMEOUT": "90",
        # the users ask far more than the loop guard's 30 answers a minute per channel
        "MCHAT_MAX_ANSWERS_PER_MIN": "100000",
        **(extra or {}),
    }


def available(system: str) -> str | None:
    """Why ``system`` cannot run here, or None."""
    if system == "mmpy" and not MMPY_PYTHON.exists():
        return f"mmpy_bot is not installed ({MMPY_PYTHON} missing: run `make bench`)"
    if system == "driver":
        try:
            import mattermostdriver  # noqa: F401
        except ImportError:
            return "mattermostdriver is not installed (pip install -e '.[bench]')"
    return None


def start_bot(system: str, workdir: Path, env: dict[str, str], *, tag: str = "") -> Proc:
    name = f"bot-{system}{tag}"
    if system == "mchat-actors":
        return _spawn(name, ["-m", "mchat_actors", "--log-level", "WARNING", "serve"], workdir,
                      env)
    if system == "mmpy":
        return _spawn(name, [str(ROOT / "bench" / "peers" / "mmpy.py")], workdir, env,
                      python=str(MMPY_PYTHON))
    if system in ("serial", "driver", "raw"):
        return _spawn(name, ["-m", f"bench.peers.{system}"], workdir, env)
    raise BenchError(f"unknown system {system!r}")


def now() -> float:
    return time.time()
