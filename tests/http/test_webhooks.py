from __future__ import annotations

from urllib.parse import urlencode

import trio

from mchat_actors import posts
from mchat_actors.messages import SendReply
from tests.http.conftest import WEBHOOK_TOKEN, make_config, open_harness, poll_until

URL = "/mchat/webhook/outgoing"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def payload(post_id="p1", channel="c1", text="@ai what is new?", **extra):
    return {"token": WEBHOOK_TOKEN, "team_id": "team1", "team_domain": "team",
            "channel_id": channel, "channel_name": channel, "timestamp": 1_700_000_000_123,
            "user_id": "u1", "user_name": "kim", "post_id": post_id, "text": text,
            "trigger_word": "@ai", "file_ids": "", **extra}


async def test_json_webhook_is_answered_in_the_response(harness):
    """A fast answer comes back as a threaded comment; the outbox row is already 'sent'."""
    r = await harness.client.post(URL, json=payload())
    assert r.status_code == 200
    assert r.json() == {"text": "🤖 answer to: what is new?", "response_type": "comment"}
    assert harness.replies == []  # nothing for the sender to post
    stored = harness.chat.messages["p1"]
    assert stored.created_at_ms == 1_700_000_000_123
    assert stored.content == "@ai what is new?"
    assert await harness.rt.store.run(posts.is_post_seen, "p1")
    rows = list(harness.rt.store.db.query("SELECT status, last_error FROM outbox"))
    assert rows == [{"status": "sent", "last_error": "delivered: webhook-response"}]
    row = next(iter(harness.rt.store.db.query("SELECT * FROM mchat_posts")))
    assert row["source"] == "webhook"


async def test_form_webhook_reads_the_timestamp_in_seconds(harness):
    """The form encoding (Mattermost's default) sends seconds as text."""
    data = {**payload(post_id="p2"), "timestamp": "1700000001"}
    r = await harness.client.post(URL, content=urlencode(data), headers=FORM)
    assert r.status_code == 200
    assert r.json()["response_type"] == "comment"
    assert harness.chat.messages["p2"].created_at_ms == 1_700_000_001_000


async def test_a_post_without_a_mention_is_stored_and_not_answered(harness):
    """A hook without trigger words fires on every post: empty response at once, stored."""
    start = trio.current_time()
    r = await harness.client.post(URL, json=payload(text="just chatting"))
    assert r.status_code == 200
    assert r.content == b""
    assert trio.current_time() - start < 1.0
    await poll_until(lambda: harness.rt.store.run(posts.is_post_seen, "p1"))
    assert "p1" in harness.chat.messages
    assert harness.replies == []


async def test_slow_answer_defers_to_the_outbox(tmp_path, autojump_clock):
    """Past the 4.5 s window the body is empty and the reply goes to the sender later."""
    # virtual time also jumps while the store's thread works: assert order, not durations
    async with open_harness(make_config(tmp_path)) as h:
        h.chat.hang_rooms["slow"] = 10.0
        start = trio.current_time()
        r = await h.client.post(URL, json=payload(channel="slow"))
        assert r.status_code == 200
        assert r.content == b""
        assert trio.current_time() - start >= 4.5
        assert h.replies == []  # not answered yet
        (reply,) = await h.wait_replies(1, timeout_s=60)
        assert isinstance(reply, SendReply)
        assert reply.message == "🤖 answer to: what is new?"
        assert reply.root_id == "p1"
        rows = list(h.rt.store.db.query("SELECT status FROM outbox"))
        assert rows == [{"status": "pending"}]
        assert h.app.state.surface.stats.webhook_outcomes[("outgoing", "deferred")] == 1


async def test_a_threaded_reply_is_answered_under_its_root(tmp_path, autojump_clock):
    """The payload has no root_id: REST says the post is a reply, so the answer goes to the root."""
    async with open_harness(make_config(tmp_path)) as h:
        h.rest.posts["p1"] = {"id": "p1", "channel_id": "slow", "user_id": "u1",
                              "message": "@ai what is new?", "root_id": "root1"}
        h.chat.hang_rooms["slow"] = 10.0
        r = await h.client.post(URL, json=payload(channel="slow"))
        assert r.content == b""
        (reply,) = await h.wait_replies(1, timeout_s=60)
        assert reply.root_id == "root1"
        assert h.chat.messages["p1"].created_at_ms == 1_700_000_000_123


async def test_the_websocket_copy_first_makes_the_webhook_a_no_op(harness):
    """A post already handled (its WebSocket copy came first) is not handled twice."""
    assert (await harness.client.post(URL, json=payload())).status_code == 200
    r = await harness.client.post(URL, json=payload())
    assert r.status_code == 200
    assert r.content == b""
    assert harness.chat.calls == [(harness.chat.calls[0][0], "p1")]
    assert harness.app.state.surface.stats.webhook_outcomes[("outgoing", "duplicate")] == 1


async def test_missing_or_wrong_token_is_401(harness):
    """No token, a wrong token and a token in the wrong place are refused."""
    data = payload()
    del data["token"]
    assert (await harness.client.post(URL, json=data)).status_code == 401
    r = await harness.client.post(URL, json=payload(token="wrong"))
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    assert WEBHOOK_TOKEN not in r.text
    assert harness.chat.calls == []


async def test_no_configured_tokens_refuses_everything(tmp_path):
    """With MCHAT_WEBHOOK_TOKENS unset even an empty token is refused."""
    async with open_harness(make_config(tmp_path, webhook_tokens=())) as h:
        r = await h.client.post(URL, json=payload(token=""))
        assert r.status_code == 401
        assert r.json()["detail"] == "no webhook tokens are configured"


async def test_the_allow_list_limits_source_addresses(tmp_path):
    """Outside MCHAT_WEBHOOK_ALLOW is 403; inside is served (the test client is 127.0.0.1)."""
    async with open_harness(make_config(tmp_path, webhook_allow=("10.0.0.0/8",))) as h:
        r = await h.client.post(URL, json=payload())
        assert r.status_code == 403
        assert r.json()["error"] == "forbidden"
    async with open_harness(make_config(tmp_path, webhook_allow=("10.0.0.0/8",
                                                                 "127.0.0.0/8"))) as h:
        assert (await h.client.post(URL, json=payload())).status_code == 200


async def test_bad_payloads_are_400_or_415(harness):
    """Malformed JSON or forms, wrong shapes and missing ids get a clear JSON error."""
    cases = [
        (b"{not json", {"Content-Type": "application/json"}, 400, "malformed JSON"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "malformed JSON"),
        (b"token=x&broken", FORM, 400, "malformed form"),
        (b"token=%FF%FE", FORM, 400, "malformed form"),
        (b"hello", {"Content-Type": "text/plain"}, 415, "unsupported media type"),
    ]
    for body, headers, status, error in cases:
        r = await harness.client.post(URL, content=body, headers=headers)
        assert (r.status_code, r.json()["error"]) == (status, error), body
    for field in ("post_id", "channel_id", "user_id"):
        data = payload()
        del data[field]
        r = await harness.client.post(URL, json=data)
        assert r.status_code == 400
        assert field in r.json()["detail"]
    for stamp in ("soon", True, 1e300, -5):
        r = await harness.client.post(URL, json=payload(timestamp=stamp))
        assert r.status_code == 400, stamp
    r = await harness.client.post(URL, json=payload(text=["not", "a", "string"]))
    assert r.status_code == 400
    assert harness.chat.calls == []


async def test_shutdown_answers_503(harness):
    """Once the events channel is closed (shutdown) a webhook gets 503, not a 500."""
    await harness.rt.events.aclose()
    r = await harness.client.post(URL, json=payload())
    assert r.status_code == 503
    assert r.json()["error"] == "unavailable"


async def test_a_full_events_queue_answers_503_after_the_window(tmp_path):
    """When the events queue stays full for the whole window the caller gets 503."""
    config = make_config(tmp_path, webhook_answer_within_s=0.2)
    async with open_harness(config) as h:
        send, _recv = trio.open_memory_channel(0)
        h.rt.events = send  # nobody receives: the send blocks
        r = await h.client.post(URL, json=payload())
        assert r.status_code == 503
        assert "busy" in r.json()["detail"]


async def test_a_failed_commit_hands_nothing_to_the_webhook_and_posts_once(harness,
                                                                          monkeypatch):
    """The reply is handed to the waiting webhook request only after its transaction commits.
    Old code handed it over first: a failed commit then answered in the response AND, after
    the retry, through the outbox (twice)."""
    from mchat_actors.errors import StoreUnavailable

    real = posts.finish_post
    fails = [1]

    def flaky(db, *args, **kwargs):
        if fails:
            fails.pop()
            raise StoreUnavailable("database is locked")
        return real(db, *args, **kwargs)

    monkeypatch.setattr(posts, "finish_post", flaky)
    r = await harness.client.post(URL, json=payload(post_id="p7"))
    assert r.status_code == 200
    assert r.content == b""  # not committed: nothing in the response
    replies = await harness.wait_replies(1)
    assert [x.reply_key for x in replies if isinstance(x, SendReply)] == ["p7:reply"]
    rows = list(harness.rt.store.db.query("SELECT status FROM outbox"))
    assert rows == [{"status": "pending"}]  # the sender posts it, once
