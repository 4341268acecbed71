"""Every fault knob of the fake server, each with a test that fails if the knob did nothing.

Windows are measured on trio's clock, so these tests run under ``autojump_clock``.
"""

from __future__ import annotations

import json

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected

from mchat_actors.testing import FakeMattermost

from .wsutil import auth, connect, hello, ping_barrier, recv, send

API = "/api/v4"


@pytest.mark.parametrize(("abrupt", "code"), [(False, 1001), (True, 1006)])
async def test_drop_websockets_closes_and_leaves_them_resumable(mm, abrupt, code):
    """Clean drop: close frame 1001; abrupt drop: no close frame (1006). Both resumable."""
    async with connect(mm, mm.bot_token) as ws:
        connection_id = (await hello(ws))["data"]["connection_id"]
        assert await mm.drop_websockets(abrupt=abrupt) == 1
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason.code == code
    await mm.post_as("kim", "town-square", "missed")
    query = f"?connection_id={connection_id}&sequence_number=1"
    async with connect(mm, mm.bot_token, query) as ws:
        frame = await recv(ws)
        assert frame["event"] == "posted" and frame["seq"] == 1


async def test_refuse_websockets_rejects_upgrades_for_the_window(mm, client, autojump_clock):
    """Upgrades get 503 (no upgrade) during the window while REST works; then they pass."""
    mm.refuse_websockets(10)
    with pytest.raises(ConnectionRejected) as rejected:
        async with connect(mm, mm.bot_token):
            pass
    assert rejected.value.status_code == 503
    assert json.loads(rejected.value.body)["status_code"] == 503
    assert (await client.get(f"{API}/users/me", headers=auth(mm.bot_token))).status_code == 200
    await trio.sleep(10)
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)


async def test_refuse_connections_closes_new_and_keep_alive_connections(mm, client,
                                                                        autojump_clock):
    """New TCP connections and reused keep-alive ones are closed unanswered in the window."""
    headers = auth(mm.bot_token)
    assert (await client.get(f"{API}/users/me", headers=headers)).status_code == 200
    mm.refuse_connections(10)
    with pytest.raises(httpx.TransportError):
        await client.get(f"{API}/users/me", headers=headers)  # the pooled connection
    async with httpx.AsyncClient(base_url=mm.url) as fresh:
        with pytest.raises(httpx.TransportError):
            await fresh.get(f"{API}/system/ping")
    await trio.sleep(10)
    assert (await client.get(f"{API}/users/me", headers=headers)).status_code == 200


async def test_fail_requests_answers_the_status_but_not_the_websocket(mm, client,
                                                                      autojump_clock):
    """REST under the prefix gets the AppError status; the upgrade still works; then it ends."""
    mm.fail_requests(10, status=503)
    failed = await client.get(f"{API}/users/me", headers=auth(mm.bot_token))
    assert failed.status_code == 503
    assert failed.json()["status_code"] == 503 and "id" in failed.json()
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
    await trio.sleep(10)
    assert (await client.get(f"{API}/users/me", headers=auth(mm.bot_token))).status_code == 200


async def test_fail_requests_with_a_prefix_only_hits_that_prefix(mm, client):
    """A prefix naming posts fails posts only; another status code is used as given."""
    mm.fail_requests(30, status=500, path_prefix="/api/v4/posts")
    headers = auth(mm.bot_token)
    post = await client.post(f"{API}/posts", headers=headers,
                             json={"channel_id": mm.channel("town-square").id, "message": "x"})
    assert post.status_code == 500
    assert (await client.get(f"{API}/users/me", headers=headers)).status_code == 200


async def test_fail_requests_can_target_the_websocket(mm):
    """path_prefix /api/v4/websocket makes upgrades fail with the status."""
    mm.fail_requests(30, status=502, path_prefix="/api/v4/websocket")
    with pytest.raises(ConnectionRejected) as rejected:
        async with connect(mm, mm.bot_token):
            pass
    assert rejected.value.status_code == 502


async def test_stall_holds_rest_answers_until_the_window_ends(mm, client, autojump_clock):
    """A REST request in a stall is answered only when the window is over."""
    start = trio.current_time()
    mm.stall(10)
    response = await client.get(f"{API}/users/me", headers=auth(mm.bot_token))
    assert response.status_code == 200
    assert trio.current_time() - start >= 10


async def test_stall_holds_websocket_frames_and_drops_ping_actions(mm, autojump_clock):
    """In a stall, events are sent only after the window and a ping action is never answered."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        start = trio.current_time()
        mm.stall(10)
        await send(ws, 1, "ping")
        await mm.post_as("kim", "town-square", "during stall")
        frame = await recv(ws)
        assert frame["event"] == "posted"
        assert trio.current_time() - start >= 10
        assert await ping_barrier(ws, 2) == []  # ping 1 got no reply


async def test_latency_is_added_before_every_rest_answer(mm, client, autojump_clock):
    """set_latency(2) delays answers by 2 s; 0 removes it."""
    mm.set_latency(2)
    start = trio.current_time()
    await client.get(f"{API}/system/ping")
    assert trio.current_time() - start >= 2
    mm.set_latency(0)
    start = trio.current_time()
    await client.get(f"{API}/system/ping")
    assert trio.current_time() - start < 0.5


async def test_rate_limit_headers_and_429(mm, client, autojump_clock):
    """GCRA: burst+1 requests pass with X-Ratelimit-*; the next is 429 text/plain."""
    mm.set_rate_limit(1, burst=2)
    headers = auth(mm.bot_token)
    first = await client.get(f"{API}/users/me", headers=headers)
    assert first.headers["X-Ratelimit-Limit"] == "3"
    assert first.headers["X-Ratelimit-Remaining"] == "2"
    assert first.headers["X-Ratelimit-Reset"] == "1"
    for _ in range(2):
        assert (await client.get(f"{API}/users/me", headers=headers)).status_code == 200
    limited = await client.get(f"{API}/users/me", headers=headers)
    assert limited.status_code == 429
    assert limited.text == "limit exceeded\n"
    assert limited.headers["Content-Type"].startswith("text/plain")
    assert limited.headers["Retry-After"] == "1"
    assert limited.headers["X-Ratelimit-Remaining"] == "0"
    other = await client.get(f"{API}/users/me", headers=auth(mm.user("kim").token))
    assert other.status_code == 200  # keyed by token
    await trio.sleep(1)
    assert (await client.get(f"{API}/users/me", headers=headers)).status_code == 200


async def test_rate_limit_counts_websocket_upgrades_but_not_control_calls(mm, client):
    """Upgrades use the budget; /_fake/ calls neither use it nor get limited."""
    mm.set_rate_limit(0.001, burst=0)
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
    with pytest.raises(ConnectionRejected) as rejected:
        async with connect(mm, mm.bot_token):
            pass
    assert rejected.value.status_code == 429
    for _ in range(3):
        assert (await client.get("/_fake/seed")).status_code == 200


async def test_rate_limit_is_off_by_default(mm, client):
    """Without a limit no X-Ratelimit headers are sent."""
    response = await client.get(f"{API}/system/ping")
    assert "X-Ratelimit-Limit" not in response.headers


async def test_rate_limit_from_the_constructor():
    """rate_limit_per_s/rate_burst given to FakeMattermost enable the limiter."""
    async with FakeMattermost(rate_limit_per_s=10, rate_burst=100) as mm, \
            httpx.AsyncClient(base_url=mm.url) as http:
        response = await http.get(f"{API}/system/ping")
        assert response.headers["X-Ratelimit-Limit"] == "101"
        assert response.headers["X-Ratelimit-Remaining"] == "100"
