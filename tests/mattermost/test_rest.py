from __future__ import annotations

import json
import logging
from functools import partial

import certifi
import httpx
import pytest
import trio

from mchat_actors.config import MattermostConfig
from mchat_actors.errors import (
    MalformedEvent,
    MattermostApiError,
    MattermostAuthError,
    MattermostUnavailable,
    RateLimited,
)
from mchat_actors.mattermost.rest import open_mattermost_client
from mchat_actors.ratelimit import TokenBucket

TOKEN = "sekr1t-token-zzz"
CFG = MattermostConfig(url="http://mm.test/", token=TOKEN, rest_timeout_s=2.0)


def reply(status=200, body=None, *, text=None, headers=None):
    """An httpx.Response with a JSON body (or a raw text body)."""
    if text is not None:
        return httpx.Response(status, text=text, headers=headers)
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


class Recorder:
    """A MockTransport handler that records requests and answers from a queue (or 200 {})."""

    def __init__(self, *answers):
        self.requests: list[httpx.Request] = []
        self.answers = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            return reply()
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def call(handler, method, *args, bucket=None, **kwargs):
    """Open a client over ``handler`` and make one call."""
    bucket = bucket or TokenBucket(1000.0, burst=1000)
    async with open_mattermost_client(
        CFG, bucket=bucket, transport=httpx.MockTransport(handler)
    ) as mm:
        return await getattr(mm, method)(*args, **kwargs)


ENDPOINTS = [
    ("get_me", (), {}, "GET", "/api/v4/users/me", {}, None),
    ("get_user", ("u1",), {}, "GET", "/api/v4/users/u1", {}, None),
    ("get_users_by_ids", (["a", "b"],), {}, "POST", "/api/v4/users/ids", {}, ["a", "b"]),
    ("get_user_by_email", ("a+b@x.io",), {}, "GET", "/api/v4/users/email/a%2Bb%40x.io", {},
     None),
    ("get_channel", ("c1",), {}, "GET", "/api/v4/channels/c1", {}, None),
    ("get_channel_members", ("c1",), {"page": 2}, "GET", "/api/v4/channels/c1/members",
     {"page": "2", "per_page": "200"}, None),
    ("get_my_teams", (), {}, "GET", "/api/v4/users/me/teams", {}, None),
    ("get_my_channels", ("t1",), {}, "GET", "/api/v4/users/me/teams/t1/channels", {}, None),
    ("get_team_by_name", ("eng",), {}, "GET", "/api/v4/teams/name/eng", {}, None),
    ("get_public_channels", ("t1",), {"per_page": 50}, "GET", "/api/v4/teams/t1/channels",
     {"page": "0", "per_page": "50"}, None),
    ("get_channel_by_name", ("t1", "town-square"), {}, "GET",
     "/api/v4/teams/t1/channels/name/town-square", {}, None),
    ("add_channel_member", ("c1", "u1"), {}, "POST", "/api/v4/channels/c1/members", {},
     {"user_id": "u1"}),
    ("get_posts", ("c1",), {"since": 1700}, "GET", "/api/v4/channels/c1/posts",
     {"since": "1700"}, None),
    ("get_posts", ("c1",), {"after": "p1", "per_page": 10}, "GET", "/api/v4/channels/c1/posts",
     {"after": "p1", "page": "0", "per_page": "10"}, None),
    ("get_post", ("p1",), {}, "GET", "/api/v4/posts/p1", {}, None),
    ("create_post", (), {"channel_id": "c1", "message": "hi", "root_id": "r1",
                         "pending_post_id": "pp", "props": {"from_bot": "true"}},
     "POST", "/api/v4/posts", {},
     {"channel_id": "c1", "message": "hi", "root_id": "r1", "pending_post_id": "pp",
      "props": {"from_bot": "true"}}),
    ("create_post", (), {"channel_id": "c1", "message": "hi"}, "POST", "/api/v4/posts", {},
     {"channel_id": "c1", "message": "hi"}),
    ("add_reaction", (), {"user_id": "me", "post_id": "p1", "emoji_name": "+1"}, "POST",
     "/api/v4/reactions", {}, {"user_id": "me", "post_id": "p1", "emoji_name": "+1"}),
    ("remove_reaction", (), {"user_id": "me", "post_id": "p1", "emoji_name": "+1"}, "DELETE",
     "/api/v4/users/me/posts/p1/reactions/%2B1", {}, None),
    ("get_client_config", (), {}, "GET", "/api/v4/config/client", {"format": "old"}, None),
    ("ping", (), {}, "GET", "/api/v4/system/ping", {}, None),
]


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "method", "path", "params", "body"), ENDPOINTS
)
async def test_each_method_sends_the_documented_request(
    name, args, kwargs, method, path, params, body
):
    """Every method hits its API v4 path with the bearer token, query and JSON body."""
    rec = Recorder(reply(200, {"ok": name}))
    assert await call(rec, name, *args, **kwargs) == {"ok": name}
    (request,) = rec.requests
    assert request.method == method
    assert request.url.raw_path.split(b"?")[0].decode() == path
    assert dict(request.url.params) == params
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    if body is None:
        assert request.content == b""
    else:
        assert json.loads(request.content) == body


async def test_every_call_goes_through_the_bucket(autojump_clock):
    """Three calls on a 1/s bucket take two seconds (plus margins): nothing bypasses pacing."""
    bucket = TokenBucket(1.0)
    async with open_mattermost_client(
        CFG, bucket=bucket, transport=httpx.MockTransport(Recorder())
    ) as mm:
        start = trio.current_time()
        await mm.get_me()
        await mm.ping()
        await mm.get_post("p1")
        assert trio.current_time() - start == pytest.approx(2.0)  # answered at once
        assert mm.statistics().requests == 3
    assert bucket.statistics().acquired == 3


async def test_the_window_runs_from_the_answer_not_the_release(autojump_clock):
    """A 1/s bucket, a server answering after 3 s: the next request waits one window after
    that answer (the server may have counted the first at any moment before it), and a
    failed request holds the window until its failure plus the margin."""
    bucket = TokenBucket(1.0, margin_s=0.05)

    async def slow(request: httpx.Request) -> httpx.Response:
        await trio.sleep(3.0)
        if request.url.path.endswith("/ping"):
            raise httpx.ReadTimeout("slow", request=request)
        return reply()

    async with open_mattermost_client(
        CFG, bucket=bucket, transport=httpx.MockTransport(slow)
    ) as mm:
        await mm.get_me()  # released at 0, answered at 3
        with pytest.raises(MattermostUnavailable):
            await mm.ping()  # released at 4, failed at 7
        await mm.get_post("p1")  # released at 7 + 0.05 + 1
        assert trio.current_time() == pytest.approx(8.05 + 3.0)
    assert bucket.statistics().in_flight == 0


async def test_rate_limit_headers_feed_the_bucket():
    """X-Ratelimit-Remaining 0 on a success blocks the bucket until the reset."""
    bucket = TokenBucket(100.0)
    headers = {"X-Ratelimit-Limit": "101", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "3"}
    await call(Recorder(reply(200, {}, headers=headers)), "get_me", bucket=bucket)
    stats = bucket.statistics()
    assert (stats.server_limit, stats.server_remaining) == (101, 0)
    assert stats.blocked_until == pytest.approx(trio.current_time() + 3, abs=0.5)


async def test_429_plain_text_raises_rate_limited_and_penalizes():
    """A 429 with a text body becomes RateLimited(Retry-After) and penalizes the bucket."""
    bucket = TokenBucket(100.0)
    answer = reply(429, text="limit exceeded\n", headers={
        "Content-Type": "text/plain; charset=utf-8", "Retry-After": "2",
        "X-Ratelimit-Reset": "9", "X-Ratelimit-Remaining": "0"})
    with pytest.raises(RateLimited) as info:
        await call(Recorder(answer), "create_post", channel_id="c", message="m", bucket=bucket)
    assert info.value.retry_after_s == 2.0
    assert bucket.statistics().penalties == 1


async def test_429_without_retry_after_uses_the_reset_header():
    """Without Retry-After the relative X-Ratelimit-Reset seconds are used."""
    answer = reply(429, text="limit exceeded\n", headers={"X-Ratelimit-Reset": "4"})
    with pytest.raises(RateLimited) as info:
        await call(Recorder(answer), "get_me")
    assert info.value.retry_after_s == 4.0


@pytest.mark.parametrize(
    ("answer", "error", "status", "error_id"),
    [
        (reply(401, {"id": "api.context.session_expired.app_error", "message": "expired"}),
         MattermostAuthError, None, None),
        (reply(403, {"id": "api.context.permissions.app_error", "message": "no"}),
         MattermostApiError, 403, "api.context.permissions.app_error"),
        (reply(400, {"id": "model.post.is_valid.message_length.app_error", "message": "long"}),
         MattermostApiError, 400, "model.post.is_valid.message_length.app_error"),
        (reply(404, text="<html>not found</html>"), MattermostApiError, 404, ""),
        (reply(500, {"id": "api.post.deduplicate_create_post.pending", "message": "wait"}),
         MattermostUnavailable, None, None),
        (reply(502, text="<html>Bad gateway</html>"), MattermostUnavailable, None, None),
        (reply(503, text=""), MattermostUnavailable, None, None),
    ],
)
async def test_error_statuses_map_to_the_error_tree(answer, error, status, error_id):
    """401, 4xx and 5xx (JSON or not) map to the documented errors without crashing."""
    with pytest.raises(error) as info:
        await call(Recorder(answer), "get_me")
    if status is not None:
        assert (info.value.status, info.value.error_id) == (status, error_id)


async def test_non_json_error_body_keeps_its_text_as_the_message():
    """A 400 with a plain-text body gives an empty id and the text as the message."""
    with pytest.raises(MattermostApiError) as info:
        await call(Recorder(reply(400, text="bad things")), "get_me")
    assert "bad things" in str(info.value)


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof"),
     httpx.PoolTimeout("pool")],
)
async def test_transport_errors_and_timeouts_become_unavailable(exc):
    """Network failures and timeouts raise MattermostUnavailable chained to the httpx error."""
    with pytest.raises(MattermostUnavailable) as info:
        await call(Recorder(exc), "get_me")
    assert info.value.__cause__ is exc


async def test_success_with_a_non_json_body_is_malformed():
    """A 200 whose body is not JSON raises MalformedEvent instead of a ValueError."""
    with pytest.raises(MalformedEvent):
        await call(Recorder(reply(200, text="<html>")), "get_me")


async def test_the_token_never_appears_in_errors_logs_or_reprs(caplog, autojump_clock):
    """The token is absent from every exception, its cause, the log and the reprs."""
    caplog.set_level(logging.DEBUG)
    answers = [
        reply(401, {"id": "x", "message": f"bad token {TOKEN}"}),
        reply(400, text=f"echo Authorization: Bearer {TOKEN}"),
        reply(429, text="limit exceeded\n"),
        reply(503, text=TOKEN),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ]
    rec = Recorder(*answers)
    texts = []
    async with open_mattermost_client(
        CFG, bucket=TokenBucket(1000.0, burst=100), transport=httpx.MockTransport(rec)
    ) as mm:
        texts += [repr(mm), repr(CFG), str(mm.statistics())]
        for _ in answers:
            with pytest.raises(Exception) as info:  # noqa: PT011 - each answer raises differently
                await mm.get_me()
            texts += [str(info.value), repr(info.value), repr(info.value.__cause__),
                      str(info.value.__cause__)]
        texts.append(repr(rec.requests[0]))
        texts.append(repr(rec.requests[0].headers))
    texts.append(caplog.text)
    assert all(TOKEN not in text for text in texts)


async def test_statistics_count_errors_by_kind(autojump_clock):
    """statistics() counts requests, errors by kind and 429s."""
    rec = Recorder(reply(429, text="limit exceeded"), reply(503), reply(404), reply(200, {}))
    async with open_mattermost_client(
        CFG, bucket=TokenBucket(1000.0, burst=100), transport=httpx.MockTransport(rec)
    ) as mm:
        for _ in range(3):
            with pytest.raises((RateLimited, MattermostUnavailable, MattermostApiError)):
                await mm.get_me()
        await mm.get_me()
        stats = mm.statistics()
    assert stats.requests == 4
    assert stats.rate_limited == 1
    assert dict(stats.errors) == {"rate_limited": 1, "unavailable": 1, "api": 1}


async def test_ca_bundle_builds_a_verifying_client():
    """A CA bundle path is accepted (as an SSL context, without httpx deprecation warnings)."""
    cfg = MattermostConfig(url="https://mm.test", token=TOKEN, ca_bundle=certifi.where())
    async with open_mattermost_client(cfg, bucket=TokenBucket(10.0)) as mm:
        assert "mm.test" in repr(mm)


async def _serve_http(stream: trio.SocketStream, seen: list[bytes]) -> None:
    """A one-request-per-connection HTTP/1.1 server: /users/me answers 200, the rest 429."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return
        data += chunk
    seen.append(data)
    if data.startswith(b"GET /api/v4/users/me "):
        body = b'{"id":"bot1","username":"ai"}'
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"X-Ratelimit-Limit: 101\r\nX-Ratelimit-Remaining: 99\r\nX-Ratelimit-Reset: 1\r\n")
    else:
        body = b"limit exceeded\n"
        head = (b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Retry-After: 1\r\nX-Ratelimit-Remaining: 0\r\n")
    await stream.send_all(
        head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
    )
    await stream.aclose()


async def test_real_socket_round_trip_and_plain_text_429():
    """Over a real TCP socket: the bearer header arrives, JSON parses, a text 429 maps."""
    seen: list[bytes] = []
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_tcp, lambda s: _serve_http(s, seen), 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        cfg = MattermostConfig(url=f"http://127.0.0.1:{port}", token=TOKEN, rest_timeout_s=5.0)
        with trio.fail_after(10):
            async with open_mattermost_client(cfg, bucket=TokenBucket(50.0)) as mm:
                assert (await mm.get_me())["id"] == "bot1"
                with pytest.raises(RateLimited) as info:
                    await mm.create_post(channel_id="c1", message="hi")
        nursery.cancel_scope.cancel()
    assert info.value.retry_after_s == 1.0
    assert f"Bearer {TOKEN}".encode() in seen[0]


async def test_a_priority_view_shares_pool_bucket_and_counters(autojump_clock):
    """``with_priority``: reads in the given class (a lane's RequestClass follows its raise),
    writes always in the reply class, one request counter for the client and its views."""
    from mchat_actors.ratelimit import Priority, RequestClass

    bucket = TokenBucket(100.0)
    lane = RequestClass()
    async with open_mattermost_client(
        CFG, bucket=bucket, transport=httpx.MockTransport(Recorder())
    ) as mm:
        await mm.get_channel("c1")  # background
        await mm.with_priority(Priority.QUESTION).get_channel("c2")
        await mm.with_priority(Priority.QUESTION).create_post(channel_id="c2", message="hi")
        await mm.with_priority(lane).get_user("u1")  # background: not raised
        lane.raise_to(Priority.QUESTION)
        await mm.with_priority(lane).get_user("u2")
        assert mm.statistics().requests == 5
    assert dict(bucket.statistics().acquired_by_priority) == {
        "reply": 1, "question": 2, "background": 2}


async def test_a_stalled_answer_holds_the_window_only_until_its_request_is_written():
    """Over a real socket: the server reads the first request and answers it only after 3 s.
    The request's last byte was written at once (httpx's trace), so at rate 1/s the second
    request goes about 1 s later, long before the stalled answer, not after it."""
    stall = trio.Event()
    went: list[float] = []

    async def serve(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(65536)
        went.append(trio.current_time())
        if len(went) == 1:
            with trio.move_on_after(3.0):
                await stall.wait()
        body = b'{"id": "p"}'
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                              + body)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        cfg = MattermostConfig(url=f"http://127.0.0.1:{port}", token=TOKEN, rest_timeout_s=10.0)
        bucket = TokenBucket(1.0, margin_s=0.05)
        with trio.fail_after(10):
            async with open_mattermost_client(cfg, bucket=bucket) as mm:
                async with trio.open_nursery() as calls:
                    calls.start_soon(mm.get_me)
                    await trio.sleep(0.1)
                    await mm.get_me()
                    second_done = trio.current_time()
                    stall.set()
        nursery.cancel_scope.cancel()
    assert len(went) == 2
    assert 0.9 < went[1] - went[0] < 2.0  # one window after the write, not after the answer
    assert second_done - went[0] < 2.5


async def test_request_urls_are_parsed_once_and_the_cache_stays_bounded(monkeypatch):
    """A path's absolute URL is kept (httpx would parse and join it on every request), shared
    with the client's priority views, and the set of kept URLs never passes its bound (ids
    make paths unbounded)."""
    from mchat_actors.mattermost import rest

    monkeypatch.setattr(rest, "URL_CACHE", 8)
    rec = Recorder()
    async with open_mattermost_client(CFG, bucket=TokenBucket(1000.0, burst=1000),
                                      transport=httpx.MockTransport(rec)) as mm:
        await mm.get_post("p1")
        await mm.with_priority(rest.Priority.QUESTION).get_post("p1")
        assert len(mm._urls) == 1  # one parse, shared
        for i in range(20):
            await mm.get_post(f"p{i}")
            assert len(mm._urls) <= 8
    assert [r.url.path for r in rec.requests[:2]] == ["/api/v4/posts/p1"] * 2
    assert rec.requests[-1].url.path == "/api/v4/posts/p19"
