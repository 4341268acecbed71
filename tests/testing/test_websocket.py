"""The WebSocket of the fake server: auth, hello, seq, events, broadcast rules, actions."""

from __future__ import annotations

import json

import pytest
import trio
import wsproto
import wsproto.events as wse
from trio_websocket import ConnectionClosed, ConnectionRejected

from mchat_actors.testing import FakeMattermost

from .wsutil import auth, connect, hello, next_event, ping_barrier, recv, send


async def test_header_auth_gets_hello_with_seq_zero(mm):
    """A header-authenticated socket gets hello (seq 0) with version, connection id, host."""
    async with connect(mm, mm.bot_token) as ws:
        frame = await hello(ws)
        assert frame["seq"] == 0
        assert frame["data"]["server_version"].startswith("10.")
        assert len(frame["data"]["connection_id"]) == 26
        assert frame["data"]["server_hostname"]
        assert frame["broadcast"]["user_id"] == mm.bot.id
        assert frame["broadcast"]["omit_users"] is None


async def test_seq_increments_by_one_per_event(mm):
    """Events on one socket are numbered 0, 1, 2, … with no gaps; replies carry no seq."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        for i in range(3):
            await mm.post_as("kim", "town-square", f"m{i}")
        reply = await ping_barrier(ws, 1)
        assert [f["seq"] for f in reply] == [1, 2, 3]
        await mm.post_as("kim", "town-square", "m3")
        assert (await recv(ws))["seq"] == 4


async def test_authentication_challenge_sends_hello_then_ok(mm):
    """Challenge auth: hello (seq 0) first, then OK with seq_reply."""
    async with connect(mm) as ws:
        await send(ws, 1, "authentication_challenge", {"token": mm.user("kim").token})
        first, second = await recv(ws), await recv(ws)
        assert first["event"] == "hello" and first["seq"] == 0
        assert second == {"status": "OK", "seq_reply": 1}


async def test_challenge_on_an_authenticated_socket_gets_no_reply(mm):
    """A second authentication_challenge is silently ignored."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        await send(ws, 1, "authentication_challenge", {"token": mm.bot_token})
        assert await ping_barrier(ws, 2) == []


async def test_challenge_with_unknown_token_closes_the_socket(mm):
    """An unknown challenge token closes the socket without a reply."""
    async with connect(mm) as ws:
        await send(ws, 1, "authentication_challenge", {"token": "wrong"})
        with pytest.raises(ConnectionClosed):
            await ws.get_message()


async def test_actions_before_auth_fail_with_401(mm):
    """An unauthenticated socket's ping gets FAIL not_authenticated."""
    async with connect(mm) as ws:
        await send(ws, 1, "ping")
        reply = await recv(ws)
        assert reply["status"] == "FAIL" and reply["seq_reply"] == 1
        assert reply["error"]["id"] == "api.web_socket_router.not_authenticated.app_error"
        assert reply["error"]["status_code"] == 401


async def test_invalid_header_token_is_dropped_after_5_s_without_close_frame(autojump_clock):
    """A bad header token: the socket opens, gets nothing, and TCP closes at 5 s, no frame."""
    async with FakeMattermost() as mm, connect(mm, "not-a-token") as ws:
        start = trio.current_time()
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert trio.current_time() - start == pytest.approx(5.0, abs=0.1)
        assert closed.value.reason.code == 1006  # abnormal closure: no close frame


async def test_ping_action_answers_pong(mm):
    """ping -> OK with text pong, version, server_time (ms) and node_id."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        await send(ws, 7, "ping")
        reply = await recv(ws)
        assert reply["seq_reply"] == 7 and reply["status"] == "OK"
        assert reply["data"]["text"] == "pong" and reply["data"]["node_id"] == ""
        assert reply["data"]["server_time"] > 1_600_000_000_000


@pytest.mark.parametrize(("frame", "error_id", "has_seq_reply"), [
    ({"seq": 0, "action": "ping"}, "api.web_socket_router.bad_seq.app_error", False),
    ({"seq": -3, "action": "ping"}, "api.web_socket_router.bad_seq.app_error", True),
    ({"seq": 4, "action": ""}, "api.web_socket_router.no_action.app_error", True),
    ({"seq": 5, "action": "no_such_thing"}, "api.web_socket_router.bad_action.app_error", True),
])
async def test_router_errors_reply_fail(mm, frame, error_id, has_seq_reply):
    """seq <= 0, an empty action and an unknown action get FAIL replies (§1.6)."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        await ws.send_message(json.dumps(frame))
        reply = await recv(ws)
        assert reply["status"] == "FAIL"
        assert reply["error"]["id"] == error_id
        assert reply["error"]["detailed_error"] == ""
        assert ("seq_reply" in reply) is has_seq_reply


async def test_get_statuses_by_ids(mm):
    """get_statuses_by_ids reports online for a user with a socket, offline otherwise."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        await send(ws, 1, "get_statuses_by_ids", {"user_ids": [mm.bot.id, mm.user("kim").id]})
        reply = await recv(ws)
        assert reply["data"] == {mm.bot.id: "online", mm.user("kim").id: "offline"}


async def test_posted_event_shape(mm):
    """posted carries the post as a JSON string and the channel/sender fields."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        created = await mm.post_as("kim", "quality", "hello")
        event = await next_event(ws, "posted")
        data = event["data"]
        assert json.loads(data["post"]) == created
        assert data["channel_type"] == "O" and data["channel_name"] == "quality"
        assert data["channel_display_name"] == "품질 Quality"
        assert data["sender_name"] == "@kim" and data["set_online"] is True
        assert data["team_id"] == mm.team.id
        assert "mentions" not in data
        assert event["broadcast"]["channel_id"] == mm.channel("quality").id


async def test_dm_posted_has_empty_team_and_mentions_the_other_member(mm):
    """In a DM the team_id is empty and the other member is always mentioned."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        dm = await mm.dm_channel("kim", "mchat-bot")
        await mm.post_as("kim", dm.id, "no at-mention here")
        data = (await next_event(ws, "posted"))["data"]
        assert data["channel_type"] == "D" and data["team_id"] == ""
        assert data["channel_display_name"] == "@kim"
        assert json.loads(data["mentions"]) == [mm.bot.id]


async def test_broadcast_reaches_channel_members_only(mm):
    """park (not in defects) gets the quality post but never the defects post."""
    async with connect(mm, mm.user("park").token) as ws:
        await hello(ws)
        await mm.post_as("kim", "defects", "private")
        await mm.post_as("kim", "quality", "public")
        event = await next_event(ws, "posted")
        assert json.loads(event["data"]["post"])["message"] == "public"


async def test_mentions_only_on_the_mentioned_users_socket(mm):
    """mentions is present only for the mentioned user and holds only their id."""
    async with connect(mm, mm.bot_token) as bot_ws, connect(mm, mm.user("lee").token) as lee_ws:
        await hello(bot_ws)
        await hello(lee_ws)
        await mm.post_as("kim", "town-square", "hey @MCHAT-BOT. and @ghost")
        bot_event = await next_event(bot_ws, "posted")
        lee_event = await next_event(lee_ws, "posted")
        assert json.loads(bot_event["data"]["mentions"]) == [mm.bot.id]
        assert "mentions" not in lee_event["data"]


async def test_author_receives_own_post(mm):
    """posted goes to the author's sockets too."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        await mm.post_as("mchat-bot", "town-square", "mine")
        post = json.loads((await next_event(ws, "posted"))["data"]["post"])
        assert post["user_id"] == mm.bot.id and post["props"]["from_bot"] == "true"


async def test_typing_is_broadcast_without_the_typer(mm):
    """user_typing -> OK, and typing reaches the other members, not the typer."""
    async with connect(mm, mm.bot_token) as bot_ws, connect(mm, mm.user("kim").token) as kim_ws:
        await hello(bot_ws)
        await hello(kim_ws)
        channel = mm.channel("quality").id
        await send(kim_ws, 1, "user_typing", {"channel_id": channel, "parent_id": ""})
        assert (await recv(kim_ws)) == {"status": "OK", "seq_reply": 1}
        event = await next_event(bot_ws, "typing")
        assert event["data"] == {"parent_id": "", "user_id": mm.user("kim").id}
        assert event["broadcast"]["omit_users"] == {mm.user("kim").id: True}
        assert await ping_barrier(kim_ws, 2) == []


async def test_edit_delete_and_reaction_events(mm):
    """post_edited, reaction_added/removed and one post_deleted reach channel members."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        post = await mm.post_as("kim", "town-square", "v1")
        await mm.post_as("lee", "town-square", "reply", root_id=str(post["id"]))
        await mm.edit_post(str(post["id"]), "v2")
        mm.app.add_reaction(mm.user("kim"), mm.user("kim").id, str(post["id"]), "smile")
        mm.app.remove_reaction(mm.user("kim"), mm.user("kim").id, str(post["id"]), "smile")
        await mm.delete_post(str(post["id"]))
        frames = await ping_barrier(ws, 1)
        names = [f["event"] for f in frames]
        assert names == ["posted", "posted", "post_edited", "reaction_added",
                         "reaction_removed", "post_deleted"]
        assert json.loads(frames[2]["data"]["post"])["message"] == "v2"
        assert json.loads(frames[3]["data"]["reaction"])["emoji_name"] == "smile"
        deleted = json.loads(frames[5]["data"]["post"])
        assert deleted["id"] == post["id"] and deleted["delete_at"] == 0  # as read before
        assert "delete_by" not in frames[5]["data"]


async def test_admins_get_delete_by_on_post_deleted(mm):
    """The system admin's copy of post_deleted carries delete_by."""
    async with connect(mm, mm.admin.token) as ws:
        await hello(ws)
        post = await mm.post_as("kim", "town-square", "bye")
        await mm.delete_post(str(post["id"]))
        event = await next_event(ws, "post_deleted")
        assert event["data"]["delete_by"] == mm.user("kim").id


async def test_membership_events(mm):
    """user_added to members; user_removed to the channel and to the removed user."""
    async with connect(mm, mm.bot_token) as bot_ws, connect(mm, mm.user("choi").token) as choi_ws:
        await hello(bot_ws)
        await hello(choi_ws)
        await mm.add_member("quality", "choi")
        added = await next_event(bot_ws, "user_added")
        assert added["data"] == {"user_id": mm.user("choi").id, "team_id": mm.team.id}
        await mm.remove_member("quality", "choi", by="kim")
        removed = await next_event(bot_ws, "user_removed")
        assert removed["data"]["user_id"] == mm.user("choi").id
        own = await next_event(choi_ws, "user_removed")
        assert own["data"] == {"channel_id": mm.channel("quality").id,
                               "remover_id": mm.user("kim").id}
        assert own["broadcast"]["user_id"] == mm.user("choi").id


async def test_channel_and_dm_creation_events(mm):
    """channel_created to the creator, direct_added on DM creation, channel_deleted to team."""
    async with connect(mm, mm.user("lee").token) as ws:
        await hello(ws)
        await mm.create_channel("lee-room", members=["lee"])
        assert (await recv(ws))["event"] == "channel_created"
        await mm.dm_channel("lee", "park")
        assert (await next_event(ws, "direct_added"))["data"]["teammate_id"] == mm.user("park").id
        await mm.dm_channel("lee", "park")
        await mm.delete_channel("lee-room")
        frames = await ping_barrier(ws, 1)
        assert [f["event"] for f in frames] == ["posted", "channel_deleted"]


async def test_oversized_inbound_frame_closes_the_socket(mm):
    """A client frame over 8192 bytes makes the server drop the socket."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        await ws.send_message(json.dumps({"seq": 1, "action": "ping", "data": {"x": "y" * 9000}}))
        with pytest.raises(ConnectionClosed):
            await ws.get_message()


async def test_undecodable_frame_closes_the_socket_and_the_server_lives_on(mm, client):
    """A frame that is not a JSON request closes that socket; the server keeps serving."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        await ws.send_message("{this is not json")
        with pytest.raises(ConnectionClosed):
            await ws.get_message()
    response = await client.get("/api/v4/users/me", headers=auth(mm.bot_token))
    assert response.status_code == 200


async def test_large_event_frames_arrive_intact(mm):
    """A posted event over 64 KiB (16383 four-byte emoji) is framed correctly."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        await mm.post_as("kim", "town-square", "😀" * 16383)
        frame = await ws.get_message()
        assert len(frame.encode()) > 65536
        assert json.loads(json.loads(frame)["data"]["post"])["message"] == "😀" * 16383


async def test_server_pings_every_60_s_and_pong_keeps_the_socket(mm, autojump_clock):
    """The server sends control pings; a client that answers them stays connected."""
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        await trio.sleep(250)
        assert await ping_barrier(ws, 1) == []


async def test_socket_without_pongs_is_dropped_after_100_s(mm, autojump_clock):
    """A client that never answers control pings is dropped ~100 s after connecting."""
    host, port = mm.url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    await stream.send_all(client.send(wse.Request(
        host=host, target="/api/v4/websocket",
        extra_headers=[(b"authorization", f"Bearer {mm.bot_token}".encode())])))
    start = trio.current_time()
    seen: list[tuple[float, str]] = []
    while data := await stream.receive_some(65536):
        client.receive_data(data)
        seen.extend((trio.current_time() - start, type(e).__name__) for e in client.events())
    kinds = [kind for _, kind in seen]
    assert kinds[:2] == ["AcceptConnection", "TextMessage"]  # upgrade, hello
    assert [round(t) for t, kind in seen if kind == "Ping"] == [60]
    assert "CloseConnection" not in kinds
    assert trio.current_time() - start == pytest.approx(100, abs=1)


async def test_query_string_token_is_401_without_upgrade(mm):
    """?access_token= with a personal access token gets 401 and no upgrade."""
    with pytest.raises(ConnectionRejected) as rejected:
        async with connect(mm, None, f"?access_token={mm.bot_token}"):
            pass
    assert rejected.value.status_code == 401
