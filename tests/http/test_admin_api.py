from __future__ import annotations

from mchat_actors import outbox
from mchat_actors.messages import ChannelId, SendReply
from tests.http.conftest import ADMIN_TOKEN, SECRETS, make_config, open_harness, poll_until

API = "/api/v1/mchat"
# every admin route, with a body that would be valid
ROUTES = [
    ("GET", "/mappings/channels", None), ("POST", "/mappings/channels", {"channel_id": "c1"}),
    ("PUT", "/mappings/channels/c1/sync", {"enabled": False}), ("GET", "/mappings/users", None),
    ("GET", "/status", None), ("GET", "/outbox", None), ("POST", "/outbox/1/retry", None),
    ("GET", "/audit", None),
]


async def failed_row(h, key="p9:reply", channel="c1") -> int:
    reply = SendReply(channel_id=ChannelId(channel), message="an answer", reply_key=key)
    (row_id,) = await h.rt.store.run(outbox.enqueue_replies, [reply], max_chars=1000)
    await h.rt.store.run(outbox.mark_failed, row_id, error="MattermostApiError: 403")
    return row_id


def test_every_admin_route_is_listed():
    """ROUTES covers every route of the admin router (so the auth tests cover them all)."""
    from mchat_actors.http.admin_api import router

    listed = {(m, API + p.replace("c1", "{channel_id}").replace("/1/", "/{row_id}/"))
              for m, p, _ in ROUTES}
    assert {(m, r.path) for r in router.routes for m in r.methods} == listed


async def test_admin_routes_need_the_bearer_token(harness):
    """No token, a wrong token or another scheme is 401 with WWW-Authenticate."""
    harness.app.state.surface.auth_throttle.max_failures = 10_000  # see test_auth_throttle
    for method, path, body in ROUTES:
        for headers in ({}, {"Authorization": "Bearer wrong"},
                        {"Authorization": f"Basic {ADMIN_TOKEN}"},
                        {"Authorization": ADMIN_TOKEN}):
            r = await harness.client.request(method, API + path, json=body, headers=headers)
            assert r.status_code == 401, (method, path, headers)
            assert r.json()["error"] == "unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"
    assert harness.rest.requests == 0


async def test_an_unset_admin_token_switches_the_api_off(tmp_path):
    """Without MCHAT_ADMIN_TOKEN every admin route is 403, whatever is sent."""
    async with open_harness(make_config(tmp_path, admin_token=None)) as h:
        for method, path, body in ROUTES:
            for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
                r = await h.client.request(method, API + path, json=body, headers=headers)
                assert r.status_code == 403, (method, path)
                assert r.json() == {"error": "admin API disabled",
                                    "detail": "MCHAT_ADMIN_TOKEN is not set"}


async def test_map_a_channel_and_list_mappings(harness):
    """POST maps a channel through the mapper (room + members); GET lists it and its users."""
    r = await harness.client.post(API + "/mappings/channels", json={"channel_id": "c1"},
                                  headers=harness.admin())
    assert r.status_code == 201
    channel = r.json()["channel"]
    assert channel["mchat_channel_id"] == "c1"
    assert channel["agent_room_id"] in harness.chat.rooms
    assert channel["sync_enabled"] is True
    r = await harness.client.get(API + "/mappings/channels", headers=harness.admin())
    assert [c["mchat_channel_id"] for c in r.json()["channels"]] == ["c1"]
    r = await harness.client.get(API + "/mappings/users", headers=harness.admin())
    assert [(u["mchat_user_id"], u["mchat_username"]) for u in r.json()["users"]] == [
        ("u1", "name-u1")]


async def test_mapping_an_unknown_channel_is_404(harness):
    """A channel Mattermost does not show the bot is 404, and nothing is audited."""
    r = await harness.client.post(API + "/mappings/channels", json={"channel_id": "missing1"},
                                  headers=harness.admin())
    assert r.status_code == 404
    assert r.json()["error"] == "not found"
    r = await harness.client.get(API + "/audit", headers=harness.admin())
    assert r.json()["entries"] == []


async def test_admin_bodies_are_validated(harness):
    """Malformed JSON is 400; a wrong shape, extra fields or a bad id is 422."""
    h = harness.admin()
    r = await harness.client.post(API + "/mappings/channels", content=b"{oops",
                                  headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"] == "malformed JSON"
    for body in ({}, {"channel_id": "../etc"}, {"channel_id": "c1", "extra": 1},
                 {"channel_id": 5}, [1]):
        r = await harness.client.post(API + "/mappings/channels", json=body, headers=h)
        assert r.status_code == 422, body
        assert r.json()["error"] == "invalid request"
        assert all(set(e) == {"loc", "msg", "type"} for e in r.json()["detail"])
    r = await harness.client.put(API + "/mappings/channels/c1/sync", json={"enabled": "maybe"},
                                 headers=h)
    assert r.status_code == 422
    r = await harness.client.get(API + "/outbox?limit=0", headers=h)
    assert r.status_code == 422
    r = await harness.client.post(API + "/outbox/abc/retry", headers=h)
    assert r.status_code == 422


async def test_sync_toggle_goes_through_the_mapper_and_is_audited(harness):
    """PUT .../sync updates DB and cache; unknown channels are 404; the change is audited."""
    h = harness.admin()
    await harness.client.post(API + "/mappings/channels", json={"channel_id": "c1"}, headers=h)
    r = await harness.client.put(API + "/mappings/channels/c1/sync", json={"enabled": False},
                                 headers=h)
    assert r.json() == {"channel_id": "c1", "sync_enabled": False}
    assert (await harness.rt.mapper.channel(ChannelId("c1"))).sync_enabled is False
    r = await harness.client.put(API + "/mappings/channels/zz/sync", json={"enabled": True},
                                 headers=h)
    assert r.status_code == 404
    entries = (await harness.client.get(API + "/audit", headers=h)).json()["entries"]
    assert [(e["actor"], e["action"], e["target"], e["detail"], e["remote_addr"])
            for e in entries] == [
        ("admin", "mapping.channel.sync", "c1", "disabled", "127.0.0.1"),
        ("admin", "mapping.channel.create", "c1", entries[1]["detail"], "127.0.0.1"),
    ]
    assert all(e["at"] > 1.6e9 for e in entries)


async def test_outbox_lists_and_retries_failed_replies(harness):
    """Failed rows are listed and can be requeued once; the sender is nudged; audited."""
    h = harness.admin()
    row_id = await failed_row(harness)
    reply = SendReply(channel_id=ChannelId("c2"), message="waiting", reply_key="p8:reply")
    await harness.rt.store.run(outbox.enqueue_replies, [reply], max_chars=1000)
    r = await harness.client.get(API + "/outbox", headers=h)
    body = r.json()
    assert body["counts"] == {"pending": 1, "sent": 0, "failed": 1}
    assert [row["id"] for row in body["failed"]] == [row_id]
    assert body["failed"][0]["last_error"] == "MattermostApiError: 403"
    assert [row["reply_key"] for row in body["pending"]] == ["p8:reply"]
    r = await harness.client.post(f"{API}/outbox/{row_id}/retry", headers=h)
    assert r.json() == {"id": row_id, "status": "pending"}
    assert (await harness.rt.store.run(outbox.get_row, row_id)).status == "pending"
    await poll_until(lambda: harness.replies)
    assert harness.replies[0].reply_key == "p9:reply"
    r = await harness.client.post(f"{API}/outbox/{row_id}/retry", headers=h)
    assert r.status_code == 409
    assert r.json()["detail"] == "the row is pending, not failed"
    r = await harness.client.post(f"{API}/outbox/999/retry", headers=h)
    assert r.status_code == 404
    entries = (await harness.client.get(API + "/audit?limit=5", headers=h)).json()["entries"]
    assert [(e["action"], e["target"]) for e in entries] == [("outbox.retry", str(row_id))]


async def test_status_reports_connection_counters_and_config_without_secrets(harness):
    """The status document has the connection, counters and a secret-free config."""
    r = await harness.client.get(API + "/status", headers=harness.admin())
    body = r.json()
    assert body["connection"]["state"] == "connecting"
    assert body["connection"]["configured_mode"] == "auto"
    assert body["counters"]["messages_processed"] == 0
    assert body["config"]["mattermost"]["url"] == "http://mm.test"
    assert "token" not in body["config"]["mattermost"]
    assert "admin_token" not in body["config"]["http"]
    assert "webhook_tokens" not in body["config"]["http"]


async def test_no_admin_response_contains_a_secret(harness):
    """Every admin API answer (after some activity) is free of token values."""
    h = harness.admin()
    await harness.client.post(API + "/mappings/channels", json={"channel_id": "c1"}, headers=h)
    await failed_row(harness)
    texts = []
    for method, path, body in ROUTES:
        texts.append((await harness.client.request(method, API + path, json=body,
                                                   headers=h)).text)
    texts.append((await harness.client.get("/openapi.json")).text)
    texts.append((await harness.client.get("/mchat/health")).text)
    texts.append((await harness.client.get("/metrics")).text)
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
