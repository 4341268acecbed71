"""HTTPS_PROXY / HTTP_PROXY / NO_PROXY: REST (httpx) and the WebSocket (our CONNECT tunnel)
go through a local CONNECT proxy; NO_PROXY bypasses it; a refusing proxy is named."""

from __future__ import annotations

import ssl

import pytest
import trio
import trustme

from mchat_actors.actors.connection import ConnectionStats, ResumeState, run_connection
from mchat_actors.config import Config
from mchat_actors.errors import MattermostUnavailable
from mchat_actors.mattermost.wsopen import parse_target, proxy_for
from mchat_actors.testing import FakeMattermost
from mchat_actors.tls import client_ssl_context
from tests.scenarios.connect_proxy import open_connect_proxy
from tests.scenarios.harness import FAST, replies_to, running_bot, wait_until

PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy",
              "http_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def clean_proxy_env(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx


def test_which_proxy_a_websocket_url_uses():
    wss, ws = parse_target("wss://mm.corp/api/v4/websocket"), parse_target("ws://mm:8065/x")
    env = {"HTTPS_PROXY": "http://p:3128", "http_proxy": "http://q:8080"}
    assert proxy_for(wss, env) == "http://p:3128" and proxy_for(ws, env) == "http://q:8080"
    assert proxy_for(wss, {"ALL_PROXY": "http://a:1"}) == "http://a:1"
    assert proxy_for(wss, {**env, "NO_PROXY": "corp"}) is None  # a domain suffix
    assert proxy_for(wss, {**env, "NO_PROXY": "other.example,mm.corp"}) is None
    assert proxy_for(wss, {**env, "NO_PROXY": "*"}) is None
    assert proxy_for(wss, {**env, "NO_PROXY": "example.com"}) == "http://p:3128"
    assert proxy_for(wss, {}) is None


async def test_rest_and_websocket_go_through_the_proxy(ca, tmp_path, clean_proxy_env):
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with open_connect_proxy() as proxy, FakeMattermost(ssl_context=tls_server(ca)) as mm:
        clean_proxy_env.setenv("HTTPS_PROXY", proxy.url)
        async with running_bot(mm, str(tmp_path / "bot.db"),
                               MCHAT_CA_BUNDLE=str(ca_file)) as rt:
            await wait_until(lambda: rt.reconnect_stats.state.mode == "websocket")
            post = await mm.post_as("kim", "town-square", "@ai 프록시 너머에서도 되나요?")
            await wait_until(lambda: replies_to(mm, post["id"]))
    authority = mm.url.removeprefix("https://")
    # at least two tunnels: the REST pool's and the WebSocket's (TLS verified end to end)
    assert proxy.connects.count(authority) >= 2, proxy.connects
    ws_peers = [r for r in mm.request_log if r.path == "/api/v4/websocket" and r.status == 101]
    assert ws_peers


async def test_no_proxy_bypasses_it(tmp_path, clean_proxy_env):
    async with open_connect_proxy() as proxy, FakeMattermost() as mm:
        clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
        clean_proxy_env.setenv("NO_PROXY", "127.0.0.1,localhost")
        async with running_bot(mm, str(tmp_path / "bot.db")) as rt:
            await wait_until(lambda: rt.reconnect_stats.state.mode == "websocket")
            post = await mm.post_as("kim", "town-square", "@ai 안녕")
            await wait_until(lambda: replies_to(mm, post["id"]))
    assert proxy.connects == [] and proxy.other_requests == []


async def test_plain_ws_tunnels_through_http_proxy(tmp_path, clean_proxy_env):
    async with open_connect_proxy() as proxy, FakeMattermost() as mm:
        cfg = Config.from_env({"MCHAT_URL": mm.url, "MCHAT_TOKEN": mm.bot_token,
                               "MCHAT_DB": str(tmp_path / "b.db"), **FAST}).mattermost
        clean_proxy_env.setenv("http_proxy", proxy.url)
        ready = trio.Event()

        async def on_ready(is_new: bool, release: object = None) -> None:
            ready.set()

        send, _recv = trio.open_memory_channel(8)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: run_connection(
                cfg, resume=ResumeState(), events=send, on_ready=on_ready,
                stats=ConnectionStats(), bot_user_id=mm.bot.id))
            with trio.fail_after(5):
                await ready.wait()
            nursery.cancel_scope.cancel()
        assert proxy.connects == [mm.url.removeprefix("http://")]

        proxy.refuse_status = 407
        with pytest.raises(MattermostUnavailable, match="proxy refused the CONNECT tunnel"):
            await run_connection(cfg, resume=ResumeState(), events=send, on_ready=on_ready,
                                 stats=ConnectionStats(), ssl_context=client_ssl_context(cfg))
