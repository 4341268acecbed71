"""Outgoing webhooks of the fake server: matching, payloads, replies, timeout, records."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from mchat_actors.testing import AppError, FakeMattermost

from .test_hooks import json_reply, open_receiver

PAYLOAD_KEYS = {"token", "team_id", "team_domain", "channel_id", "channel_name", "timestamp",
                "user_id", "user_name", "post_id", "text", "trigger_word", "file_ids"}


async def settle(mm: FakeMattermost, deliveries: int) -> None:
    """Wait for ``deliveries`` records, then for every listener to finish."""
    await mm.wait_for(lambda: len(mm.hooks.deliveries) >= deliveries, timeout=60)
    await trio.testing.wait_all_tasks_blocked()


async def test_json_payload_and_comment_reply(mm):
    """A JSON hook gets every key (timestamp in ms); ``response_type: comment`` is threaded
    under the triggering post, authored by the hook creator with the webhook props."""
    async with open_receiver() as receiver:
        receiver.respond = lambda _r: json_reply({"text": "noted", "response_type": "comment"})
        hook = mm.create_outgoing_webhook(trigger_words=["!remember"],
                                          callback_urls=[receiver.url + "/out"],
                                          content_type="application/json", creator="mchat-bot",
                                          display_name="memory")
        post = await mm.post_as("kim", "town-square", "!remember X부품 불량률 12%")
        await settle(mm, 1)
    (request,) = receiver.requests
    assert request.path == "/out" and request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    body = json.loads(request.body)
    assert set(body) == PAYLOAD_KEYS
    assert body["token"] == hook["token"] and body["timestamp"] == post["create_at"]
    assert (body["team_domain"], body["channel_name"], body["user_name"]) == (
        "qa", "town-square", "kim")
    assert (body["text"], body["trigger_word"], body["file_ids"]) == (
        "!remember X부품 불량률 12%", "!remember", "")
    reply = mm.posts("town-square")[-1]
    assert reply["message"] == "noted" and reply["root_id"] == post["id"]
    assert reply["user_id"] == mm.bot.id
    assert reply["props"]["from_webhook"] == "true"
    assert reply["props"]["webhook_display_name"] == "memory"
    (delivery,) = mm.hooks.deliveries
    assert (delivery.outcome, delivery.status, delivery.post_ids) == (
        "posted", 200, (reply["id"],))


async def test_form_payload_and_root_reply(mm):
    """The default form encoding sends the timestamp in seconds, as a string; a reply
    without response_type is a new root post."""
    async with open_receiver() as receiver:
        receiver.respond = lambda _r: json_reply({"text": "hi back"})
        mm.create_outgoing_webhook(trigger_words=["hello"], callback_urls=[receiver.url])
        post = await mm.post_as("lee", "town-square", "hello there")
        await settle(mm, 1)
    (request,) = receiver.requests
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = request.form()
    assert set(form) == PAYLOAD_KEYS
    assert form["timestamp"] == [str(post["create_at"] // 1000)]
    assert form["text"] == ["hello there"] and form["trigger_word"] == ["hello"]
    reply = mm.posts("town-square")[-1]
    assert reply["message"] == "hi back" and reply["root_id"] == ""
    assert reply["user_id"] == mm.admin.id  # the default creator


async def test_matching_rules(mm):
    """Exact first word, starts-with, case-sensitivity, and a channel-bound hook without
    trigger words firing on every post of its channel only."""
    async with open_receiver() as receiver:
        mm.create_outgoing_webhook(trigger_words=["build"], callback_urls=[receiver.url + "/exact"])
        mm.create_outgoing_webhook(trigger_words=["dep"], trigger_when=1,
                                   callback_urls=[receiver.url + "/prefix"])
        mm.create_outgoing_webhook(channel="quality", callback_urls=[receiver.url + "/channel"])
        mm.create_outgoing_webhook(channel="quality", trigger_words=["qa"],
                                   callback_urls=[receiver.url + "/channel-word"])
        messages = [("town-square", "build now"), ("town-square", "builds now"),
                    ("town-square", "Build now"), ("town-square", "now build"),
                    ("town-square", "deploy now"), ("town-square", "qa here"),
                    ("quality", "anything"), ("quality", "qa there")]
        for channel, message in messages:
            await mm.post_as("kim", channel, message)
        await settle(mm, 5)
    seen = sorted((r.path, r.field("text"), r.field("trigger_word")) for r in receiver.requests)
    assert seen == [
        ("/channel", "anything", ""), ("/channel", "qa there", ""),
        ("/channel-word", "qa there", "qa"),
        ("/exact", "build now", "build"), ("/prefix", "deploy now", "dep"),
    ]


async def test_only_public_channels_fire(mm):
    """Posts in private, direct and group channels never call an outgoing webhook."""
    async with open_receiver() as receiver:
        mm.create_outgoing_webhook(trigger_words=["go"], callback_urls=[receiver.url])
        await mm.post_as("kim", "defects", "go private")
        dm = await mm.dm_channel("kim", "lee")
        await mm.post_as("kim", dm.id, "go direct")
        group = next(c for c in mm.state.channels.values() if c.type == "G")
        await mm.post_as("kim", group.id, "go group")
        await mm.post_as("kim", "town-square", "go public")
        await settle(mm, 1)
    assert [r.field("text") for r in receiver.requests] == ["go public"]


async def test_system_and_webhook_posts_do_not_fire(mm):
    """Join messages and the hook's own reply (which starts with the trigger word) do not
    call the hook again."""
    async with open_receiver() as receiver:
        receiver.respond = lambda _r: json_reply({"text": "echo again"})
        mm.create_outgoing_webhook(channel="quality", callback_urls=[receiver.url])
        await mm.add_member("quality", "choi")
        await mm.post_as("kim", "quality", "echo")
        await settle(mm, 1)
    assert [r.field("text") for r in receiver.requests] == ["echo"]
    assert [p["message"] for p in mm.posts("quality")] == [
        "choi joined the channel.", "echo", "echo again"]


@pytest.mark.parametrize(("reply", "outcome", "posted"), [
    (json_reply({"text": "posted anyway"}, status=500), "posted", ["posted anyway"]),
    ((200, "application/json", b""), "no post", []),
    ((200, "application/json", b"  \n"), "no post", []),
    ((200, "application/json", b"{oops"), "invalid json", []),
    ((200, "text/plain", b"plain words"), "invalid json", []),
    (json_reply({"username": "x"}), "no post", []),
    (json_reply({"text": 3}), "invalid json", []),
    (json_reply({"attachments": [{"text": "card"}]}), "posted", [""]),
])
async def test_reply_handling(mm, reply, outcome, posted):
    """The status is ignored; only a JSON body with text or attachments makes a post."""
    async with open_receiver() as receiver:
        receiver.respond = lambda _r: reply
        mm.create_outgoing_webhook(trigger_words=["ask"], callback_urls=[receiver.url])
        await mm.post_as("kim", "town-square", "ask something")
        await settle(mm, 1)
    assert [d.outcome for d in mm.hooks.deliveries] == [outcome]
    assert [p["message"] for p in mm.posts("town-square")][1:] == posted


async def test_every_callback_url_is_called_concurrently(mm):
    """Two URLs of one hook are called at the same time; each reply is posted."""
    async with open_receiver() as receiver:
        receiver.delay_s = 0.5
        receiver.respond = lambda r: json_reply({"text": f"from {r.path}"})
        mm.create_outgoing_webhook(trigger_words=["both"],
                                   callback_urls=[receiver.url + "/a", receiver.url + "/b"])
        started = trio.current_time()
        await mm.post_as("kim", "town-square", "both please")
        await settle(mm, 2)
        elapsed = trio.current_time() - started
    assert elapsed < 0.95  # one after the other would take 1 s
    assert sorted(p["message"] for p in mm.posts("town-square")[1:]) == ["from /a", "from /b"]


async def test_callback_timeout_is_the_servers_30_seconds(mm, autojump_clock):
    """A callback slower than 30 s is abandoned (logged and recorded), nothing is posted."""
    async with open_receiver() as receiver:
        receiver.delay_s = 31
        receiver.respond = lambda _r: json_reply({"text": "too late"})
        mm.create_outgoing_webhook(trigger_words=["slow"], callback_urls=[receiver.url])
        started = trio.current_time()
        await mm.post_as("kim", "town-square", "slow one")
        await settle(mm, 1)
        assert 30 <= trio.current_time() - started < 31
    assert [d.outcome for d in mm.hooks.deliveries] == ["timeout"]
    assert len(mm.posts("town-square")) == 1


async def test_timeout_is_configurable(autojump_clock):
    """``FakeMattermost(integration_timeout_s=...)`` shortens the wait; a reply within it is
    still posted."""
    async with FakeMattermost(integration_timeout_s=2) as mm, open_receiver() as receiver:
        receiver.delay_s = 1.5
        receiver.respond = lambda _r: json_reply({"text": "in time"})
        mm.create_outgoing_webhook(trigger_words=["t"], callback_urls=[receiver.url])
        await mm.post_as("kim", "town-square", "t one")
        await settle(mm, 1)
        receiver.delay_s = 2.5
        await mm.post_as("kim", "town-square", "t two")
        await settle(mm, 2)
    assert [d.outcome for d in mm.hooks.deliveries] == ["posted", "timeout"]


async def test_an_unreachable_callback_is_recorded(mm):
    """A refused connection is logged and recorded as ``error``."""
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mm.create_outgoing_webhook(trigger_words=["x"], callback_urls=[f"http://127.0.0.1:{port}/"])
    await mm.post_as("kim", "town-square", "x marks")
    await settle(mm, 1)
    assert [d.outcome for d in mm.hooks.deliveries] == ["error"]


async def test_creation_rules(mm):
    """Private channels are 403; a hook needs a channel or trigger words and valid URLs."""
    url = ["http://127.0.0.1:9/"]
    cases = [
        ({"channel": "defects", "callback_urls": url}, 403,
         "api.webhook.create_outgoing.not_open.app_error"),
        ({"callback_urls": url}, 400, "api.webhook.create_outgoing.triggers.app_error"),
        ({"trigger_words": ["a"], "callback_urls": ["ftp://x"]}, 400,
         "model.outgoing_hook.is_valid.callback.app_error"),
        ({"trigger_words": ["a"]}, 400, "model.outgoing_hook.is_valid.callback.app_error"),
        ({"trigger_words": ["a"], "trigger_when": 2, "callback_urls": url}, 400,
         "model.outgoing_hook.is_valid.trigger_when.app_error"),
    ]
    for kwargs, status, error_id in cases:
        with pytest.raises(AppError) as caught:
            mm.create_outgoing_webhook(**kwargs)
        assert (caught.value.status, caught.value.error_id) == (status, error_id)


async def test_control_api_registers_hooks_and_lists_deliveries(mm, client):
    """POST /_fake/outgoing_webhooks registers a hook (token included); GET
    /_fake/deliveries lists the calls."""
    async with open_receiver() as receiver:
        created = await client.post("/_fake/outgoing_webhooks", json={
            "trigger_words": ["ping"], "callback_urls": [receiver.url],
            "content_type": "application/json", "token": "tok123"})
        assert created.status_code == 201 and created.json()["token"] == "tok123"
        await mm.post_as("kim", "town-square", "ping")
        await settle(mm, 1)
    (delivery,) = (await client.get("/_fake/deliveries")).json()
    assert delivery["kind"] == "outgoing" and delivery["outcome"] == "no post"
    assert json.loads(delivery["body"])["token"] == "tok123"
    bad = await client.post("/_fake/outgoing_webhooks", json={"callback_urls": "x"})
    assert (bad.status_code, bad.json()["id"]) == (400, "api.fake.control.invalid")
    refused = await client.post("/_fake/outgoing_webhooks", json={
        "channel": "defects", "callback_urls": [receiver.url]})
    assert refused.status_code == 403
