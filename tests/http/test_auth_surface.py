"""The integration surface under attack: throttled failed auths, separate slash and outgoing
webhook tokens (the shared list is a deprecated fallback), /metrics behind the admin token or
on its own listener."""

from __future__ import annotations

import socket
from urllib.parse import urlencode

import httpx
import trio

from mchat_actors.config import Config
from mchat_actors.http.server import serve_http
from tests.http.conftest import ADMIN_TOKEN, WEBHOOK_TOKEN, make_config, open_harness

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
API = "/api/v1/mchat"


def slash(token: str, user: str = "u1") -> str:
    return urlencode({"token": token, "team_id": "t", "channel_id": "c1", "channel_name": "c1",
                      "user_id": user, "user_name": "kim", "command": "/search",
                      "text": "wifi", "trigger_id": "x"})


def hook(token: str) -> dict:
    return {"token": token, "post_id": "p1", "channel_id": "c1", "user_id": "u1",
            "text": "@ai ping", "timestamp": 1_700_000_000_000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_failed_admin_auths_are_counted_then_throttled_even_for_the_right_token(harness):
    s = harness.app.state.surface
    for _ in range(s.auth_throttle.max_failures):
        r = await harness.client.get(API + "/status", headers={"Authorization": "Bearer guess"})
        assert r.status_code == 401
    r = await harness.client.get(API + "/status", headers=harness.admin())
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert ADMIN_TOKEN not in r.text
    assert s.auth_throttle.failures["admin"] == 20 and s.auth_throttle.throttled["admin"] == 1
    metrics = (await harness.client.get("/metrics")).text
    assert 'mchat_auth_failures_total{kind="admin"} 20.0' in metrics
    assert 'mchat_auth_throttled_total{kind="admin"} 1.0' in metrics


async def test_the_throttle_window_expires_and_a_success_clears_it(harness, mock_clock):
    """Virtual time stands still until jumped: the 20 failures are inside one window."""
    s = harness.app.state.surface
    for _ in range(s.auth_throttle.max_failures):
        await harness.client.post("/mchat/webhook/outgoing", json=hook("guess"))
    assert (await harness.client.post("/mchat/webhook/outgoing",
                                      json=hook(WEBHOOK_TOKEN))).status_code == 429
    mock_clock.jump(61)
    r = await harness.client.get(API + "/status", headers=harness.admin())
    assert r.status_code == 200
    assert s.auth_throttle.blocked_addresses() == 0
    status = r.json()["safety"]["auth"]
    assert status["failures"] == {"outgoing": 20} and status["throttled"] == {"outgoing": 1}


async def test_slash_and_outgoing_tokens_are_separate(tmp_path):
    config = make_config(tmp_path, webhook_tokens=(), slash_tokens=("slash-only-1",),
                         outgoing_webhook_tokens=("hook-only-1",))
    async with open_harness(config) as h:
        # an outgoing-webhook token cannot run /search as whatever user it claims
        r = await h.client.post("/mchat/slash", content=slash("hook-only-1", user="u-boss"),
                                headers=FORM)
        assert r.status_code == 401
        r = await h.client.post("/mchat/webhook/outgoing", json=hook("slash-only-1"))
        assert r.status_code == 401
        r = await h.client.post("/mchat/slash", content=slash("slash-only-1"), headers=FORM)
        assert r.status_code == 200
        r = await h.client.post("/mchat/webhook/outgoing", json=hook("hook-only-1"))
        assert r.status_code == 200


async def test_the_shared_list_still_works_as_a_fallback(tmp_path):
    config = make_config(tmp_path, slash_tokens=("slash-only-1",))
    async with open_harness(config) as h:  # webhook_tokens=(WEBHOOK_TOKEN,) by default
        r = await h.client.post("/mchat/webhook/outgoing", json=hook(WEBHOOK_TOKEN))
        assert r.status_code == 200  # no specific outgoing tokens: the shared list
        r = await h.client.post("/mchat/slash", content=slash(WEBHOOK_TOKEN), headers=FORM)
        assert r.status_code == 401  # slash has its own list now


def test_config_reads_the_new_settings():
    cfg = Config.from_env({"MCHAT_URL": "http://x", "MCHAT_TOKEN": "t",
                           "MCHAT_SLASH_TOKENS": "s1,s2", "MCHAT_OUTGOING_WEBHOOK_TOKENS": "o1",
                           "MCHAT_WEBHOOK_TOKENS": "w1", "MCHAT_ADMIN_TOKEN": "a",
                           "MCHAT_METRICS_AUTH": "admin",
                           "MCHAT_METRICS_LISTEN": "127.0.0.1:9100"})
    assert cfg.http.tokens_for("slash") == ("s1", "s2")
    assert cfg.http.tokens_for("outgoing") == ("o1",)
    assert cfg.http.metrics_auth == "admin" and cfg.http.metrics_listen == "127.0.0.1:9100"


async def test_metrics_behind_the_admin_token(tmp_path):
    async with open_harness(make_config(tmp_path, metrics_auth="admin")) as h:
        assert (await h.client.get("/metrics")).status_code == 401
        r = await h.client.get("/metrics", headers=h.admin())
        assert r.status_code == 200 and "mchat_uptime_seconds" in r.text
        assert (await h.client.get("/mchat/health")).status_code == 200  # health stays open


async def test_metrics_on_their_own_listener(tmp_path):
    port = free_port()
    config = make_config(tmp_path, listen="127.0.0.1:0", metrics_listen=f"127.0.0.1:{port}")
    async with open_harness(config) as h, trio.open_nursery() as nursery:
        url = await nursery.start(serve_http, h.rt)
        async with httpx.AsyncClient() as client:
            assert (await client.get(url + "/metrics")).status_code == 404
            r = await client.get(f"http://127.0.0.1:{port}/metrics")
            assert r.status_code == 200 and "mchat_uptime_seconds" in r.text
            assert (await client.get(f"http://127.0.0.1:{port}/mchat/health")).status_code == 404
            assert (await client.get(url + "/mchat/health")).status_code == 200
        nursery.cancel_scope.cancel()
