from __future__ import annotations

from urllib.parse import urlencode

import attrs
import httpx
import trio

from mchat_actors.http.slash import HELP, STILL_WORKING, SYNC_OFF, UNAVAILABLE, WORKING
from tests.fakes import FakeChat
from tests.http.conftest import (
    WEBHOOK_TOKEN,
    make_config,
    open_harness,
    open_receiver,
    poll_until,
)

URL = "/mchat/slash"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def form(command="/remember", text="the wifi password is on the fridge", channel="c1",
         **extra) -> str:
    return urlencode({"token": WEBHOOK_TOKEN, "team_id": "team1", "team_domain": "team",
                      "channel_id": channel, "channel_name": channel, "user_id": "u1",
                      "user_name": "kim", "command": command, "text": text,
                      "trigger_id": "t1", **extra})


async def test_remember_is_answered_in_channel(harness):
    """A fast command answers in the channel, marked so the bot ignores the echo post."""
    r = await harness.client.post(URL, content=form(), headers=FORM)
    assert r.status_code == 200
    assert r.json() == {"response_type": "in_channel",
                        "text": "🤖 answer to: /remember the wifi password is on the fridge"}
    (post_id,) = [pid for _room, pid in harness.chat.calls]
    assert post_id.startswith("slash-")
    assert harness.chat.messages[post_id].content == (
        "/remember the wifi password is on the fridge")
    assert harness.replies == []  # Mattermost posts it from the response


class PrivateChat(FakeChat):
    async def send_message(self, *args, **kwargs):
        return attrs.evolve(await super().send_message(*args, **kwargs), ephemeral=True)


async def test_search_results_are_ephemeral(tmp_path):
    """A result the ChatService marks private is answered only to the asker."""
    async with open_harness(make_config(tmp_path), chat=PrivateChat()) as h:
        r = await h.client.post(URL, content=form("/search", "wifi"), headers=FORM)
    assert r.json() == {"response_type": "ephemeral", "text": "answer to: /search wifi"}


async def test_a_command_under_another_trigger_reads_the_first_word(harness):
    """``/ai memory`` is the /memory command; ``/ai hello`` gets the help text."""
    r = await harness.client.post(URL, content=form("/ai", "memory"), headers=FORM)
    assert r.json()["text"] == "🤖 answer to: /memory"
    r = await harness.client.post(URL, content=form("/ai", "hello there"), headers=FORM)
    assert r.json() == {"response_type": "ephemeral", "text": HELP}
    r = await harness.client.post(URL, content=form("/help", ""), headers=FORM)
    assert r.json() == {"response_type": "ephemeral", "text": HELP}


async def test_the_authorization_header_token_is_accepted(harness):
    """Mattermost also sends ``Authorization: Token <t>``; either place works."""
    body = form(token="")
    r = await harness.client.post(URL, content=body, headers=FORM)
    assert r.status_code == 401
    r = await harness.client.post(URL, content=body,
                                  headers={**FORM, "Authorization": f"Token {WEBHOOK_TOKEN}"})
    assert r.status_code == 200
    r = await harness.client.post(URL, content=form(token="wrong"), headers=FORM)
    assert r.status_code == 401


async def test_bad_slash_requests_are_refused(harness):
    """JSON is 415, malformed forms and missing fields 400, GET 405."""
    r = await harness.client.post(URL, json={"token": WEBHOOK_TOKEN})
    assert r.status_code == 415
    r = await harness.client.post(URL, content=b"a&b", headers=FORM)
    assert r.status_code == 400
    r = await harness.client.post(URL, content=urlencode({"token": WEBHOOK_TOKEN}),
                                  headers=FORM)
    assert r.status_code == 400
    assert "command" in r.json()["detail"]
    r = await harness.client.get(URL)
    assert r.status_code == 405
    assert r.json()["error"] == "method not allowed"


async def test_sync_off_unknown_channel_and_failures_answer_ephemerally(harness):
    """Problems are short private answers, never an error status or a traceback."""
    await harness.client.post(URL, content=form(), headers=FORM)
    await harness.rt.mapper.set_sync("c1", False)
    r = await harness.client.post(URL, content=form(), headers=FORM)
    assert r.json() == {"response_type": "ephemeral", "text": SYNC_OFF}
    r = await harness.client.post(URL, content=form(channel="missing-1"), headers=FORM)
    assert r.json() == {"response_type": "ephemeral", "text": UNAVAILABLE}
    harness.chat.fail_rooms.add("c2")
    r = await harness.client.post(URL, content=form(channel="c2"), headers=FORM)
    assert r.json()["response_type"] == "ephemeral"
    assert "Sorry" in r.json()["text"]


def on_server(config, url: str):
    """``config`` with MCHAT_URL = ``url`` (response_url must be on the server's origin)."""
    return attrs.evolve(config, mattermost=attrs.evolve(config.mattermost, url=url))


async def test_slow_command_answers_later_through_response_url(tmp_path):
    """Past 2.5 s the user sees "working on it"; the answer is POSTed to response_url."""
    async with open_receiver() as receiver, httpx.AsyncClient() as pool, open_harness(
            on_server(make_config(tmp_path), receiver.url), http_client=pool) as h:
        h.app.state.surface.slash_answer_within_s = 0.2
        h.chat.hang_rooms["slow"] = 0.6
        r = await h.client.post(URL, content=form(channel="slow",
                                                  response_url=receiver.url + "/hooks/x"),
                                headers=FORM)
        assert r.json() == {"response_type": "ephemeral", "text": WORKING}
        with trio.fail_after(5):
            await receiver.arrived.wait()
        await poll_until(lambda: h.app.state.surface.stats.response_url_posts)
        assert receiver.bodies == [{"response_type": "in_channel", "text":
                                    "🤖 answer to: /remember the wifi password is on the "
                                    "fridge"}]
        assert h.app.state.surface.stats.response_url_posts["ok"] == 1


async def test_a_slow_command_without_response_url_waits_then_says_so(tmp_path):
    """Without a response_url there is nowhere to answer later: wait, then say so."""
    async with open_harness(make_config(tmp_path)) as h:
        s = h.app.state.surface
        s.slash_answer_within_s, s.slash_max_wait_s = 0.1, 0.3
        h.chat.hang_rooms["slow"] = 0.6
        r = await h.client.post(URL, content=form(channel="slow"), headers=FORM)
        assert r.json() == {"response_type": "ephemeral", "text": STILL_WORKING}
        r = await h.client.post(URL, content=form(channel="c1"), headers=FORM)
        assert r.json()["response_type"] == "in_channel"


async def test_without_a_background_nursery_commands_are_answered_inline(tmp_path):
    """An app built without a nursery (unit use) still answers, waiting for the result."""
    async with open_harness(make_config(tmp_path), background=False) as h:
        h.app.state.surface.slash_answer_within_s = 0.05
        h.chat.hang_rooms["slow"] = 0.2
        r = await h.client.post(URL, content=form(channel="slow",
                                                  response_url="http://127.0.0.1:9/x"),
                                headers=FORM)
        assert r.json()["response_type"] == "in_channel"


async def test_an_unreachable_response_url_is_counted_not_raised(tmp_path):
    """A failing response_url is logged and counted; the service keeps going."""
    config = on_server(make_config(tmp_path), "http://127.0.0.1:9")
    async with httpx.AsyncClient() as pool, open_harness(config, http_client=pool) as h:
        s = h.app.state.surface
        s.slash_answer_within_s = 0.05
        h.chat.hang_rooms["slow"] = 0.2
        r = await h.client.post(URL, content=form(channel="slow",
                                                  response_url="http://127.0.0.1:9/x"),
                                headers=FORM)
        assert r.json()["text"] == WORKING
        await poll_until(lambda: s.stats.response_url_posts)
        assert s.stats.response_url_posts == {"failed": 1}
        assert (await h.client.get("/mchat/health")).status_code == 200


async def test_slash_answers_get_the_same_output_hygiene(harness):
    """``/remember @channel ...`` echoed back must not notify the whole channel."""
    r = await harness.client.post(URL, content=form(text="@channel 회의 3시"), headers=FORM)
    assert r.json() == {"response_type": "in_channel",
                        "text": "🤖 answer to: /remember @\u200bchannel 회의 3시"}


async def test_a_response_url_off_the_mattermost_origin_is_never_followed(tmp_path):
    """Request forgery: a slash call may not make us POST to any URL it names."""
    async with open_receiver() as receiver, httpx.AsyncClient() as pool, open_harness(
            on_server(make_config(tmp_path), "http://mm.corp:8065"), http_client=pool) as h:
        s = h.app.state.surface
        s.slash_answer_within_s, s.slash_max_wait_s = 0.05, 0.2
        h.chat.hang_rooms["slow"] = 0.5
        for url in (receiver.url + "/hooks/x", "http://mm.corp:8066/hooks/x",
                    "https://mm.corp:8065/hooks/x", "http://evil@mm.corp:8065/x",
                    "http://mm.corp.evil.example:8065/x", "file:///etc/passwd"):
            r = await h.client.post(URL, content=form(channel="slow", response_url=url),
                                    headers=FORM)
            assert r.json()["text"] == STILL_WORKING, url  # treated as absent
        await trio.sleep(0.8)
        assert receiver.bodies == []
        assert s.stats.response_url_posts == {"rejected": 6}


def test_same_origin_rules():
    from mchat_actors.http.slash import same_origin

    assert same_origin("http://mm.corp:8065/hooks/commands/x", "http://mm.corp:8065")
    assert same_origin("https://mm.corp/hooks/x", "https://mm.corp:443/")
    assert not same_origin("http://mm.corp/hooks/x", "https://mm.corp")
    assert not same_origin("http://mm.corp:99999/x", "http://mm.corp")
