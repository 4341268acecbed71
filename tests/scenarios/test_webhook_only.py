"""Webhook-only mode end to end against the fake: no bot account, questions from an outgoing
webhook, answers through an incoming webhook, exactly once across a restart and a 5xx window.
"""

from __future__ import annotations

import logging
import socket
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio

from mchat_actors import app
from mchat_actors.app import Runtime
from mchat_actors.config import Config
from mchat_actors.testing import FakeMattermost

from .harness import FAST, wait_until

HOOK_TOKEN = "outgoing-hook-token-7f3a"


def _free_port() -> int:
    """A port for the bot's HTTP surface that stays the same across the restart (it is in the
    outgoing webhook's callback URL, as an operator would configure it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(mm: FakeMattermost, hook: dict[str, Any], db: Path, port: int) -> Config:
    env = {**FAST, "MCHAT_INCOMING_WEBHOOK_URL": f"{mm.url}/hooks/{hook['id']}",
           "MCHAT_WEBHOOK_TOKENS": HOOK_TOKEN, "MCHAT_WEBHOOK_USERNAME": "ai-memory",
           "MCHAT_WEBHOOK_ICON_URL": "https://example.com/ai.png",
           "MCHAT_DB": str(db), "MCHAT_HTTP_LISTEN": f"127.0.0.1:{port}",
           "MCHAT_ADMIN_TOKEN": "admin-token-for-the-test"}
    # no MCHAT_TOKEN, no MCHAT_URL: webhook-only, the server is where the webhook is
    return attrs.evolve(Config.from_env(env), shutdown_grace_s=1.0)


def _answers(mm: FakeMattermost, post_id: str) -> list[dict[str, Any]]:
    return [p for p in mm.posts() if (p.get("props") or {}).get("mchat_reply_key")
            == f"{post_id}:reply"]


async def test_webhook_only_answers_through_the_incoming_webhook_exactly_once(
        tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="mchat_actors.app")
    port = _free_port()
    async with FakeMattermost(enable_post_overrides=True) as mm:
        # the incoming webhook's default channel is town-square: the answer must still land in
        # the channel of the question (payload "channel")
        hook = mm.create_incoming_webhook("town-square", display_name="AI memory")
        mm.create_outgoing_webhook(
            channel="quality", trigger_words=["@ai"], token=HOOK_TOKEN,
            callback_urls=[f"http://127.0.0.1:{port}/mchat/webhook/outgoing"])
        config = _config(mm, hook, tmp_path / "bot.db", port)
        assert config.mattermost.webhook_only and config.mattermost.url == mm.url

        async with trio.open_nursery() as nursery:
            rt: Runtime = await nursery.start(partial(app.run, config))
            async with httpx.AsyncClient() as http:
                health = (await http.get(f"http://127.0.0.1:{port}/mchat/health")).json()
                status = (await http.get(
                    f"http://127.0.0.1:{port}/api/v1/mchat/status",
                    headers={"Authorization": "Bearer admin-token-for-the-test"})).json()
            assert status["connection"]["configured_mode"] == "webhook-only"  # the admin page
            assert health["status"] == "ok"
            assert (health["connection"]["mode"], health["connection"]["state"]) == (
                "webhook-only", "webhook")
            taught = await mm.post_as("kim", "quality", "@ai /remember X부품 불량률 12%")
            await wait_until(lambda: _answers(mm, str(taught["id"])))

            mm.fail_requests(60, 503, path_prefix="/hooks/")  # the webhook endpoint fails
            question = await mm.post_as("lee", "quality", "@ai 오늘 X부품 불량률 몇 %야?")
            qid = str(question["id"])
            await wait_until(lambda: rt.sender_stats.retries >= 1)  # type: ignore[attr-defined]
            rt.request_shutdown()  # restart in the middle of the 5xx window
        assert _answers(mm, qid) == []

        async with trio.open_nursery() as nursery:
            rt = await nursery.start(partial(app.run, config))
            await trio.sleep(0.5)
            assert _answers(mm, qid) == []  # still failing: nothing posted, nothing lost
            mm.fail_requests(0, 503, path_prefix="/hooks/")  # the window ends
            await wait_until(lambda: _answers(mm, qid), timeout=15)
            await trio.sleep(1.0)  # anything more would show up now
            rt.request_shutdown()

    answers = _answers(mm, qid)
    assert len(answers) == 1, answers
    answer = answers[0]
    assert answer["channel_id"] == mm.channel("quality").id
    assert answer["user_id"] == mm.admin.id  # an incoming-webhook post: the hook's creator
    assert answer["root_id"] == ""  # incoming webhooks cannot thread
    props = answer["props"]
    assert props["from_webhook"] == "true"
    assert props["override_username"] == "ai-memory"
    assert props["override_icon_url"] == "https://example.com/ai.png"
    assert "12%" in str(answer["message"])
    assert len(_answers(mm, str(taught["id"]))) == 1
    webhook_posts = [p for p in mm.posts("quality") if (p.get("props") or {}).get("from_webhook")]
    assert len(webhook_posts) == 2  # the /remember acknowledgement and the one answer
    assert any("webhook-only mode" in r.getMessage() and "cannot backfill" in r.getMessage()
               for r in caplog.records)


async def test_webhook_only_slash_memory_from_a_private_channel_stays_there(
        tmp_path: Path) -> None:
    """A slash command does not say its channel's type: webhook-only mode maps a channel seen
    only through slash commands as private (never public on a guess); what was remembered in
    the private `defects` channel is found there and not used in the public `quality` channel."""
    port = _free_port()
    async with FakeMattermost() as mm:
        hook = mm.create_incoming_webhook("town-square")
        mm.create_outgoing_webhook(
            channel="quality", trigger_words=["@ai"], token=HOOK_TOKEN,
            callback_urls=[f"http://127.0.0.1:{port}/mchat/webhook/outgoing"])
        slash_url = f"http://127.0.0.1:{port}/mchat/slash"
        mm.create_slash_command("remember", slash_url, token=HOOK_TOKEN)
        mm.create_slash_command("search", slash_url, token=HOOK_TOKEN)
        config = _config(mm, hook, tmp_path / "bot.db", port)
        async with trio.open_nursery() as nursery:
            rt: Runtime = await nursery.start(partial(app.run, config))
            await mm.run_slash_command("kim", "defects",
                                       "/remember 신규 프로젝트 코드명은 블루버드")
            found = await mm.run_slash_command("kim", "defects", "/search 코드명")
            question = await mm.post_as("lee", "quality", "@ai 신규 프로젝트 코드명이 뭐야?")
            qid = str(question["id"])
            await wait_until(lambda: _answers(mm, qid), timeout=15)
            channel_row = await rt.store.run(_channel_type, mm.channel("defects").id)
            rt.request_shutdown()
    assert "블루버드" in str(found.get("text", "")), found
    [answer] = _answers(mm, qid)
    assert "블루버드" not in str(answer["message"])
    assert answer["channel_id"] == mm.channel("quality").id
    assert channel_row == "P"


def _channel_type(db: Any, channel_id: str) -> str | None:
    row = db.conn.execute("SELECT channel_type FROM mchat_channel_mapping "
                          "WHERE mchat_channel_id = ?", (channel_id,)).fetchone()
    return None if row is None else str(row[0])


class _StuckChat:
    """The real ChatService, except that answering a question never finishes (the process is
    killed while it works on it)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.entered = trio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def send_message(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("respond"):
            self.entered.set()
            await trio.sleep_forever()
        return await self._inner.send_message(*args, **kwargs)


async def test_webhook_only_a_kill_between_the_200_and_the_answer_loses_nothing(
        tmp_path: Path) -> None:
    """Mattermost sends an outgoing webhook once; the service answered 200, then was killed
    before handling it. The kept payload is handled at the next start: one answer."""
    port = _free_port()
    async with FakeMattermost() as mm:
        hook = mm.create_incoming_webhook("town-square")
        mm.create_outgoing_webhook(
            channel="quality", trigger_words=["@ai"], token=HOOK_TOKEN,
            callback_urls=[f"http://127.0.0.1:{port}/mchat/webhook/outgoing"])
        config = _config(mm, hook, tmp_path / "bot.db", port)
        async with app.open_chat_service(config) as inner:
            stuck = _StuckChat(inner)
            async with trio.open_nursery() as nursery:
                await nursery.start(partial(app.run, config, chat=stuck))
                question = await mm.post_as("lee", "quality", "@ai 오늘 X부품 불량률 몇 %야?")
                await stuck.entered.wait()  # the 200 went out; the answer is being worked on
                nursery.cancel_scope.cancel()  # killed: no drain, no goodbye
        qid = str(question["id"])
        assert _answers(mm, qid) == []
        assert [d for d in mm.hooks.deliveries if qid in str(d)], "the webhook fired once"

        async with trio.open_nursery() as nursery:
            rt: Runtime = await nursery.start(partial(app.run, config))
            await wait_until(lambda: _answers(mm, qid), timeout=15)
            await trio.sleep(0.5)
            rt.request_shutdown()
    answers = _answers(mm, qid)
    assert len(answers) == 1 and answers[0]["channel_id"] == mm.channel("quality").id
