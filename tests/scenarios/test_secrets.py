"""Known secrets through a real ``serve`` process: connect, errors, retries, a crash (SIGKILL)
and a restart, in both log formats. Then every log line, the admin API, the admin page,
/metrics, /mchat/health and every error body are searched for the secrets: none is found.

The secrets come from files (``*_FILE``), as container secret mounts provide them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from mchat_actors.testing import FakeMattermost
from mchat_actors.testing.fake_openai import FakeOpenAI, Reply, Status
from tests.scenarios.harness import FAST, replies_to, wait_until
from tests.scenarios.test_processes import START_S

SERVE = [sys.executable, "-m", "mchat_actors", "serve"]
ADMIN = "adm-known-secret-4f1c9e77b2"
LLM_KEY = "sk-known-llm-key-9d2a61c0ef"
WEBHOOK = "wh-known-webhook-token-71be"
URL_PASSWORD = "pw-known-url-secret-5521"  # credentials inside LLM_BASE_URL
LISTEN = re.compile(r"http: listening on (http://127\.0\.0\.1:\d+)")


def write_secret(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return str(path)


async def start(env: dict[str, str], log: Path) -> trio.Process:
    out = open(log, "ab")  # noqa: SIM115 - the process owns it until it exits
    return await trio.lowlevel.open_process(SERVE, env=env, stdout=out, stderr=subprocess.STDOUT)


async def http_url(log: Path, after: int) -> str:
    found: list[str] = []

    def listening() -> bool:
        found[:] = LISTEN.findall(log.read_text(errors="replace")[after:])
        return bool(found)

    await wait_until(listening, timeout=START_S)
    return found[-1]


async def exercise_http(url: str, bodies: list[str]) -> None:
    """Every surface an operator or an attacker reaches, good and bad credentials alike."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        requests = [
            http.get("/mchat/health"), http.get("/metrics"), http.get("/admin"),
            http.get("/admin/admin.js"), http.get("/openapi.json"),
            http.get("/api/v1/mchat/status", headers=admin),
            http.get("/api/v1/mchat/mappings/channels", headers=admin),
            http.get("/api/v1/mchat/mappings/users", headers=admin),
            http.get("/api/v1/mchat/outbox", headers=admin),
            http.get("/api/v1/mchat/status", headers={"Authorization": "Bearer wrong-token"}),
            http.get("/api/v1/mchat/status"),
            http.post("/mchat/webhook/outgoing", json={"token": "not-the-token", "text": "x"}),
            http.post("/mchat/webhook/outgoing", content=b"{not json",
                      headers={"Content-Type": "application/json"}),
            http.post("/mchat/slash", data={"token": WEBHOOK, "command": "/memory"}),
            http.post("/mchat/slash", data={"token": "nope", "command": "/memory"}),
            http.get("/no/such/route"),
        ]
        for pending in requests:
            response = await pending
            bodies.append(f"{response.status_code} {dict(response.headers)} {response.text}")


@pytest.mark.slow
@pytest.mark.serve
@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_no_secret_leaves_the_process(tmp_path, log_format):
    log = tmp_path / "serve.log"
    bodies: list[str] = []
    async with FakeOpenAI(api_key=LLM_KEY) as llm, FakeMattermost() as mm:
        bot_token = mm.bot_token
        llm.script(Status(500), Status(500), Reply("두 번 실패 후 답변"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MCHAT_", "LLM_", "CHAT_"))}
        env.update(FAST)
        env.update({
            "MCHAT_URL": mm.url, "MCHAT_DB": str(tmp_path / "bot.db"),
            "MCHAT_TOKEN_FILE": write_secret(tmp_path, "token", bot_token),
            "MCHAT_ADMIN_TOKEN_FILE": write_secret(tmp_path, "admin", ADMIN),
            "MCHAT_WEBHOOK_TOKENS_FILE": write_secret(tmp_path, "hooks", WEBHOOK),
            "LLM_API_KEY_FILE": write_secret(tmp_path, "llm", LLM_KEY),
            "LLM_BASE_URL": llm.url.replace("://", f"://svc:{URL_PASSWORD}@"),
            "LLM_MODEL": "m", "LLM_TIMEOUT": "20",
            "MCHAT_LOG_LEVEL": "DEBUG", "MCHAT_LOG_FORMAT": log_format,
        })
        proc = await start(env, log)
        try:
            url = await http_url(log, 0)
            await wait_until(lambda: any(r.path == "/api/v4/websocket" and r.status == 101
                                         for r in mm.request_log), timeout=20)
            first = await mm.post_as("kim", "town-square", "@ai 오늘 X부품 불량률 알려줘")
            await wait_until(lambda: replies_to(mm, first["id"]), timeout=30)
            mm.fail_requests(1.0, status=503)  # REST errors and retries
            await mm.drop_websockets(abrupt=True)  # reconnect
            await trio.sleep(1.5)
            await exercise_http(url, bodies)
            proc.send_signal(signal.SIGKILL)  # a crash: no cleanup at all
            await proc.wait()
            mark = len(log.read_text(errors="replace"))
            proc = await start(env, log)
            url = await http_url(log, mark)
            second = await mm.post_as("kim", "town-square", "@ai 다시 시작했나요?")
            await wait_until(lambda: replies_to(mm, second["id"]), timeout=30)
            await exercise_http(url, bodies)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                with trio.fail_after(15):
                    await proc.wait()
    text = log.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) > 20, text[-2000:]
    if log_format == "json":
        for line in lines:
            record = json.loads(line)  # one object a line, every line
            assert {"timestamp", "level", "logger", "message"} <= record.keys()
        handled = [json.loads(line) for line in lines if '"action"' in line]
        assert any(r.get("mchat_channel_id") == mm.channel("town-square").id
                   and "latency_ms" in r for r in handled)
    everything = text + "\n".join(bodies)
    for name, value in (("bot token", bot_token), ("admin token", ADMIN),
                        ("LLM key", LLM_KEY), ("webhook token", WEBHOOK),
                        ("URL password", URL_PASSWORD)):
        assert value not in everything, f"the {name} leaked"
    assert "restart" in text.lower() or "new connection" in text.lower()
