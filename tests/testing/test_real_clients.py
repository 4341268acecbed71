"""The fake server driven by real clients that other people wrote, unpatched.

* ``mattermostdriver`` (``requests`` + an asyncio ``websockets`` client): token login,
  ``users/me``, a post, and its WebSocket receiving that post's ``posted`` event. It is
  blocking code with its own event loop, so it runs in a worker thread; the thread always
  ends with the test (the server drops the socket, or the asyncio tasks are cancelled).
* The official JS client ``@mattermost/client`` (Client4 + WebSocketClient) run by ``node``
  on ``tests/js/drive_mattermost.js`` and ``tests/js/bot_calls.js`` (``make test`` runs
  ``npm ci`` there). Without node or the npm packages the test fails with the command that
  fixes it. A bot author's wider set of calls: ``test_real_client_calls.py`` (mattermostdriver)
  and ``test_official_js_client_makes_a_bot_authors_calls`` below.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from mattermostdriver import Driver

from .test_hooks import json_reply, open_receiver

JS_DIR = Path(__file__).parents[1] / "js"
NODE_TIMEOUT_S = 30.0
THREAD_STOP_S = 10.0


@attrs.define(eq=False)
class DriverRun:
    """One ``mattermostdriver`` session in a worker thread (see :meth:`run`)."""

    options: dict[str, Any]
    channel_id: str
    message: str
    me: dict[str, Any] | None = None
    created: dict[str, Any] | None = None
    frames: list[dict[str, Any]] = attrs.Factory(list)
    posted: threading.Event = attrs.Factory(threading.Event)
    loop: asyncio.AbstractEventLoop | None = None

    def run(self) -> None:
        """Log in, read ``me``, open the WebSocket; after ``hello`` create a post. Returns
        when the socket is dropped (or the loop's tasks are cancelled by :meth:`stop`)."""
        loop = asyncio.new_event_loop()  # the driver asks for the thread's current loop
        asyncio.set_event_loop(loop)
        self.loop = loop
        try:
            driver = Driver(self.options)
            driver.login()
            self.me = driver.users.get_user("me")

            async def handler(raw: str) -> None:
                frame = json.loads(raw)
                self.frames.append(frame)
                if frame.get("event") == "hello":
                    self.created = driver.posts.create_post(
                        {"channel_id": self.channel_id, "message": self.message})
                elif frame.get("event") == "posted" and self.created is not None:
                    if json.loads(frame["data"]["post"])["id"] == self.created["id"]:
                        self.posted.set()

            driver.init_websocket(handler)
        except asyncio.CancelledError:
            pass  # stopped by stop(): the loop's tasks were cancelled
        finally:
            _close_loop(loop)

    def stop(self) -> None:
        """Cancel every task of the driver's loop (thread-safe; a no-op once it is closed)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(_cancel_all, loop)
            except RuntimeError:  # closed in between
                return


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    asyncio.set_event_loop(None)


async def test_mattermostdriver_logs_in_posts_and_receives_posted(mm):
    """mattermostdriver: token login, users/me, create_post, and its websocket (auth by
    challenge) gets ``hello`` then the ``posted`` event of that post."""
    host, port = mm.url.removeprefix("http://").rsplit(":", 1)
    kim = mm.user("kim")
    run = DriverRun(
        options={"url": host, "port": int(port), "scheme": "http", "token": kim.token,
                 "timeout": 5, "request_timeout": 5, "keepalive": False},
        channel_id=mm.channel("town-square").id, message="hello from mattermostdriver 안녕")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, run.run)
        try:
            with trio.fail_after(10):
                while not run.posted.is_set():  # noqa: ASYNC110 - a flag set by another thread
                    await trio.sleep(0.02)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(THREAD_STOP_S):
                # The driver reconnects only after a *clean* close; an abrupt drop ends its
                # loop. stop() covers the case where it never got that far.
                await mm.drop_websockets(abrupt=True)
                run.stop()
    assert run.me is not None and run.me["username"] == "kim" and run.me["id"] == kim.id
    assert run.created is not None and run.created["user_id"] == kim.id
    events = [f.get("event") for f in run.frames if "event" in f]
    assert events[:2] == ["hello", "posted"]
    assert [f["seq"] for f in run.frames if "event" in f] == list(range(len(events)))
    assert mm.posts("town-square")[-1]["message"] == "hello from mattermostdriver 안녕"
    assert run.loop is not None and run.loop.is_closed()  # the thread ended cleanly


async def test_mattermostdriver_calls_a_webhook_and_runs_a_slash_command(mm):
    """mattermostdriver's ``webhooks.call_webhook`` and ``commands.execute_command`` work
    against the fake's ``/hooks/{id}`` and ``commands/execute``."""
    host, port = mm.url.removeprefix("http://").rsplit(":", 1)
    options = {"url": host, "port": int(port), "scheme": "http",
               "token": mm.user("lee").token, "request_timeout": 5}
    quality = mm.channel("quality").id
    async with open_receiver() as receiver:
        receiver.respond = lambda r: json_reply({"response_type": "in_channel",
                                                 "text": f"remembered: {r.field('text')}"})
        mm.create_slash_command("remember", receiver.url)
        hook = mm.create_incoming_webhook("quality", display_name="CI")

        def drive() -> tuple[int, str, dict[str, Any]]:
            driver = Driver(options)
            driver.login()
            hooked = driver.webhooks.call_webhook(hook["id"], options={"text": "from a hook"})
            answer = driver.commands.execute_command(
                {"channel_id": quality, "command": "/remember X부품 불량률 12%"})
            return hooked.status_code, hooked.text, answer

        status, text, answer = await trio.to_thread.run_sync(drive)
    assert (status, text) == (200, "ok")
    assert answer["response_type"] == "in_channel"
    assert answer["text"] == "remembered: X부품 불량률 12%"
    assert [(p["message"], p["user_id"]) for p in mm.posts("quality")] == [
        ("from a hook", mm.admin.id), ("remembered: X부품 불량률 12%", mm.user("lee").id)]


@pytest.mark.node
async def test_official_js_client_against_the_fake(mm):
    """@mattermost/client under node: Client4.getMe/createPost/executeCommand and
    WebSocketClient (with its strict seq check) receiving the ``posted`` event of the post."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: make test installs it (apt-get install nodejs npm)")
    if not (JS_DIR / "node_modules" / "@mattermost" / "client").is_dir():
        pytest.fail(f"the npm packages are missing: cd {JS_DIR} && npm ci (or make test)")
    kim = mm.user("kim")
    channel = mm.channel("town-square")
    command = [node, str(JS_DIR / "drive_mattermost.js"), mm.url, kim.token, channel.id,
               "/remember 안녕"]
    async with open_receiver() as receiver:
        receiver.respond = lambda r: json_reply({"text": f"noted {r.field('text')}"})
        mm.create_slash_command("remember", receiver.url)
        with trio.fail_after(NODE_TIMEOUT_S):
            result = await trio.run_process(command, cwd=JS_DIR, capture_stdout=True,
                                            capture_stderr=True, check=False)
    output = result.stdout.decode()
    steps = {r["step"]: r for r in map(json.loads, (line for line in output.splitlines()
                                                     if line.startswith("{")))}
    assert result.returncode == 0, output + result.stderr.decode()
    assert steps["me"]["id"] == kim.id and steps["me"]["username"] == "kim"
    assert steps["me"]["server_version"].startswith("10.5.0")
    assert steps["hello"]["connection_id"]
    created, posted = steps["created"], steps["posted"]
    assert created["user_id"] == kim.id and created["channel_id"] == channel.id
    assert posted["id"] == created["id"] and posted["message"] == "hello from Client4 안녕"
    assert (posted["channel_type"], posted["sender_name"]) == ("O", "@kim")
    assert posted["events"][:2] == [{"event": "hello", "seq": 0}, {"event": "posted", "seq": 1}]
    assert steps["command"] == {"step": "command", "response_type": "", "text": "noted 안녕"}
    assert "done" in steps
    assert [p["id"] for p in mm.posts("town-square")] == [created["id"]]



USER_KEYS = {"id", "username", "email", "roles", "is_bot", "create_at", "delete_at"}
TEAM_KEYS = {"id", "name", "display_name", "type", "create_at", "delete_at"}
CHANNEL_KEYS = {"id", "team_id", "type", "name", "display_name", "creator_id", "delete_at"}
POST_KEYS = {"id", "create_at", "update_at", "edit_at", "delete_at", "user_id", "channel_id",
             "root_id", "message", "type", "props", "reply_count"}
POST_LIST_KEYS = {"order", "posts", "next_post_id", "prev_post_id"}


async def _run_node_script(script: str, *args: str) -> dict[str, dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: make test installs it (apt-get install nodejs npm)")
    if not (JS_DIR / "node_modules" / "@mattermost" / "client").is_dir():
        pytest.fail(f"the npm packages are missing: cd {JS_DIR} && npm ci (or make test)")
    with trio.fail_after(NODE_TIMEOUT_S):
        result = await trio.run_process([node, str(JS_DIR / script), *args], cwd=JS_DIR,
                                        capture_stdout=True, capture_stderr=True, check=False)
    output = result.stdout.decode()
    assert result.returncode == 0, output + result.stderr.decode()
    return {r["step"]: r for r in map(json.loads, (line for line in output.splitlines()
                                                    if line.startswith("{")))}


@pytest.mark.node
async def test_official_js_client_makes_a_bot_authors_calls(mm):
    """@mattermost/client: users (me, id, username, e-mail, ids, usernames), teams of a user by
    real id (another user's: 403), team members, channels of a user in a team, channel by name
    (team id and team name), members, posts (create, thread, plain/since/before/after pages,
    patch, delete), reactions (another user's: 403), and the events on its WebSocket."""
    kim, lee = mm.user("kim"), mm.user("lee")
    steps = await _run_node_script("bot_calls.js", mm.url, kim.token, lee.id, "qa", "quality")
    users = steps["users"]
    for key in ("me", "by_id", "by_username", "by_email"):
        assert USER_KEYS <= users[key].keys(), key
    assert users["me"]["id"] == users["by_id"]["id"] == kim.id
    assert users["by_username"]["id"] == users["by_email"]["id"] == lee.id
    assert sorted(u["id"] for u in users["by_ids"]) == sorted([kim.id, lee.id])
    assert sorted(u["username"] for u in users["by_usernames"]) == ["kim", "lee"]

    teams = steps["teams"]
    team_id = mm.channel("quality").team_id
    assert [t["id"] for t in teams["teams"]] == [t["id"] for t in teams["my_teams"]] == [team_id]
    assert all(TEAM_KEYS <= t.keys() for t in teams["teams"])
    assert teams["others_teams"] == {"status_code": 403,
                                     "server_error_id": "api.context.permissions.app_error"}
    assert [(m["team_id"], m["user_id"]) for m in teams["team_members"]] == [(team_id, kim.id)]
    assert (teams["team_member"]["team_id"], teams["team_member"]["user_id"]) == (team_id, lee.id)

    ch = steps["channels"]
    quality = mm.channel("quality")
    assert {"town-square", "quality", "defects"} <= {c["name"] for c in ch["mine"]}
    assert all(CHANNEL_KEYS <= c.keys() for c in ch["mine"])
    assert ch["by_name"]["id"] == ch["by_team_name"]["id"] == quality.id
    assert CHANNEL_KEYS <= ch["by_name"].keys()
    assert kim.id in {m["user_id"] for m in ch["members"]}
    assert (ch["member"]["channel_id"], ch["member"]["user_id"]) == (quality.id, kim.id)
    assert ch["others_channels"]["status_code"] == 403

    posts = steps["posts"]
    root, reply, last = posts["root"], posts["reply"], posts["last"]
    assert all(POST_KEYS <= p.keys() for p in (root, reply, last))
    assert reply["root_id"] == root["id"] and root["channel_id"] == quality.id
    assert POST_LIST_KEYS <= posts["thread"].keys()
    assert set(posts["thread"]["posts"]) == {root["id"], reply["id"]}
    assert posts["page"]["order"] == [last["id"], reply["id"]]
    assert posts["since"]["order"] == [last["id"], reply["id"], root["id"]]
    assert posts["before"]["order"] == [reply["id"], root["id"]]
    assert posts["after"]["order"] == [last["id"], reply["id"]]
    assert posts["after"]["prev_post_id"] == root["id"] and posts["after"]["next_post_id"] == ""

    changes = steps["changes"]
    assert changes["patched"]["message"] == "JS root 질문 (edited)"
    assert changes["patched"]["edit_at"] > 0
    assert (changes["reaction"]["user_id"], changes["reaction"]["emoji_name"]) == (
        kim.id, "white_check_mark")
    assert [r["emoji_name"] for r in changes["reactions"]] == ["white_check_mark"]
    assert changes["others_reaction"]["status_code"] == 403
    assert changes["removed"] == changes["deleted"] == {"status": "OK"}
    assert changes["gone"]["status_code"] == 404

    events = steps["events"]["events"]
    assert [(e["event"], e["post_id"]) for e in events] == [
        ("posted", root["id"]), ("posted", reply["id"]), ("posted", last["id"]),
        ("post_edited", root["id"]), ("reaction_added", root["id"]),
        ("reaction_removed", root["id"]), ("post_deleted", reply["id"])]
    assert events[3]["message"] == "JS root 질문 (edited)"
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert "done" in steps
