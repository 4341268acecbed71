from __future__ import annotations

import socket
from functools import partial

import httpx
import pytest
import trio

from mchat_actors.app import run
from mchat_actors.config import Config
from mchat_actors.http.server import serve_http
from mchat_actors.testing import FakeMattermost
from tests.fakes import FakeChat
from tests.http.conftest import (
    ADMIN_TOKEN,
    SECRETS,
    WEBHOOK_TOKEN,
    make_config,
    open_harness,
    poll_until,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serve_http_listens_reports_its_url_and_stops_when_cancelled(tmp_path):
    """Port 0 is reported as the real URL; cancelling closes the socket."""
    async with open_harness(make_config(tmp_path, listen="127.0.0.1:0")) as h:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serve_http, h.rt)
            assert url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient(base_url=url) as client:
                r = await client.get("/mchat/health")
                assert r.status_code == 200
                assert "server" not in r.headers
                hook = {"token": WEBHOOK_TOKEN, "post_id": "p1", "channel_id": "c1",
                        "user_id": "u1", "text": "@ai ping", "timestamp": 1_700_000_000_000}
                r = await client.post("/mchat/webhook/outgoing", json=hook)
                assert r.json()["text"] == "🤖 answer to: ping"
                r = await client.post("/mchat/webhook/outgoing", content=b"x" * 2_000_000,
                                      headers={"Content-Type": "application/json"})
                assert r.status_code == 413
            nursery.cancel_scope.cancel()
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient(base_url=url) as client:
                await client.get("/mchat/health")


@pytest.mark.slow
async def test_the_whole_service_serves_health_metrics_and_webhooks(tmp_path):
    """app.run against the fake Mattermost: health, metrics and webhooks over a real socket."""
    async with FakeMattermost() as mm:
        port = free_port()
        config = Config.from_env({
            "MCHAT_URL": mm.url, "MCHAT_TOKEN": mm.bot_token,
            "MCHAT_HTTP_LISTEN": f"127.0.0.1:{port}", "MCHAT_DB": str(tmp_path / "e2e.db"),
            "MCHAT_WEBHOOK_TOKENS": WEBHOOK_TOKEN, "MCHAT_ADMIN_TOKEN": ADMIN_TOKEN,
        })
        async with trio.open_nursery() as nursery:
            rt = await nursery.start(partial(run, config, chat=FakeChat()))
            await poll_until(lambda: rt.reconnect_stats.state.mode == "websocket", 10)
            town = mm.channel("town-square")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                health = await client.get("/mchat/health")
                assert health.status_code == 200, health.text
                assert health.json()["connection"]["state"] == "websocket"

                # a mention over the WebSocket is answered through the sender ...
                asked = await mm.post_as("kim", "town-square", "@ai hello there")
                await poll_until(lambda: bot_replies(mm, asked["id"]), 10)
                # ... so the outgoing webhook's copy of it is a duplicate: empty answer
                hook = {"token": WEBHOOK_TOKEN, "team_id": mm.team.id, "channel_id": town.id,
                        "channel_name": "town-square", "user_id": mm.user("kim").id,
                        "user_name": "kim", "post_id": asked["id"], "text": "@ai hello there",
                        "timestamp": asked["create_at"], "trigger_word": "@ai"}
                r = await client.post("/mchat/webhook/outgoing", json=hook)
                assert (r.status_code, r.content) == (200, b"")

                # a fresh post reaches us twice (WebSocket and webhook): one answer, either
                # in the webhook's response or posted by the sender, never both
                fresh = await mm.post_as("lee", "town-square", "@ai what is the plan?")
                hook.update(post_id=fresh["id"], user_id=mm.user("lee").id,
                            text="@ai what is the plan?", timestamp=fresh["create_at"])
                r = await client.post("/mchat/webhook/outgoing", json=hook)
                assert r.status_code == 200
                in_response = bool(r.content)
                if in_response:
                    assert r.json()["response_type"] == "comment"
                else:
                    await poll_until(lambda: bot_replies(mm, fresh["id"]), 10)
                await trio.sleep(0.5)  # time for a wrong second answer to show up
                assert len(bot_replies(mm, fresh["id"])) + in_response == 1
                assert len(bot_replies(mm, asked["id"])) == 1

                metrics = (await client.get("/metrics")).text
                assert 'mchat_connection_state{state="websocket"} 1.0' in metrics
                assert 'mchat_webhook_requests_total{endpoint="outgoing",status="200"} 2.0' \
                    in metrics
                assert "mchat_ai_responses_total 2.0" in metrics
                assert 'mchat_ws_events_total{type="posted"}' in metrics
                status = await client.get("/api/v1/mchat/status",
                                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
                assert status.status_code == 200
                for text in (health.text, metrics, status.text):
                    for secret in (*SECRETS, mm.bot_token):
                        assert secret not in text
            rt.request_shutdown()


def bot_replies(mm: FakeMattermost, root_id: str) -> list[dict]:
    return [p for p in mm.posts("town-square")
            if p["user_id"] == mm.bot.id and p.get("root_id") == root_id]
