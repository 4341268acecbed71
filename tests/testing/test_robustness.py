"""Bad input never yields a traceback and never stops the fake server."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from mchat_actors.testing import FakeMattermost

from .wsutil import auth, connect, hello, ping_barrier

if TYPE_CHECKING:
    from mchat_actors.testing.routing import Request, Response

API = "/api/v4"

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=10,
)
_post_like = st.fixed_dictionaries({}, optional={
    "channel_id": st.text(max_size=30) | st.integers(), "message": _json,
    "root_id": _json, "props": _json, "file_ids": _json, "pending_post_id": _json, "type": _json,
})
_endpoints = st.sampled_from([
    ("POST", "/posts"), ("PUT", "/posts/{post}/patch"), ("POST", "/reactions"),
    ("POST", "/channels"), ("POST", "/channels/direct"), ("POST", "/channels/group"),
    ("POST", "/channels/{channel}/members"), ("POST", "/users/ids"), ("POST", "/posts/ids"),
])


async def _assert_alive(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{API}/system/ping")).status_code == 200


@settings(max_examples=40)
@given(requests=st.lists(st.tuples(_endpoints, _json | _post_like), min_size=1, max_size=5))
async def test_arbitrary_json_bodies_get_clean_answers(requests):
    """Any JSON body to a write endpoint gets a non-5xx answer, AppError-shaped when an error."""
    async with FakeMattermost() as mm, httpx.AsyncClient(base_url=mm.url) as client:
        for (method, template), body in requests:
            path = template.format(post="p" * 26, channel=mm.channel("town-square").id)
            response = await client.request(method, API + path, json=body,
                                            headers=auth(mm.bot_token))
            assert response.status_code < 500, response.text
            if response.status_code >= 400:
                assert set(response.json()) >= {"id", "message", "status_code", "request_id"}
            assert "Traceback" not in response.text
        await _assert_alive(client)


async def test_a_handler_bug_is_a_500_app_error_and_is_logged(mm, client, caplog):
    """An exception in a handler becomes 500 AppError, logged; the server keeps serving."""
    async def buggy(request: Request) -> Response:
        raise ZeroDivisionError("secret internals")

    mm.router.add("GET", "/api/v4/buggy", buggy)
    response = await client.get(f"{API}/buggy", headers=auth(mm.bot_token))
    assert response.status_code == 500
    assert response.json()["status_code"] == 500
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert "secret internals" in caplog.text
    await _assert_alive(client)


async def test_garbage_on_the_socket_gets_400_and_the_server_lives_on(mm, client):
    """Bytes that are not HTTP get a 400 and a closed connection, nothing else."""
    host, port = mm.url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(b"\x00\x01 this is not HTTP\r\n\r\n")
        reply = await stream.receive_some(4096)
        assert reply.startswith(b"HTTP/1.1 400")
    await _assert_alive(client)


async def test_client_vanishing_mid_request_does_not_hurt(mm, client):
    """A client that closes halfway through a request body is forgotten quietly."""
    host, port = mm.url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all(b"POST /api/v4/posts HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    await stream.aclose()
    await _assert_alive(client)


async def test_keep_alive_serves_many_requests_on_one_connection(mm, client):
    """Several requests reuse one HTTP/1.1 connection."""
    for _ in range(5):
        await _assert_alive(client)
    assert len(mm.request_log) == 5


async def test_bad_websocket_frames_never_kill_the_server(mm, client):
    """Odd but decodable frames get replies or are ignored; the socket keeps working."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        for frame in ({"seq": 1, "action": "user_typing", "data": {"channel_id": 5}},
                      {"seq": 2, "action": "get_statuses_by_ids", "data": {"user_ids": "x"}},
                      {"seq": 3, "action": "custom_plugin_thing"}):
            await ws.send_message(json.dumps(frame))
        await ws.send_message(b"\x81binary frames are ignored")
        replies = await ping_barrier(ws, 4)
        assert [r["seq_reply"] for r in replies] == [1, 2]
        assert all(r["status"] == "FAIL" for r in replies)
    await _assert_alive(client)


async def test_upgrade_without_websocket_headers_is_400(mm, client):
    """A plain GET on the WebSocket path is 400 api.web_socket.connect.upgrade.app_error."""
    response = await client.get(f"{API}/websocket", headers=auth(mm.bot_token))
    assert response.status_code == 400
    assert response.json()["id"] == "api.web_socket.connect.upgrade.app_error"
    await _assert_alive(client)
