"""Custom slash commands of the fake server: the call out, the answers, ``response_url``."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from mchat_actors.testing import AppError, FakeMattermost

from .test_hooks import json_reply, open_receiver
from .wsutil import auth, connect, hello, next_event, ping_barrier

EXECUTE = "/api/v4/commands/execute"
FORM_KEYS = {"token", "team_id", "team_domain", "channel_id", "channel_name", "user_id",
             "user_name", "command", "text", "trigger_id", "response_url"}


async def execute(client, mm: FakeMattermost, user: str, channel: str, command: str,
                  **extra: str):
    return await client.post(EXECUTE, headers=auth(mm.user(user).token), json={
        "channel_id": mm.channel(channel).id, "command": command, **extra})


async def test_form_fields_and_in_channel_answer(mm, client):
    """The URL gets every form field and ``Authorization: Token``; an in_channel answer is a
    post by the invoking user, and the endpoint answers 200 with the CommandResponse."""
    async with open_receiver() as receiver:
        receiver.respond = lambda _r: json_reply({"response_type": "in_channel",
                                                  "text": "기억했어요"})
        cmd = mm.create_slash_command("remember", receiver.url + "/slash", creator="mchat-bot")
        async with connect(mm, mm.bot_token) as ws:
            await hello(ws)
            response = await execute(client, mm, "kim", "town-square",
                                     "/remember X부품 불량률 12%")
            posted = await next_event(ws, "posted")
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_type"] == "in_channel" and answer["text"] == "기억했어요"
    assert answer["trigger_id"] and "extra_responses" in answer
    (request,) = receiver.requests
    assert request.path == "/slash" and request.method == "POST"
    assert request.headers["authorization"] == f"Token {cmd['token']}"
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in request.form().items()}
    assert set(form) == FORM_KEYS
    assert form["token"] == cmd["token"] and form["team_domain"] == "qa"
    assert (form["command"], form["text"]) == ("/remember", "X부품 불량률 12%")
    assert (form["user_name"], form["channel_name"]) == ("kim", "town-square")
    assert form["response_url"].startswith(f"{mm.url}/hooks/commands/")
    post = json.loads(posted["data"]["post"])
    assert post["message"] == "기억했어요" and post["user_id"] == mm.user("kim").id
    assert post["props"] == {"from_webhook": "true"} and post["root_id"] == ""


async def test_ephemeral_answer_reaches_the_invoker_only(mm, client):
    """An ephemeral answer is an ``ephemeral_message`` to the invoker; nobody else sees it
    and nothing is stored."""
    async with open_receiver() as receiver:
        receiver.respond = lambda _r: json_reply({"text": "only for you"})
        mm.create_slash_command("whisper", receiver.url)
        async with connect(mm, mm.user("kim").token) as kim, \
                connect(mm, mm.user("lee").token) as lee:
            await hello(kim)
            await hello(lee)
            response = await execute(client, mm, "kim", "town-square", "/whisper")
            event = await next_event(kim, "ephemeral_message")
            assert [f.get("event") for f in await ping_barrier(lee, 1)] == []
    assert response.json()["text"] == "only for you"
    post = json.loads(event["data"]["post"])
    assert (post["type"], post["message"], post["user_id"]) == (
        "system_ephemeral", "only for you", mm.user("kim").id)
    assert event["broadcast"]["user_id"] == mm.user("kim").id
    assert mm.posts("town-square") == []


async def test_plain_text_answers_are_ephemeral(mm, client):
    """A non-JSON content type makes the whole body the ephemeral text; an empty body
    shows nothing."""
    async with open_receiver() as receiver:
        mm.create_slash_command("plain", receiver.url)
        receiver.respond = lambda _r: (200, "text/plain; charset=utf-8", b"just words")
        async with connect(mm, mm.user("kim").token) as ws:
            await hello(ws)
            assert (await execute(client, mm, "kim", "town-square", "/plain")).json()[
                "text"] == "just words"
            event = await next_event(ws, "ephemeral_message")
            assert json.loads(event["data"]["post"])["message"] == "just words"
            receiver.respond = lambda _r: (200, "text/plain", b"")
            await execute(client, mm, "kim", "town-square", "/plain")
            assert await ping_barrier(ws, 1) == []


async def test_threaded_command_and_extra_responses(mm, client):
    """Run in a thread, the in_channel post is a reply; extra_responses are handled too."""
    async with open_receiver() as receiver:
        receiver.respond = lambda _r: json_reply({
            "response_type": "in_channel", "text": "first",
            "extra_responses": [{"response_type": "in_channel", "text": "second"},
                                {"text": "private note"}]})
        mm.create_slash_command("multi", receiver.url)
        root = await mm.post_as("kim", "town-square", "a thread")
        response = await execute(client, mm, "kim", "town-square", "/multi", root_id=root["id"])
    assert response.status_code == 200
    replies = mm.posts("town-square")[1:]
    assert [(p["message"], p["root_id"]) for p in replies] == [
        ("first", root["id"]), ("second", root["id"])]


async def test_get_method_sends_the_query_string(mm, client):
    """A ``G`` command is a GET with the form values appended to its URL's query."""
    async with open_receiver() as receiver:
        receiver.respond = lambda _r: json_reply({"text": "ok"})
        mm.create_slash_command("look", receiver.url + "/get?fixed=1", method="G")
        await execute(client, mm, "lee", "quality", "/look here")
    (request,) = receiver.requests
    assert request.method == "GET" and request.body == b""
    assert request.field("fixed") == "1" and request.field("text") == "here"
    assert request.field("channel_name") == "quality"


async def test_mentions_are_listed(mm, client):
    """Team members mentioned with @ and public channels with ~ get the mention fields."""
    async with open_receiver() as receiver:
        receiver.respond = lambda _r: json_reply({})
        mm.create_slash_command("tell", receiver.url)
        await execute(client, mm, "kim", "town-square",
                      "/tell @lee. and @nobody about ~quality and ~defects")
    form = receiver.requests[0].form()
    assert form["user_mentions"] == ["lee"]
    assert form["user_mentions_ids"] == [mm.user("lee").id]
    assert form["channel_mentions"] == ["quality"]
    assert form["channel_mentions_ids"] == [mm.channel("quality").id]


@pytest.mark.parametrize(("reply", "error_id"), [
    (json_reply({"text": "x"}, status=404), "api.command.execute_command.failed_resp.app_error"),
    ((200, "application/json", b"{broken"), "api.command.execute_command.failed.app_error"),
    ((200, "application/json", b""), "api.command.execute_command.failed.app_error"),
    (json_reply({"response_type": "in_channel", "text": "x" * 16384}),
     "api.command.execute_command.create_post_failed.app_error"),
    (json_reply({"response_type": "in_channel", "text": "x", "channel_id": "q" * 26}),
     "api.command.execute_command.create_post_failed.app_error"),
])
async def test_failed_commands_are_500(mm, client, reply, error_id):
    """A non-200 status, invalid JSON or an answer that cannot be posted is a 500."""
    async with open_receiver() as receiver:
        receiver.respond = lambda _r: reply
        mm.create_slash_command("fail", receiver.url)
        response = await execute(client, mm, "kim", "town-square", "/fail now")
    assert (response.status_code, response.json()["id"]) == (500, error_id)


async def test_slow_command_times_out_after_30_seconds(mm, client, autojump_clock):
    """No answer within the server's timeout is ``failed.app_error``."""
    async with open_receiver() as receiver:
        receiver.delay_s = 31
        mm.create_slash_command("slow", receiver.url)
        started = trio.current_time()
        response = await execute(client, mm, "kim", "town-square", "/slow")
        assert 30 <= trio.current_time() - started < 31
    assert (response.status_code, response.json()["id"]) == (
        500, "api.command.execute_command.failed.app_error")
    assert [d.outcome for d in mm.hooks.deliveries] == ["timeout"]


async def test_bad_invocations(mm, client):
    """No trigger is 400, an unknown trigger 404, a channel the user is not in 403."""
    async with open_receiver() as receiver:
        mm.create_slash_command("known", receiver.url)
        cases = [
            ("kim", "town-square", "/", {}, 400, "api.command.execute_command.start.app_error"),
            ("kim", "town-square", "known", {}, 400,
             "api.command.execute_command.start.app_error"),
            ("kim", "town-square", "/unknown x", {}, 404,
             "api.command.execute_command.not_found.app_error"),
            ("park", "defects", "/known", {}, 403, "api.context.permissions.app_error"),
        ]
        for user, channel, command, extra, status, error_id in cases:
            response = await execute(client, mm, user, channel, command, **extra)
            assert (response.status_code, response.json()["id"]) == (status, error_id), command
        bad = await client.post(EXECUTE, headers=auth(mm.bot_token), content=b"[1]")
        assert bad.status_code == 400
        anonymous = await client.post(EXECUTE, json={"channel_id": "x", "command": "/known"})
        assert anonymous.status_code == 401
    assert receiver.requests == []


async def test_response_url_posts_later_answers(mm, client):
    """``response_url`` takes JSON and plain-text CommandResponses, 5 times."""
    async with open_receiver() as receiver:
        receiver.respond = lambda _r: json_reply({})
        mm.create_slash_command("later", receiver.url)
        await execute(client, mm, "kim", "quality", "/later")
    url = receiver.requests[0].field("response_url")
    async with connect(mm, mm.user("kim").token) as ws:
        await hello(ws)
        first = await client.post(url, json={"response_type": "in_channel", "text": "done"})
        assert (first.status_code, first.text) == (200, "ok")
        plain = await client.post(url, content=b"private", headers={"Content-Type": "text/plain"})
        assert plain.status_code == 200
        assert json.loads((await next_event(ws, "ephemeral_message"))["data"]["post"])[
            "message"] == "private"
    assert [p["message"] for p in mm.posts("quality")] == ["done"]
    for _ in range(3):
        assert (await client.post(url, json={"text": "more"})).status_code == 200
    sixth = await client.post(url, json={"text": "too many"})
    assert (sixth.status_code, sixth.json()["id"]) == (400, "app.command_webhook.try_use.invalid")
    garbled = await client.post(url, content=b"{", headers={"Content-Type": "application/json"})
    assert (garbled.status_code, garbled.json()["id"]) == (
        400, "web.command_webhook.parse.app_error")
    unknown = await client.post(f"{mm.url}/hooks/commands/{'z' * 26}", json={"text": "x"})
    assert (unknown.status_code, unknown.json()["id"]) == (404, "app.command_webhook.get.missing")


async def test_response_url_expires_after_30_minutes(mm, client, autojump_clock):
    """After 30 minutes the response_url is 404.

    The test needs 31 virtual minutes, more than the per-test guard of conftest allows, so
    it shields itself from that guard and sets its own.
    """
    with trio.CancelScope(shield=True), trio.fail_after(35 * 60):
        async with open_receiver() as receiver:
            receiver.respond = lambda _r: json_reply({})
            mm.create_slash_command("expire", receiver.url)
            await execute(client, mm, "kim", "quality", "/expire")
        url = receiver.requests[0].field("response_url")
        await trio.sleep(29 * 60)
        assert (await client.post(url, json={"text": "still fine"})).status_code == 200
        await trio.sleep(61)
        late = await client.post(url, json={"text": "too late"})
    assert (late.status_code, late.json()["id"]) == (404, "app.command_webhook.get.missing")


async def test_python_api_and_control_api(mm, client):
    """``run_slash_command`` behaves like the endpoint; /_fake/commands registers one."""
    async with open_receiver() as receiver:
        receiver.respond = lambda r: json_reply({"response_type": "in_channel",
                                                 "text": f"echo {r.field('text')}"})
        created = await client.post("/_fake/commands", json={
            "trigger": "Echo", "url": receiver.url, "token": "cmdtoken"})
        assert created.status_code == 201 and created.json()["trigger"] == "echo"
        answer = await mm.run_slash_command("lee", "town-square", "/ECHO hi")
        assert answer["text"] == "echo hi"
        with pytest.raises(AppError) as caught:
            await mm.run_slash_command("lee", "town-square", "/nothing")
        assert caught.value.status == 404
    assert receiver.requests[0].headers["authorization"] == "Token cmdtoken"
    assert mm.posts("town-square")[-1]["message"] == "echo hi"
    duplicate = await client.post("/_fake/commands", json={"trigger": "echo", "url": receiver.url})
    assert (duplicate.status_code, duplicate.json()["id"]) == (
        400, "api.command.duplicate_trigger.app_error")


async def test_in_channel_answers_trigger_outgoing_webhooks(mm, client):
    """An in_channel answer is a normal user post: it can fire an outgoing webhook."""
    async with open_receiver() as receiver:
        receiver.respond = lambda r: (json_reply({"response_type": "in_channel",
                                                  "text": "deploy started"})
                                      if r.path == "/cmd" else json_reply({}))
        mm.create_slash_command("ship", receiver.url + "/cmd")
        mm.create_outgoing_webhook(trigger_words=["deploy"], callback_urls=[receiver.url + "/out"])
        await execute(client, mm, "kim", "town-square", "/ship")
        await mm.wait_for(lambda: len(mm.hooks.deliveries) == 2)
        await trio.testing.wait_all_tasks_blocked()
    assert [r.path for r in receiver.requests] == ["/cmd", "/out"]
