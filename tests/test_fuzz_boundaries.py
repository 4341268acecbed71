"""Hypothesis at every input boundary: WebSocket frames over a real socket, REST answers of odd
shapes and content types, PostLists with broken entries, config values. No crash, no lost
well-formed message, every bad input counted. (Webhook and slash bodies: tests/http/test_fuzz.py
and test_bad_webhook_bodies_are_counted below.)"""

from __future__ import annotations

import json
import string
from functools import partial

import httpx
import orjson
import pytest
import trio
import trio_websocket
from hypothesis import given, settings
from hypothesis import strategies as st

from mchat_actors.actors.connection import ConnectionStats, ResumeState, run_connection
from mchat_actors.config import Config
from mchat_actors.errors import ConfigError, MattermostError, MattermostUnavailable
from mchat_actors.mattermost.events import posts_from_list
from mchat_actors.mattermost.rest import open_mattermost_client
from mchat_actors.messages import PostCreated
from mchat_actors.ratelimit import TokenBucket
from mchat_actors.secrecy import SECRET_SETTINGS
from tests.http.conftest import (  # noqa: F401 - autojump_clock is a fixture
    WEBHOOK_TOKEN,
    autojump_clock,
    make_config,
    open_harness,
)

FUZZ = settings(max_examples=25, deadline=None)
ID = string.ascii_lowercase + string.digits


def good_post(n: int) -> dict:
    return {"id": f"p{n:025d}", "channel_id": "c" * 26, "user_id": "u" * 26,
            "message": f"메시지 {n}", "create_at": 1_700_000_000_000 + n, "props": {}}


def posted(n: int, seq: int) -> str:
    return orjson.dumps({"event": "posted", "seq": seq, "broadcast": {"channel_id": "c" * 26},
                         "data": {"channel_type": "O",
                                  "post": orjson.dumps(good_post(n)).decode()}}).decode()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)

# frames that must be skipped and counted (none carries a valid sequence number)
BAD_FRAMES = st.one_of(
    st.just(posted(0, 1)[:-7]),  # truncated
    st.binary(min_size=1, max_size=64).map(lambda b: b"\xff\xfe" + b),  # not UTF-8, binary
    _json.filter(lambda v: not isinstance(v, dict)).map(json.dumps),  # not an object
    st.builds(lambda v: json.dumps({"event": "posted", "data": {"post": v}}), _json),
    st.builds(lambda v: json.dumps({"event": "posted", "seq": "7", "data": v}), _json),
    st.builds(lambda v: json.dumps({"event": v, "data": {}}),
              st.integers() | st.none() | st.lists(st.integers(), max_size=2)),
    st.just(json.dumps({"nothing": "here"})),
    st.integers(min_value=1, max_value=300_000).map(lambda n: "{" + "x" * n),  # huge garbage
)
# ``("good", None)`` or ``("bad", frame)`` or ``("unknown", event name)``
ITEMS = st.lists(st.one_of(st.just(("good", None)), st.tuples(st.just("bad"), BAD_FRAMES),
                           st.tuples(st.just("unknown"), st.sampled_from(
                               ["typing", "status_change", "x_future_event", "reaction_added"]))),
                 max_size=25)


async def serve_frames(frames: list[str | bytes], finish: trio.Event,
                       request: trio_websocket.WebSocketRequest) -> None:
    ws = await request.accept()
    await ws.send_message(json.dumps({"event": "hello", "seq": 0,
                                      "data": {"connection_id": "conn1"}}))
    for frame in frames:
        await ws.send_message(frame)
    await finish.wait()
    await ws.aclose()  # the server ends it: the client sees a prompt close


@FUZZ
@given(items=ITEMS)
async def test_websocket_frames_no_crash_no_loss_bad_ones_counted(items):
    frames: list[str | bytes] = []
    good: list[str] = []
    bad = 0
    seq = 1
    for kind, value in items:
        if kind == "good":
            good.append(good_post(len(good))["id"])
            frames.append(posted(len(good) - 1, seq))
            seq += 1
        elif kind == "unknown":
            frames.append(json.dumps({"event": value, "seq": seq, "data": {}}))
            seq += 1
        else:
            frames.append(value)
            bad += 1
    good.append(good_post(len(good))["id"])  # a last good post: all before it were handled
    frames.append(posted(len(good) - 1, seq))
    seq += 1
    finish = trio.Event()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(trio_websocket.serve_websocket,
                                             partial(serve_frames, frames, finish),
                                             "127.0.0.1", 0,
                                             ssl_context=None, max_message_size=1 << 20))
        port = server.port
        cfg = Config.from_env({"MCHAT_URL": f"http://127.0.0.1:{port}", "MCHAT_TOKEN": "t",
                               "MCHAT_WS_PING_INTERVAL": "5"}).mattermost
        send, recv = trio.open_memory_channel(100)
        stats = ConnectionStats()

        async def on_ready(is_new: bool, release: object = None) -> None:
            pass

        resume = ResumeState()
        client_done = trio.Event()

        async def client() -> None:
            with pytest.raises(MattermostUnavailable, match="websocket closed"):
                await run_connection(cfg, resume=resume, events=send, on_ready=on_ready,
                                     stats=stats)
            client_done.set()

        nursery.start_soon(client)
        got: list[str] = []
        with trio.fail_after(10):
            while len(got) < len(good):
                event = await recv.receive()
                assert isinstance(event, PostCreated)
                got.append(event.post.id)
            while resume.next_seq < seq:  # the sentinel's seq is taken right after its send
                await trio.sleep(0.005)
        assert got == good  # every well-formed post, in order, once
        assert stats.malformed == bad
        assert resume.next_seq == seq
        finish.set()
        with trio.fail_after(5):
            await client_done.wait()  # ended by the server's close, not by a crash
        nursery.cancel_scope.cancel()


ODD_BODIES = st.one_of(
    _json.map(lambda v: (200, "application/json", json.dumps(v).encode())),
    st.binary(max_size=50).map(lambda b: (200, "application/json", b)),
    st.text(max_size=50).map(lambda t: (200, "text/html", f"<html>{t}</html>".encode())),
    st.tuples(st.sampled_from([200, 201, 204, 301, 400, 403, 404, 409, 429, 500, 502, 503]),
              st.sampled_from(["application/json", "text/plain", ""]),
              st.binary(max_size=40)),
)


@FUZZ
@given(answers=st.lists(ODD_BODIES, min_size=1, max_size=8))
async def test_rest_answers_of_any_shape_raise_only_typed_errors(answers):
    queue = list(answers)

    def respond(request: httpx.Request) -> httpx.Response:
        status, ctype, body = queue.pop(0)
        headers = {"Content-Type": ctype} if ctype else {}
        return httpx.Response(status, content=body, headers=headers)

    cfg = Config.from_env({"MCHAT_URL": "http://mm.test", "MCHAT_TOKEN": "tok-fuzz-1"}).mattermost
    async with open_mattermost_client(cfg, bucket=TokenBucket(1e6),
                                      transport=httpx.MockTransport(respond)) as client:
        for _ in answers:
            try:
                answer = await client.get_posts("c" * 26, since=1)
            except MattermostError as exc:
                assert "tok-fuzz-1" not in str(exc)
                continue
            try:
                posts_from_list(answer)
            except MattermostError:
                pass
        stats = client.statistics()
    assert stats.requests == len(answers)


@FUZZ
@given(entries=st.lists(st.one_of(st.just(None), _json, st.fixed_dictionaries(
    {"id": st.text(ID, min_size=1, max_size=5), "channel_id": _json, "create_at": _json})),
    max_size=10), goods=st.integers(min_value=0, max_value=5))
def test_one_broken_post_does_not_hide_its_neighbours(entries, goods):
    posts: dict = {}
    order: list = []
    for i in range(goods):
        post = good_post(i)
        posts[post["id"]] = post
        order.append(post["id"])
    for j, entry in enumerate(entries):
        pid = f"bad{j}"
        posts[pid] = entry
        order.insert(j % (len(order) + 1), pid)
    seen: list[str] = []
    kept = posts_from_list({"order": order, "posts": posts}, seen.append)
    assert {good_post(i)["id"] for i in range(goods)} <= {p.id for p in kept}
    assert len(kept) + len(seen) == len(order)  # each entry kept or reported, none vanished


NAMES = ["MCHAT_URL", "MCHAT_TOKEN", "MCHAT_MODE", "MCHAT_POLL_INTERVAL", "MCHAT_RATE_LIMIT",
         "MCHAT_VERIFY_SSL", "MCHAT_CA_BUNDLE", "MCHAT_AUTO_JOIN", "MCHAT_HTTP_LISTEN",
         "MCHAT_WEBHOOK_ALLOW", "MCHAT_MAX_POST_CHARS", "MCHAT_ANSWER_BOTS",
         "MCHAT_MAX_ANSWERS_PER_MIN", "MCHAT_LOG_FORMAT", "MCHAT_METRICS_AUTH",
         "MCHAT_METRICS_LISTEN", "CHAT_BACKEND", "LLM_BASE_URL", "MCHAT_SUMMARY_EVERY_HOURS",
         *(f"{n}_FILE" for n in SECRET_SETTINGS)]


@settings(max_examples=200, deadline=None)
@given(values=st.dictionaries(st.sampled_from(NAMES), st.text(max_size=30), max_size=10))
def test_config_values_give_a_config_or_a_clear_error(values):
    try:
        Config.from_env({"MCHAT_URL": "http://x", "MCHAT_TOKEN": "t", **values})
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


@FUZZ
@given(bodies=st.lists(st.one_of(
    st.binary(max_size=60).map(lambda b: ("application/json", b)),
    st.binary(max_size=60).map(lambda b: ("application/x-www-form-urlencoded", b)),
    _json.map(lambda v: ("application/json", json.dumps(v).encode())),
    st.just(("text/plain", b"hello"))), min_size=1, max_size=6))
async def test_bad_webhook_bodies_are_counted(tmp_path_factory, bodies):
    async with open_harness(make_config(tmp_path_factory.mktemp("wh"))) as h:
        refused = {"outgoing_webhook": 0, "slash": 0}
        for ctype, body in bodies:
            for path, boundary in (("/mchat/webhook/outgoing", "outgoing_webhook"),
                                   ("/mchat/slash", "slash")):
                r = await h.client.post(path, content=body, headers={"Content-Type": ctype})
                assert r.status_code < 500
                refused[boundary] += r.status_code in (400, 413, 415, 422)
        status = (await h.client.get("/api/v1/mchat/status", headers=h.admin())).json()
        bad = status["safety"]["bad_inputs"]
        assert (bad["outgoing_webhook"], bad["slash"]) == (refused["outgoing_webhook"],
                                                           refused["slash"])
        metrics = (await h.client.get("/metrics")).text
        assert f'mchat_bad_inputs_total{{boundary="slash"}} {refused["slash"]}.0' in metrics
        good = {"token": WEBHOOK_TOKEN, "post_id": "p1", "channel_id": "c1", "user_id": "u1",
                "text": "@ai 아직 살아있나요?", "timestamp": 1_700_000_000_000}
        r = await h.client.post("/mchat/webhook/outgoing", json=good)
        assert r.json()["text"].endswith("아직 살아있나요?")  # nothing broke for the next one


@pytest.mark.parametrize("answer", [{"order": "x", "posts": {}}, [], "text", 5])
def test_a_postlist_that_is_not_one_is_malformed(answer):
    with pytest.raises(MattermostError):
        posts_from_list(answer)


class OddRest:
    """REST answers for the sweeper: teams/channels with junk entries, a PostList with a broken
    post between good ones, then an answer that is not a PostList at all."""

    def __init__(self) -> None:
        self.calls = 0
        self.listed = 0

    async def get_my_teams(self):
        return [{"id": "t1"}, None, {"name": "no id"}, "junk"]

    async def get_my_channels(self, team_id):
        self.listed += 1  # the channel moves before every sweep, so every sweep reads it
        return [{"id": "c" * 26, "type": "O", "last_post_at": self.listed}, {"id": 5}, []]

    async def get_posts(self, channel_id, **kw):
        self.calls += 1
        if self.calls == 1:
            good = [good_post(1), good_post(2)]
            return {"order": [good[0]["id"], "broken", good[1]["id"]],
                    "posts": {good[0]["id"]: good[0], "broken": {"id": "broken"},
                              good[1]["id"]: good[1]}}
        return ["not", "a", "post", "list"]


async def test_the_sweeper_keeps_good_posts_counts_bad_ones_and_survives(tmp_path, autojump_clock):
    from mchat_actors.actors.sweeper import Sweeper
    from tests.fakes import InlineStore

    send, recv = trio.open_memory_channel(10)
    # inline: the autojump clock cannot see a worker thread (it would jump past the sweep)
    store = InlineStore.open(tmp_path / "s.db")
    sweeper = Sweeper(rest=OddRest(), store=store, events=send)
    sweeper.lost_since_ms = 0
    with trio.move_on_after(5):
        await sweeper.poll_forever(1.0)  # the second sweep's junk answer must not crash it
    emitted = [recv.receive_nowait().post.id for _ in range(2)]
    assert emitted == [good_post(1)["id"], good_post(2)["id"]]
    # junk teams (the list is kept 5 min), junk channels at every sweep, the broken post
    assert sweeper.stats.malformed == 1 + sweeper.rest.listed + 1
    assert sweeper.stats.failures >= 3  # every later sweep failed cleanly, retried


async def test_a_frame_over_the_size_limit_drops_the_socket_but_loses_nothing():
    """A frame larger than MAX_FRAME (4 MiB) closes the socket (1009); the posts before it were
    forwarded and ``resume`` asks the server to replay from the first one after them."""
    from mchat_actors.actors.connection import MAX_FRAME

    frames: list[str | bytes] = [posted(0, 1), "{" + "x" * (MAX_FRAME + 10), posted(1, 2)]
    finish = trio.Event()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(trio_websocket.serve_websocket,
                                             partial(serve_frames, frames, finish),
                                             "127.0.0.1", 0, ssl_context=None,
                                             max_message_size=1 << 20))
        cfg = Config.from_env({"MCHAT_URL": f"http://127.0.0.1:{server.port}",
                               "MCHAT_TOKEN": "t"}).mattermost
        send, recv = trio.open_memory_channel(10)
        resume = ResumeState()

        async def on_ready(is_new: bool, release: object = None) -> None:
            pass

        with trio.fail_after(10), pytest.raises(MattermostUnavailable, match="websocket closed"):
            await run_connection(cfg, resume=resume, events=send, on_ready=on_ready,
                                 stats=ConnectionStats())
        finish.set()
        nursery.cancel_scope.cancel()
    assert recv.receive_nowait().post.id == good_post(0)["id"]
    assert resume.next_seq == 2  # the reconnect resumes at post 1: nothing is skipped
