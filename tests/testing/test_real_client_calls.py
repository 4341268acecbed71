"""The calls a bot author typically makes, through real clients, against the fake.

``mattermostdriver`` (unpatched, blocking: run in a worker thread) here; the official JS
client ``@mattermost/client`` in ``test_real_clients.py`` (``tests/js/bot_calls.js``). Each call
checks the shape the real server answers with (the keys of User, Team, TeamMember, Channel,
ChannelMember, Post, PostList, Reaction) and the values that must follow from the request;
refused calls check the real server's status and AppError id.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from mattermostdriver import Driver
from mattermostdriver.exceptions import NotEnoughPermissions, ResourceNotFound

USER_KEYS = {"id", "create_at", "update_at", "delete_at", "username", "email", "nickname",
             "first_name", "last_name", "roles", "locale", "is_bot", "timezone"}
TEAM_KEYS = {"id", "create_at", "update_at", "delete_at", "display_name", "name", "type",
             "description", "email", "allow_open_invite"}
TEAM_MEMBER_KEYS = {"team_id", "user_id", "roles", "delete_at", "scheme_user", "scheme_admin",
                    "scheme_guest", "explicit_roles"}
CHANNEL_KEYS = {"id", "create_at", "update_at", "delete_at", "team_id", "type", "display_name",
                "name", "header", "purpose", "last_post_at", "total_msg_count", "creator_id"}
MEMBER_KEYS = {"channel_id", "user_id", "roles", "last_viewed_at", "msg_count",
               "mention_count", "notify_props", "last_update_at"}
POST_KEYS = {"id", "create_at", "update_at", "edit_at", "delete_at", "is_pinned", "user_id",
             "channel_id", "root_id", "original_id", "message", "type", "props", "hashtags",
             "pending_post_id", "reply_count", "last_reply_at", "metadata"}
POST_LIST_KEYS = {"order", "posts", "next_post_id", "prev_post_id", "has_next"}
REACTION_KEYS = {"user_id", "post_id", "emoji_name", "create_at"}


def _driver(mm: Any, token: str) -> Driver:
    host, port = mm.url.removeprefix("http://").rsplit(":", 1)
    driver = Driver({"url": host, "port": int(port), "scheme": "http", "token": token,
                     "request_timeout": 5})
    driver.login()
    return driver


def _refused(call: Any, *args: Any) -> str:
    """The exception class name a refused call raises (mattermostdriver maps the status)."""
    try:
        call(*args)
    except (NotEnoughPermissions, ResourceNotFound) as exc:
        return type(exc).__name__
    raise AssertionError(f"{call.__name__}{args} was not refused")


async def test_users_and_teams_by_real_id_with_the_servers_permissions(mm):
    """users: me, by id, username, e-mail, ids, usernames, list; teams of a user by REAL id
    (the call that used to 404), team members; another user's teams: 403 for a plain user,
    200 for a system admin."""
    kim, lee, bot = mm.user("kim"), mm.user("lee"), mm.bot

    def drive() -> dict[str, Any]:
        as_kim, as_admin = _driver(mm, kim.token), _driver(mm, mm.admin.token)
        as_bot = _driver(mm, mm.bot_token)
        team = as_kim.teams.get_team_by_name("qa")
        return {
            "me": as_kim.users.get_user("me"),
            "by_id": as_kim.users.get_user(lee.id),
            "by_username": as_kim.users.get_user_by_username("lee"),
            "by_email": as_kim.users.get_user_by_email(lee.email),
            "by_ids": as_kim.users.get_users_by_ids([kim.id, lee.id, "x" * 26]),
            "by_usernames": as_kim.users.get_users_by_usernames(["lee", "kim", "nobody"]),
            "in_team": as_kim.users.get_users(params={"in_team": team["id"], "per_page": 2}),
            "bot_teams": as_bot.teams.get_user_teams(bot.id),  # the bot's real id
            "me_teams": as_kim.teams.get_user_teams("me"),
            "others_teams": _refused(as_kim.teams.get_user_teams, lee.id),
            "admin_sees": as_admin.teams.get_user_teams(lee.id),
            "team_members": as_kim.teams.get_team_members_for_user(kim.id),
            "others_members": _refused(as_kim.teams.get_team_members_for_user, lee.id),
            "team_member": as_kim.teams.get_team_member(team["id"], lee.id),
            "team": team,
            "unknown_user": _refused(as_kim.users.get_user, "y" * 26),
        }

    got = await trio.to_thread.run_sync(drive)
    for key in ("me", "by_id", "by_username", "by_email"):
        assert USER_KEYS <= got[key].keys(), key
    assert (got["me"]["id"], got["me"]["username"]) == (kim.id, "kim")
    assert got["by_id"]["id"] == got["by_username"]["id"] == got["by_email"]["id"] == lee.id
    assert sorted(u["id"] for u in got["by_ids"]) == sorted([kim.id, lee.id])
    assert sorted(u["username"] for u in got["by_usernames"]) == ["kim", "lee"]
    assert len(got["in_team"]) == 2 and all(USER_KEYS <= u.keys() for u in got["in_team"])
    team = got["team"]
    assert TEAM_KEYS <= team.keys() and team["name"] == "qa"
    assert [t["id"] for t in got["bot_teams"]] == [team["id"]]
    assert [t["id"] for t in got["me_teams"]] == [team["id"]]
    assert all(TEAM_KEYS <= t.keys() for t in got["bot_teams"])
    assert got["others_teams"] == "NotEnoughPermissions"
    assert [t["id"] for t in got["admin_sees"]] == [team["id"]]
    assert [(m["team_id"], m["user_id"]) for m in got["team_members"]] == [(team["id"], kim.id)]
    assert TEAM_MEMBER_KEYS <= got["team_members"][0].keys()
    assert got["others_members"] == "NotEnoughPermissions"
    assert TEAM_MEMBER_KEYS <= got["team_member"].keys()
    assert got["team_member"]["user_id"] == lee.id
    assert got["unknown_user"] == "ResourceNotFound"


async def test_channels_members_posts_and_reactions(mm):
    """channels of a user in a team (real id and me), by name (team id and team name),
    members; posts: create, thread, channel pages (since/before/after), patch, delete;
    reactions: add, list, remove, and another user's reaction refused."""
    kim, lee = mm.user("kim"), mm.user("lee")
    team_id = mm.channel("town-square").team_id

    def drive() -> dict[str, Any]:
        d = _driver(mm, kim.token)
        out: dict[str, Any] = {}
        out["mine"] = d.channels.get_channels_for_user(kim.id, team_id)
        out["mine_me"] = d.channels.get_channels_for_user("me", team_id)
        out["others_channels"] = _refused(d.channels.get_channels_for_user, lee.id, team_id)
        ch = out["by_name"] = d.channels.get_channel_by_name(team_id, "quality")
        out["by_team_name"] = d.channels.get_channel_by_name_and_team_name("qa", "quality")
        out["private_by_name"] = _refused(d.channels.get_channel_by_name, team_id, "nope")
        out["members"] = d.channels.get_channel_members(ch["id"])
        out["member"] = d.channels.get_channel_member(ch["id"], kim.id)
        root = out["root"] = d.posts.create_post({"channel_id": ch["id"], "message": "root 질문"})
        out["reply"] = d.posts.create_post({"channel_id": ch["id"], "message": "reply 답",
                                            "root_id": root["id"]})
        last = out["last"] = d.posts.create_post({"channel_id": ch["id"], "message": "last"})
        out["thread"] = d.posts.get_thread(root["id"])
        out["page"] = d.posts.get_posts_for_channel(ch["id"], params={"per_page": 2})
        out["since"] = d.posts.get_posts_for_channel(
            ch["id"], params={"since": out["reply"]["create_at"] - 1})
        out["before"] = d.posts.get_posts_for_channel(ch["id"], params={"before": last["id"]})
        out["after"] = d.posts.get_posts_for_channel(ch["id"], params={"after": root["id"]})
        out["patched"] = d.posts.patch_post(root["id"], options={"message": "root 질문 (수정)"})
        out["reaction"] = d.reactions.create_reaction(
            {"user_id": kim.id, "post_id": root["id"], "emoji_name": "thumbsup"})
        out["reactions"] = d.reactions.get_reactions_of_post(root["id"])
        out["others_reaction"] = _refused(d.reactions.create_reaction, {
            "user_id": lee.id, "post_id": root["id"], "emoji_name": "eyes"})
        out["unreacted"] = d.reactions.delete_reaction(kim.id, root["id"], "thumbsup")
        out["reactions_after"] = d.reactions.get_reactions_of_post(root["id"])
        out["deleted"] = d.posts.delete_post(out["reply"]["id"])
        out["gone"] = _refused(d.posts.get_post, out["reply"]["id"])
        out["since_delete"] = d.posts.get_posts_for_channel(
            ch["id"], params={"since": out["patched"]["update_at"]})
        return out

    got = await trio.to_thread.run_sync(drive)
    names = {c["name"] for c in got["mine"]}
    assert {"town-square", "quality", "defects"} <= names  # defects: kim's private channel
    assert names == {c["name"] for c in got["mine_me"]}
    assert any(c["type"] == "D" and c["team_id"] == "" for c in got["mine"])  # DMs come along
    assert all(CHANNEL_KEYS <= c.keys() for c in got["mine"])
    assert got["others_channels"] == "NotEnoughPermissions"
    ch = got["by_name"]
    assert CHANNEL_KEYS <= ch.keys() and (ch["name"], ch["type"]) == ("quality", "O")
    assert got["by_team_name"]["id"] == ch["id"]
    assert got["private_by_name"] == "ResourceNotFound"
    assert kim.id in {m["user_id"] for m in got["members"]}
    assert all(MEMBER_KEYS <= m.keys() for m in got["members"])
    assert MEMBER_KEYS <= got["member"].keys()
    assert (got["member"]["channel_id"], got["member"]["user_id"]) == (ch["id"], kim.id)

    root, reply, last = got["root"], got["reply"], got["last"]
    for post in (root, reply, last):
        assert POST_KEYS <= post.keys() and post["user_id"] == kim.id
    assert reply["root_id"] == root["id"]
    thread = got["thread"]
    assert POST_LIST_KEYS - {"has_next"} <= thread.keys()  # has_next: omitempty pointer
    assert set(thread["posts"]) == {root["id"], reply["id"]}
    assert thread["posts"][root["id"]]["reply_count"] == 1
    assert got["page"]["order"] == [last["id"], reply["id"]]  # newest first, per_page 2
    assert got["page"]["prev_post_id"] == root["id"]
    # since: what changed after the reply's creation, plus the thread root it belongs to
    assert got["since"]["order"] == [last["id"], reply["id"], root["id"]]
    assert (got["since"]["next_post_id"], got["since"]["prev_post_id"]) == ("", "")
    assert got["before"]["order"][:2] == [reply["id"], root["id"]]
    assert got["after"]["order"] == [last["id"], reply["id"]]
    patched = got["patched"]
    assert patched["message"] == "root 질문 (수정)" and patched["edit_at"] > 0
    assert REACTION_KEYS <= got["reaction"].keys()
    assert (got["reaction"]["user_id"], got["reaction"]["emoji_name"]) == (kim.id, "thumbsup")
    assert [r["emoji_name"] for r in got["reactions"]] == ["thumbsup"]
    assert got["others_reaction"] == "NotEnoughPermissions"
    assert got["unreacted"] == {"status": "OK"} and got["reactions_after"] == []
    assert got["deleted"] == {"status": "OK"} and got["gone"] == "ResourceNotFound"
    deleted = got["since_delete"]["posts"][reply["id"]]  # since mode shows deletions
    assert deleted["delete_at"] > 0


@pytest.mark.parametrize(("method", "path", "status", "error_id"), [
    ("GET", "/api/v4/users/me/status", 404, "api.context.404.app_error"),
    ("GET", "/api/v4/users/me/image", 404, "api.context.404.app_error"),
    ("POST", "/api/v4/files", 404, "api.context.404.app_error"),
    ("GET", "/api/v4/users/not-an-id/teams", 400, "api.context.invalid_url_param.app_error"),
    ("GET", "/api/v4/config/client", 501, "api.config.client.old_format.app_error"),
])
async def test_paths_the_fake_does_not_serve_answer_an_app_error(mm, method, path, status,
                                                                 error_id):
    """What the fake does not serve (docs/fake-mattermost.md) answers the server's AppError."""
    async with httpx.AsyncClient(base_url=mm.url) as http:
        response = await http.request(method, path,
                                      headers={"Authorization": f"Bearer {mm.user('kim').token}"})
    assert response.status_code == status
    body = response.json()
    assert (body["id"], body["status_code"]) == (error_id, status)
    assert set(body) == {"id", "message", "detailed_error", "request_id", "status_code"}
