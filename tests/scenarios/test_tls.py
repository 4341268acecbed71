"""TLS with a private CA (trustme): the fake over https/wss, the service verifying it.

Real sockets on 127.0.0.1: with MCHAT_CA_BUNDLE REST and the WebSocket connect and answer;
without it the start fails as a certificate problem (exit 5 for ``serve``); with
MCHAT_VERIFY_SSL=false it connects and warns at start, on /mchat/health and in the status API.
"""

from __future__ import annotations

import logging
import os
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio
import trustme

from mchat_actors.actors.connection import ConnectionStats, ResumeState, run_connection
from mchat_actors.config import Config
from mchat_actors.errors import MattermostCertificateError, MattermostUnavailable
from mchat_actors.http.context import HealthRules
from mchat_actors.http.health import assess
from mchat_actors.mattermost.rest import open_mattermost_client
from mchat_actors.ratelimit import TokenBucket
from mchat_actors.testing import FakeMattermost
from mchat_actors.tls import INSECURE_WARNING, certificate_problem, client_ssl_context
from tests.scenarios.harness import FAST, replies_to, running_bot, wait_until

SERVE = [sys.executable, "-m", "mchat_actors", "serve"]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "corp-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    cert = ca.issue_cert(*(names or ("127.0.0.1", "localhost")))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx


def mm_config(mm: FakeMattermost, tmp_path: Path, **env: str) -> Config:
    return Config.from_env({"MCHAT_URL": mm.url, "MCHAT_TOKEN": mm.bot_token,
                            "MCHAT_DB": str(tmp_path / "bot.db"), **FAST, **env})


async def test_fake_serves_https_and_the_rest_client_verifies_with_the_ca_bundle(ca, ca_file,
                                                                                 tmp_path):
    async with FakeMattermost(ssl_context=server_context(ca)) as mm:
        assert mm.url.startswith("https://127.0.0.1:")
        cfg = mm_config(mm, tmp_path, MCHAT_CA_BUNDLE=str(ca_file)).mattermost
        async with open_mattermost_client(cfg, bucket=TokenBucket(100)) as client:
            me = await client.get_me()
        assert me["id"] == mm.bot.id


async def test_without_the_ca_the_rest_error_says_certificate(ca, tmp_path):
    async with FakeMattermost(ssl_context=server_context(ca)) as mm:
        cfg = mm_config(mm, tmp_path).mattermost
        async with open_mattermost_client(cfg, bucket=TokenBucket(100)) as client:
            with pytest.raises(MattermostCertificateError) as info:
                await client.get_me()
    text = str(info.value)
    assert "certificate" in text.lower() and "MCHAT_CA_BUNDLE" in text
    assert mm.bot_token not in text
    assert isinstance(info.value, MattermostUnavailable)  # retried like an outage later on


async def test_a_certificate_for_another_name_is_a_certificate_problem(ca, ca_file, tmp_path):
    async with FakeMattermost(ssl_context=server_context(ca, "mchat.corp.example")) as mm:
        cfg = mm_config(mm, tmp_path, MCHAT_CA_BUNDLE=str(ca_file)).mattermost
        async with open_mattermost_client(cfg, bucket=TokenBucket(100)) as client:
            with pytest.raises(MattermostCertificateError, match="certificate"):
                await client.get_me()


async def test_websocket_over_wss_with_the_ca_and_refused_without(ca, ca_file, tmp_path):
    async with FakeMattermost(ssl_context=server_context(ca)) as mm:
        good = mm_config(mm, tmp_path, MCHAT_CA_BUNDLE=str(ca_file)).mattermost
        send, recv = trio.open_memory_channel(16)
        ready = trio.Event()

        async def on_ready(is_new: bool, release: object = None) -> None:
            ready.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: run_connection(
                good, resume=ResumeState(), events=send, on_ready=on_ready,
                stats=ConnectionStats(), bot_user_id=mm.bot.id,
                ssl_context=client_ssl_context(good)))
            with trio.fail_after(5):
                await ready.wait()
            await mm.post_as("kim", "town-square", "hello over wss")
            with trio.fail_after(5):
                event = await recv.receive()
            assert event.post.message == "hello over wss"
            nursery.cancel_scope.cancel()

        bad = mm_config(mm, tmp_path).mattermost
        with pytest.raises(MattermostCertificateError, match="websocket connect: TLS cert"):
            await run_connection(bad, resume=ResumeState(), events=send, on_ready=on_ready,
                                 stats=ConnectionStats(), ssl_context=client_ssl_context(bad))


async def test_service_answers_over_https_and_wss_with_a_private_ca(ca, ca_file, tmp_path):
    async with FakeMattermost(ssl_context=server_context(ca)) as mm:
        async with running_bot(mm, str(tmp_path / "bot.db"),
                               MCHAT_CA_BUNDLE=str(ca_file)) as rt:
            await wait_until(lambda: rt.reconnect_stats.state.mode == "websocket")
            post = await mm.post_as("kim", "town-square", "@ai 안녕")
            await wait_until(lambda: replies_to(mm, post["id"]))
            assert rt.reconnect_stats.connection.hellos >= 1
            assert rt.ssl_context is not None  # built once, shared by REST and WebSocket
            async with httpx.AsyncClient() as http:
                health = (await http.get(rt.http_url + "/mchat/health")).json()
            assert health["tls"] == {"verify": True, "warning": None}


async def test_verification_off_connects_and_warns_everywhere(ca, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    async with FakeMattermost(ssl_context=server_context(ca)) as mm:
        async with running_bot(mm, str(tmp_path / "bot.db"), MCHAT_VERIFY_SSL="false",
                               MCHAT_ADMIN_TOKEN="admin-secret-1") as rt:
            await wait_until(lambda: rt.reconnect_stats.state.mode == "websocket")
            post = await mm.post_as("kim", "town-square", "@ai 안녕")
            await wait_until(lambda: replies_to(mm, post["id"]))
            async with httpx.AsyncClient() as http:
                health = (await http.get(rt.http_url + "/mchat/health")).json()
                status = (await http.get(
                    rt.http_url + "/api/v1/mchat/status",
                    headers={"Authorization": "Bearer admin-secret-1"})).json()
    assert health["tls"] == {"verify": False, "warning": INSECURE_WARNING}
    assert INSECURE_WARNING in status["warnings"]
    assert any("NOT verified" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)


def test_certificate_problem_ignores_other_errors():
    assert certificate_problem(ConnectionRefusedError(111, "refused")) is None
    assert certificate_problem(None) is None


@pytest.mark.slow
@pytest.mark.serve
async def test_serve_without_the_ca_exits_5_with_a_certificate_message(ca, tmp_path):
    async with FakeMattermost(ssl_context=server_context(ca)) as mm:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MCHAT_", "LLM_", "CHAT_", "SSL_CERT"))}
        env.update(FAST)
        env.update({"MCHAT_URL": mm.url, "MCHAT_TOKEN": mm.bot_token,
                    "MCHAT_DB": str(tmp_path / "bot.db")})
        done = await trio.run_process(SERVE, env=env, capture_stdout=True,
                                      capture_stderr=True, check=False)
    err = done.stderr.decode()
    assert done.returncode == 5, err[-2000:]
    assert "certificate" in err and "MCHAT_CA_BUNDLE" in err
    assert "Traceback" not in err and mm.bot_token not in err + done.stdout.decode()


def test_fake_cli_serves_tls_from_cert_and_key_files(ca, ca_file, tmp_path):
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mchat_actors", "fake-mattermost", "--port", "0",
         "--tls-cert", str(cert_file), "--tls-key", str(key_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on https://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split("listening on ")[1].strip()
        trusted = ssl.create_default_context(cafile=str(ca_file))
        ping = httpx.get(url + "/api/v4/system/ping", verify=trusted, timeout=10)
        assert ping.status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(url + "/api/v4/system/ping", timeout=10)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_the_ssl_context_is_built_once_for_every_connect(ca, ca_file, tmp_path,
                                                               monkeypatch):
    import mchat_actors.actors.connection as connection_mod
    import mchat_actors.actors.reconnect as reconnect_mod
    import mchat_actors.app as app_mod

    built = []

    def counting(cfg):
        built.append(cfg.url)
        return client_ssl_context(cfg)

    for module in (app_mod, connection_mod, reconnect_mod):
        monkeypatch.setattr(module, "client_ssl_context", counting)
    async with FakeMattermost(ssl_context=server_context(ca)) as mm:
        async with running_bot(mm, str(tmp_path / "bot.db"),
                               MCHAT_CA_BUNDLE=str(ca_file)) as rt:
            for _ in range(3):  # three reconnects over wss
                await wait_until(lambda: rt.reconnect_stats.state.mode == "websocket")
                before = rt.reconnect_stats.attempts
                await mm.drop_websockets()
                await wait_until(lambda b=before: rt.reconnect_stats.attempts > b)
            await wait_until(lambda: rt.reconnect_stats.state.mode == "websocket")
            post = await mm.post_as("kim", "town-square", "@ai 연결 괜찮아?")
            await wait_until(lambda: replies_to(mm, post["id"]))
    assert rt.reconnect_stats.attempts >= 4
    assert built == [mm.url]


async def test_a_certificate_that_stops_being_trusted_is_named_by_health(ca, ca_file, tmp_path):
    """The server's certificate is replaced by one from another CA while running: reconnects
    fail as certificate problems, and /mchat/health says so (not just "connecting")."""
    async with FakeMattermost(ssl_context=server_context(ca)) as mm:
        async with running_bot(mm, str(tmp_path / "bot.db"), MCHAT_CA_BUNDLE=str(ca_file),
                               MCHAT_MODE="websocket") as rt:
            await wait_until(lambda: rt.reconnect_stats.state.mode == "websocket")
            mm.server.ssl_context = server_context(trustme.CA())  # an untrusted issuer
            await mm.drop_websockets()
            await wait_until(lambda: "TLS certificate not trusted"
                             in rt.reconnect_stats.last_error)
            await wait_until(lambda: rt.reconnect_stats.state.mode != "websocket")
            async with httpx.AsyncClient() as http:
                health = (await http.get(rt.http_url + "/mchat/health")).json()
    assert health["connection"]["certificate_problem"] is True
    # past the 60 s grace the same facts give this reason (assessed here without waiting)
    reasons = assess(health, HealthRules(connection_grace_s=0.0), 0.2)
    assert "the Mattermost server's TLS certificate is not trusted (MCHAT_CA_BUNDLE?)" in reasons
