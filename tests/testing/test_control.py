"""The /_fake/ control API, the request log, post listeners and route registration."""

from __future__ import annotations

import trio

from mchat_actors.testing import FakeMattermost, PostCreated
from mchat_actors.testing.routing import Request, Response, json_response

from .wsutil import auth, connect, hello, recv


async def test_control_post_goes_through_the_post_path(mm, client):
    """POST /_fake/post creates the post, validates it and broadcasts it."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        response = await client.post("/_fake/post", json={
            "user": "kim", "channel": "town-square", "message": "via control"})
        assert response.status_code == 201
        assert (await recv(ws))["event"] == "posted"
    bad = await client.post("/_fake/post", json={
        "user": "kim", "channel": "town-square", "message": "x", "root_id": "q" * 26})
    assert bad.status_code == 400
    assert bad.json()["id"] == "api.post.create_post.root_id.app_error"
    unknown = await client.post("/_fake/post", json={
        "user": "nobody", "channel": "town-square", "message": "x"})
    assert unknown.status_code == 404


async def test_control_knobs_take_effect(mm, client):
    """Each knob endpoint sets the matching fault (checked on the server's state)."""
    calls = {
        "refuse_websockets": {"seconds": 5}, "refuse_connections": {"seconds": 0},
        "fail": {"seconds": 5, "status": 502, "path_prefix": "/api/v4/users"},
        "stall": {"seconds": 0}, "latency": {"seconds": 0.5},
        "rate_limit": {"per_s": 3, "burst": 7},
    }
    for name, body in calls.items():
        response = await client.post(f"/_fake/{name}", json=body)
        assert response.json() == {"status": "OK"}, name
    assert mm.faults.refusing_websockets
    assert mm.faults.failing("/api/v4/users/me") == 502
    assert mm.faults.latency_s == 0.5
    assert mm.limiter.per_s == 3 and mm.limiter.burst == 7
    bad = await client.post("/_fake/stall", json={"seconds": "soon"})
    assert bad.status_code == 400


async def test_control_drop_and_forget(mm, client):
    """drop_websockets and forget_resume_state report what they did."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        dropped = await client.post("/_fake/drop_websockets", json={"abrupt": True})
        assert dropped.json() == {"dropped": 1}
    forgotten = await client.post("/_fake/forget_resume_state")
    assert forgotten.json() == {"forgotten": 1}


async def test_control_seed_and_posts(mm, client):
    """GET /_fake/seed lists users with tokens; /_fake/posts lists a channel's posts."""
    seed = (await client.get("/_fake/seed")).json()
    assert seed["url"] == mm.url and seed["team"]["name"] == "qa"
    tokens = {u["username"]: u["token"] for u in seed["users"]}
    assert tokens["kim"] == mm.user("kim").token and tokens["mchat-bot"] == mm.bot_token
    assert {c["type"] for c in seed["channels"]} == {"O", "P", "D", "G"}
    await mm.post_as("lee", "quality", "listed")
    posts = (await client.get("/_fake/posts?channel=quality")).json()
    assert [p["message"] for p in posts] == ["listed"]
    assert (await client.get("/_fake/posts?channel=nope")).status_code == 404


async def test_request_log_records_requests_but_never_tokens(mm, client):
    """request_log has user, token hint, path, query and status; control calls are absent."""
    token = mm.user("kim").token
    await client.get("/api/v4/users/me?x=1", headers=auth(token))
    await client.get("/api/v4/users/me", headers=auth("bogus-token"))
    await client.get("/_fake/requests")
    first, second = mm.request_log
    assert (first.method, first.path, first.query, first.status) == ("GET", "/api/v4/users/me",
                                                                     "x=1", 200)
    assert first.user_id == mm.user("kim").id and first.token_hint == token[:4] + "…"
    assert second.user_id == "" and second.status == 401
    logged = (await client.get("/_fake/requests")).json()
    assert len(logged) == 2 and token not in str(logged)


async def test_request_log_includes_websocket_upgrades(mm):
    """A WebSocket upgrade is logged with status 101."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
    assert [(r.path, r.status) for r in mm.request_log] == [("/api/v4/websocket", 101)]


async def test_post_listeners_run_after_broadcast_with_trigger_flag(mm):
    """Listeners get every created post; system posts do not trigger webhooks."""
    seen: list[PostCreated] = []
    done = trio.Event()

    async def listener(created: PostCreated) -> None:
        seen.append(created)
        if len(seen) == 2:
            done.set()

    mm.add_post_listener(listener)
    await mm.post_as("kim", "town-square", "user post")
    await mm.add_member("quality", "choi")
    await done.wait()
    assert [(c.post["message"], c.trigger_webhooks) for c in seen] == [
        ("user post", True), ("choi joined the channel.", False)]
    assert seen[0].channel.name == "town-square" and seen[0].author.username == "kim"


async def test_a_failing_listener_does_not_affect_the_request(mm, client, caplog):
    """A listener that raises is logged; the post is still created and answered 201."""
    async def broken(created: PostCreated) -> None:
        raise RuntimeError("listener bug")

    mm.add_post_listener(broken)
    response = await client.post("/api/v4/posts", headers=auth(mm.bot_token), json={
        "channel_id": mm.channel("town-square").id, "message": "still fine"})
    assert response.status_code == 201
    await mm.wait_for(lambda: "listener bug" in caplog.text)


async def test_routes_can_be_registered_from_outside(mm, client):
    """router.add adds a route that goes through the pipeline (logged, faults apply)."""
    async def hook(request: Request) -> Response:
        return json_response({"hook": request.params["hook_id"], "body": request.json("b")})

    mm.router.add("POST", "/plugins/{hook_id}", hook, auth=False)
    response = await client.post("/plugins/abc", json={"text": "hi"})
    assert response.json() == {"hook": "abc", "body": {"text": "hi"}}
    assert mm.request_log[-1].path == "/plugins/abc"


async def test_seed_from_a_json_file(tmp_path):
    """--seed FILE: a JSON seed with custom team, users and channels."""
    seed = tmp_path / "seed.json"
    seed.write_text("""{
      "team": {"name": "dev", "display_name": "개발"},
      "bot": {"username": "helper", "token": "bottoken"},
      "users": [{"username": "a", "token": "atoken"}, {"username": "b"}],
      "channels": [{"name": "general", "type": "O", "members": "*"},
                   {"type": "D", "members": ["a", "b"]}]
    }""", encoding="utf-8")
    async with FakeMattermost(seed=seed) as mm:
        assert mm.team.name == "dev" and mm.bot.username == "helper"
        assert mm.bot_token == "bottoken" and mm.user("a").token == "atoken"
        assert mm.state.is_member(mm.channel("general").id, mm.bot.id)
        dm = next(c for c in mm.state.channels.values() if c.type == "D")
        assert not mm.state.is_member(dm.id, mm.bot.id)


async def test_default_seed_matches_the_brief(mm):
    """Team qa, bot mchat-bot, Korean names, admin, the seeded channels, bot everywhere."""
    assert (mm.team.name, mm.team.display_name) == ("qa", "품질팀 QA")
    assert mm.bot.is_bot and mm.bot.email == "mchat-bot@example.com"
    assert mm.user("kim").last_name + mm.user("kim").first_name == "김민수"
    assert mm.admin.username == "admin"
    assert mm.channel("defects").type == "P"
    for channel in mm.state.channels.values():
        assert mm.state.is_member(channel.id, mm.bot.id)
    assert all(u.token for u in mm.state.users.values())
    async with FakeMattermost(bot_token="fixed-token") as other:
        assert other.bot_token == "fixed-token"


async def test_control_burst_posts_round_robin(mm, client):
    """POST /_fake/burst makes ``count`` posts over the channels, each broadcast; bad bodies 4xx."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        response = await client.post("/_fake/burst", json={
            "user": "kim", "channels": ["town-square", "defects"], "count": 3})
        assert response.json() == {"posted": 3}
        events = [await recv(ws) for _ in range(3)]
        assert [e["event"] for e in events] == ["posted"] * 3
    assert len(mm.posts("defects")) >= 1
    bad = await client.post("/_fake/burst", json={"user": "kim", "channels": [], "count": 1})
    assert bad.status_code == 400
    unknown = await client.post("/_fake/burst", json={
        "user": "kim", "channels": ["nowhere"], "count": 1})
    assert unknown.status_code == 404
