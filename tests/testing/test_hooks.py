"""Incoming webhooks of the fake server (``POST /hooks/{id}``), and the callback receiver the
outgoing-webhook and slash-command tests share (a hypercorn server on 127.0.0.1:0)."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import attrs
import httpx
import trio
import trio.testing
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from mchat_actors.testing import FakeMattermost

from .wsutil import connect, hello, next_event

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

Reply = tuple[int, str, bytes]  # status, content type, body


def json_reply(obj: object, status: int = 200) -> Reply:
    return status, "application/json", json.dumps(obj).encode()


@attrs.frozen
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.query if self.method == "GET" else self.body.decode(),
                        keep_blank_values=True)

    def field(self, name: str) -> str:
        (value,) = self.form()[name]
        return value


@attrs.define(eq=False)
class Receiver:
    """Records every request; answers with ``respond(request)`` after ``delay_s``."""

    url: str = ""
    requests: list[Received] = attrs.Factory(list)
    respond: Callable[[Received], Reply] = lambda _request: (200, "text/plain", b"")
    delay_s: float = 0.0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = Received(scope["method"], scope["path"], scope["query_string"].decode(),
                           {k.decode().lower(): v.decode() for k, v in scope["headers"]}, body)
        self.requests.append(request)
        if self.delay_s:
            await trio.sleep(self.delay_s)
        status, content_type, payload = self.respond(request)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type.encode())]})
        await send({"type": "http.response.body", "body": payload})


@asynccontextmanager
async def open_receiver() -> AsyncIterator[Receiver]:
    """A receiver on 127.0.0.1:0, stopped when the block ends."""
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.graceful_timeout = 0.5
    config.keep_alive_timeout = 3600  # slow answers under the autojump clock stay connected
    receiver = Receiver()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, receiver, config)
        receiver.url = binds[0]
        yield receiver
        nursery.cancel_scope.cancel()


# -- incoming webhooks -------------------------------------------------------------------------


async def test_incoming_json_posts_to_the_default_channel(mm, client):
    """A JSON body posts as the hook's creator with the webhook props; 200 text/plain ok."""
    hook = mm.create_incoming_webhook("town-square", creator="kim", display_name="CI")
    async with connect(mm, mm.bot_token) as ws:
        await hello(ws)
        response = await client.post(f"/hooks/{hook['id']}", json={"text": "build ok"})
        assert (response.status_code, response.text) == (200, "ok")
        assert response.headers["content-type"] == "text/plain"
        event = await next_event(ws, "posted")
    post = json.loads(event["data"]["post"])
    assert post["message"] == "build ok" and post["user_id"] == mm.user("kim").id
    assert post["props"] == {"from_webhook": "true", "webhook_display_name": "CI"}
    assert post["channel_id"] == mm.channel("town-square").id
    assert "override_username" not in post["props"]  # overrides are off by default


async def test_incoming_form_payload_and_multipart_fields(mm, client):
    """``payload`` in a urlencoded form, and multipart form fields, are accepted."""
    hook = mm.create_incoming_webhook("quality")
    form = await client.post(f"/hooks/{hook['id']}",
                             data={"payload": json.dumps({"text": "from a form"})})
    multipart = await client.post(f"/hooks/{hook['id']}",
                                  files={"text": (None, "from multipart"),
                                         "channel": (None, "town-square")})
    assert (form.status_code, multipart.status_code) == (200, 200)
    assert [p["message"] for p in mm.posts("quality")] == ["from a form"]
    assert [p["message"] for p in mm.posts("town-square")] == ["from multipart"]


async def test_incoming_channel_resolution(mm, client):
    """``#name`` and ``name`` are channels of the hook's team, ``@user`` the DM with the
    creator; unknown ones are 404 and 400."""
    hook = mm.create_incoming_webhook("town-square", creator="kim")
    url = f"/hooks/{hook['id']}"
    for channel in ("#quality", "quality", "@lee"):
        assert (await client.post(url, json={"text": channel, "channel": channel})).text == "ok"
    assert [p["message"] for p in mm.posts("quality")] == ["#quality", "quality"]
    dm = mm.state.find_direct(mm.user("kim").id, mm.user("lee").id)
    assert dm is not None and [p["message"] for p in mm.posts(dm.id)] == ["@lee"]
    missing = await client.post(url, json={"text": "x", "channel": "nope"})
    assert (missing.status_code, missing.json()["id"]) == (
        404, "web.incoming_webhook.channel.app_error")
    nobody = await client.post(url, json={"text": "x", "channel": "@nobody"})
    assert (nobody.status_code, nobody.json()["id"]) == (400, "web.incoming_webhook.user.app_error")


async def test_incoming_locked_hook_and_unreadable_channel_are_403(mm, client):
    """A channel-locked hook refuses other channels; a creator who cannot read a private
    channel cannot post there."""
    locked = mm.create_incoming_webhook("town-square", channel_locked=True)
    response = await client.post(f"/hooks/{locked['id']}", json={"text": "x", "channel": "quality"})
    assert (response.status_code, response.json()["id"]) == (
        403, "web.incoming_webhook.channel_locked.app_error")
    assert (await client.post(f"/hooks/{locked['id']}", json={"text": "ok"})).status_code == 200
    outsider = mm.create_incoming_webhook("town-square", creator="park")
    private = await client.post(f"/hooks/{outsider['id']}",
                                json={"text": "x", "channel": "defects"})
    assert (private.status_code, private.json()["id"]) == (
        403, "web.incoming_webhook.permissions.app_error")


async def test_incoming_bad_requests_get_the_servers_errors(mm, client):
    """No text, unknown hook, bad JSON, null, a bad id and a system type are refused."""
    hook = mm.create_incoming_webhook("town-square")
    url = f"/hooks/{hook['id']}"
    cases = [
        (url, {"json": {"channel": "quality"}}, 400, "web.incoming_webhook.text.app_error"),
        ("/hooks/" + "x" * 26, {"json": {"text": "x"}}, 400,
         "web.incoming_webhook.invalid.app_error"),
        (url, {"content": b"{not json"}, 400, "model.incoming_hook.parse_data.app_error"),
        (url, {"json": {"text": 5}}, 400, "model.incoming_hook.parse_data.app_error"),
        (url, {"content": b"null"}, 400, "web.incoming_webhook.parse.app_error"),
        (url, {"data": {"other": "x"}}, 400, "model.incoming_hook.parse_data.app_error"),
        ("/hooks/bad-id!", {"json": {"text": "x"}}, 404, "api.context.404.app_error"),
        (url, {"json": {"text": "x", "type": "system_join_channel"}}, 400,
         "api.context.invalid_param.app_error"),
        (url, {"json": {"text": "x", "priority": {"requested_ack": True}}}, 400,
         "api.context.invalid_param.app_error"),
    ]
    for path, kwargs, status, error_id in cases:
        response = await client.post(path, **kwargs)
        assert (response.status_code, response.json()["id"]) == (status, error_id), kwargs
    assert mm.posts("town-square") == []


async def test_incoming_raw_newlines_in_text_are_forgiven(mm, client):
    """Invalid JSON with raw newlines/tabs inside ``text`` is retried escaped, as the server
    does."""
    hook = mm.create_incoming_webhook("town-square")
    response = await client.post(f"/hooks/{hook['id']}",
                                 content=b'{"text": "line one\nline\ttwo"}')
    assert response.status_code == 200
    assert mm.posts("town-square")[0]["message"] == "line one\nline\ttwo"


async def test_incoming_attachments_make_a_slack_attachment_post(mm, client):
    """Attachments alone are enough; the post type is slack_attachment, links become
    Markdown and null fields are dropped."""
    hook = mm.create_incoming_webhook("town-square")
    attachment = {"fallback": "f", "text": "see <https://ci.example/1|build 1>",
                  "fields": [{"title": "t", "value": "<https://x.example|x>", "short": True},
                             None]}
    response = await client.post(f"/hooks/{hook['id']}", json={"attachments": [attachment]})
    assert response.status_code == 200
    (post,) = mm.posts("town-square")
    assert post["type"] == "slack_attachment" and post["message"] == ""
    (stored,) = post["props"]["attachments"]
    assert stored["text"] == "see [build 1](https://ci.example/1)"
    assert stored["fields"] == [{"title": "t", "value": "[x](https://x.example)", "short": True}]


async def test_incoming_slack_markup_is_rewritten(mm, client):
    """``<!channel>``, ``<@user_id>`` and ``<url|text>`` become Mattermost Markdown."""
    hook = mm.create_incoming_webhook("town-square")
    text = f"<!channel> <@{mm.user('lee').id}> see <https://x.example/a|the report>"
    await client.post(f"/hooks/{hook['id']}", json={"text": text})
    assert mm.posts("town-square")[0]["message"] == (
        "@channel @lee see [the report](https://x.example/a)")


async def test_incoming_props_and_overrides_when_enabled():
    """With overrides on: override_username (request, else hook, else "webhook"), icon URL
    and emoji; request props are kept but cannot forge from_webhook or the overrides."""
    async with FakeMattermost(enable_post_overrides=True) as mm:
        named = mm.create_incoming_webhook("town-square", username="ci-bot",
                                           icon_url="https://x.example/i.png")
        plain = mm.create_incoming_webhook("town-square")
        async with httpx.AsyncClient(base_url=mm.url) as client:
            await client.post(f"/hooks/{named['id']}", json={"text": "a"})
            await client.post(f"/hooks/{named['id']}", json={
                "text": "b", "username": "deploy", "icon_emoji": ":rocket:",
                "props": {"card": "details", "from_webhook": "false",
                          "override_username": "forged"}})
            await client.post(f"/hooks/{plain['id']}", json={"text": "c"})
    a, b, c = (p["props"] for p in mm.posts("town-square"))
    assert a == {"from_webhook": "true", "webhook_display_name": "",
                 "override_username": "ci-bot", "override_icon_url": "https://x.example/i.png"}
    assert b["override_username"] == "deploy" and b["override_icon_emoji"] == ":rocket:"
    assert b["card"] == "details" and b["from_webhook"] == "true"
    assert c["override_username"] == "webhook" and "override_icon_url" not in c


async def test_incoming_long_text_is_split_at_max_post_size(mm, client):
    """Text over 16383 runes becomes several posts, cut at rune boundaries."""
    hook = mm.create_incoming_webhook("town-square")
    text = "가" * 16383 + "나" * 16383 + "다"
    assert (await client.post(f"/hooks/{hook['id']}", json={"text": text})).status_code == 200
    assert [p["message"] for p in mm.posts("town-square")] == ["가" * 16383, "나" * 16383, "다"]


async def test_incoming_posts_never_trigger_outgoing_webhooks(mm, client):
    """A webhook post starting with a trigger word calls no outgoing webhook; a user's does."""
    async with open_receiver() as receiver:
        mm.create_outgoing_webhook(trigger_words=["deploy"], callback_urls=[receiver.url])
        hook = mm.create_incoming_webhook("town-square")
        await client.post(f"/hooks/{hook['id']}", json={"text": "deploy from a webhook"})
        await mm.post_as("kim", "town-square", "deploy from kim")
        await mm.wait_for(lambda: mm.hooks.deliveries)
        await trio.testing.wait_all_tasks_blocked()
    assert [r.field("text") for r in receiver.requests] == ["deploy from kim"]


async def test_incoming_goes_through_the_server_pipeline(mm, client):
    """``/hooks`` is rate limited like every route (429 plain text) and a body over
    300 000 bytes is 413."""
    hook = mm.create_incoming_webhook("town-square")
    url = f"/hooks/{hook['id']}"
    too_big = await client.post(url, json={"text": "x" * 301_000})
    assert (too_big.status_code, too_big.json()["id"]) == (
        413, "api.context.request_body_too_large.app_error")
    mm.set_rate_limit(1, burst=1)
    answers = [await client.post(url, json={"text": "again"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[-1].text == "limit exceeded\n"
