"""REST v4 of the fake server: status codes, AppError bodies, users, channels, posts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

from mchat_actors.testing import AppError, FakeMattermost

from .wsutil import auth

if TYPE_CHECKING:
    import httpx

API = "/api/v4"


def _assert_app_error(response: httpx.Response, status: int, error_id: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"id", "message", "detailed_error", "request_id", "status_code"}
    assert body["id"] == error_id
    assert body["status_code"] == status
    assert body["detailed_error"] == ""
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert "Traceback" not in response.text
    return body


async def test_missing_or_bad_token_is_401_session_expired(mm, client):
    """No token and an unknown token both get 401 api.context.session_expired.app_error."""
    _assert_app_error(await client.get(f"{API}/users/me"), 401,
                      "api.context.session_expired.app_error")
    _assert_app_error(await client.get(f"{API}/users/me", headers=auth("nope")), 401,
                      "api.context.session_expired.app_error")


async def test_token_header_forms_and_cookie_authenticate(mm, client):
    """Bearer, Token (any case) and the MMAUTHTOKEN cookie all authenticate."""
    token = mm.user("kim").token
    for headers in ({"Authorization": f"Bearer {token}"}, {"Authorization": f"token {token}"},
                    {"Cookie": f"MMAUTHTOKEN={token}"}):
        response = await client.get(f"{API}/users/me", headers=headers)
        assert response.status_code == 200
        assert response.json()["username"] == "kim"


async def test_every_response_has_request_and_version_ids(mm, client):
    """X-Request-Id and X-Version-Id are on success and error answers."""
    for response in (await client.get(f"{API}/system/ping"), await client.get(f"{API}/nope")):
        assert len(response.headers["X-Request-Id"]) == 26
        assert response.headers["X-Version-Id"].startswith("10.")


async def test_unknown_route_is_404_app_error(mm, client):
    """An unknown path gets a 404 AppError, with or without a token."""
    _assert_app_error(await client.get(f"{API}/no/such/route", headers=auth(mm.bot_token)), 404,
                      "api.context.404.app_error")


async def test_malformed_json_is_400_invalid_body_param(mm, client):
    """A body that is not JSON gets 400 api.context.invalid_body_param.app_error."""
    response = await client.post(f"{API}/posts", content=b"{not json", headers=auth(mm.bot_token))
    _assert_app_error(response, 400, "api.context.invalid_body_param.app_error")


async def test_body_over_the_payload_limit_is_413(mm, client):
    """A body over 300 000 + 512 bytes gets 413 and the server keeps serving."""
    body = b'{"message":"' + b"x" * 300_600 + b'"}'
    response = await client.post(f"{API}/posts", content=body, headers=auth(mm.bot_token))
    _assert_app_error(response, 413, "api.context.request_body_too_large.app_error")
    assert (await client.get(f"{API}/system/ping")).status_code == 200


async def test_invalid_url_id_is_400(mm, client):
    """A path id that is not 26 characters gets 400 invalid_url_param."""
    response = await client.get(f"{API}/channels/short", headers=auth(mm.bot_token))
    _assert_app_error(response, 400, "api.context.invalid_url_param.app_error")


async def test_users_lookups(mm, client):
    """users/me, /{id}, /username, /email and POST /users/ids find the seeded users."""
    kim = mm.user("kim")
    headers = auth(mm.bot_token)
    assert (await client.get(f"{API}/users/{kim.id}", headers=headers)).json()["email"] == kim.email
    by_name = (await client.get(f"{API}/users/username/kim", headers=headers)).json()
    assert by_name["id"] == kim.id and by_name["first_name"] == "민수"
    by_mail = await client.get(f"{API}/users/email/{kim.email}", headers=headers)
    assert by_mail.json()["id"] == kim.id
    ids = await client.post(f"{API}/users/ids", json=[kim.id, "x" * 26], headers=headers)
    assert [u["id"] for u in ids.json()] == [kim.id]
    _assert_app_error(await client.get(f"{API}/users/username/ghost", headers=headers), 404,
                      "app.user.missing_account.const")
    me = (await client.get(f"{API}/users/me", headers=headers)).json()
    assert me["is_bot"] is True and "password" not in me


async def test_teams_and_my_channels_include_dms_and_groups(mm, client):
    """users/me/teams/{team}/channels lists member team channels plus every DM/GM."""
    headers = auth(mm.bot_token)
    teams = (await client.get(f"{API}/users/me/teams", headers=headers)).json()
    assert [t["name"] for t in teams] == ["qa"]
    assert (await client.get(f"{API}/teams/name/qa", headers=headers)).json()["id"] == mm.team.id
    channels = (await client.get(f"{API}/users/me/teams/{mm.team.id}/channels",
                                 headers=headers)).json()
    assert sorted(c["type"] for c in channels) == ["D", "G", "O", "O", "P"]
    dm = next(c for c in channels if c["type"] == "D")
    assert dm["team_id"] == "" and dm["name"] == "__".join(sorted([mm.bot.id, mm.user("kim").id]))


async def test_public_channels_and_channel_by_name(mm, client):
    """teams/{id}/channels pages public channels; a private one by name is 404 to outsiders."""
    headers = auth(mm.user("park").token)
    public = await client.get(f"{API}/teams/{mm.team.id}/channels?per_page=1&page=1",
                              headers=headers)
    assert len(public.json()) == 1 and public.json()[0]["type"] == "O"
    found = await client.get(f"{API}/teams/{mm.team.id}/channels/name/quality", headers=headers)
    assert found.json()["id"] == mm.channel("quality").id
    hidden = await client.get(f"{API}/teams/{mm.team.id}/channels/name/defects", headers=headers)
    _assert_app_error(hidden, 404, "app.channel.get_by_name.missing.app_error")


async def test_private_channel_is_403_for_non_members(mm, client):
    """GET channels/{id} of a private channel is 403 for a non-member, 200 for a member."""
    defects = mm.channel("defects").id
    _assert_app_error(await client.get(f"{API}/channels/{defects}",
                                       headers=auth(mm.user("park").token)),
                      403, "api.context.permissions.app_error")
    ok = await client.get(f"{API}/channels/{defects}", headers=auth(mm.user("kim").token))
    assert ok.status_code == 200 and ok.json()["type"] == "P"


async def test_channel_members_paging_clamps_per_page(mm, client):
    """channels/{id}/members pages with page/per_page; per_page is clamped to 200."""
    town = mm.channel("town-square").id
    headers = auth(mm.bot_token)
    everyone = (await client.get(f"{API}/channels/{town}/members?per_page=500",
                                 headers=headers)).json()
    assert len(everyone) == len(mm.state.users)
    page = (await client.get(f"{API}/channels/{town}/members?per_page=2&page=1",
                             headers=headers)).json()
    assert [m["user_id"] for m in page] == [m["user_id"] for m in everyone[2:4]]
    one = await client.get(f"{API}/channels/{town}/members/{mm.bot.id}", headers=headers)
    assert one.json()["channel_id"] == town


async def test_join_posts_system_message_and_leave_removes(mm, client):
    """POST members is 201 with a system_join_channel post; DELETE leaves."""
    choi = mm.user("choi")
    quality = mm.channel("quality").id
    joined = await client.post(f"{API}/channels/{quality}/members", json={"user_id": choi.id},
                               headers=auth(choi.token))
    assert joined.status_code == 201 and joined.json()["user_id"] == choi.id
    assert mm.posts("quality")[-1]["type"] == "system_join_channel"
    left = await client.delete(f"{API}/channels/{quality}/members/{choi.id}",
                               headers=auth(choi.token))
    assert left.json() == {"status": "OK"}
    assert not mm.state.is_member(quality, choi.id)
    assert mm.posts("quality")[-1]["type"] == "system_leave_channel"


async def test_direct_channel_is_201_even_when_it_exists(mm, client):
    """POST channels/direct answers 201 on creation and again for the existing DM."""
    lee, park = mm.user("lee"), mm.user("park")
    first = await client.post(f"{API}/channels/direct", json=[lee.id, park.id],
                              headers=auth(lee.token))
    again = await client.post(f"{API}/channels/direct", json=[park.id, lee.id],
                              headers=auth(park.token))
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["type"] == "D"
    outsider = await client.post(f"{API}/channels/direct", json=[lee.id, park.id],
                                 headers=auth(mm.user("kim").token))
    assert outsider.status_code == 403


async def test_create_and_delete_channel(mm, client):
    """POST channels is 201 (creator is a member); DELETE archives it."""
    kim = mm.user("kim")
    created = await client.post(f"{API}/channels", headers=auth(kim.token), json={
        "team_id": mm.team.id, "name": "new-one", "display_name": "새 채널", "type": "O"})
    assert created.status_code == 201
    channel_id = created.json()["id"]
    assert mm.state.is_member(channel_id, kim.id)
    dup = await client.post(f"{API}/channels", headers=auth(kim.token), json={
        "team_id": mm.team.id, "name": "new-one", "display_name": "x", "type": "O"})
    _assert_app_error(dup, 400, "store.sql_channel.save_channel.exists.app_error")
    deleted = await client.delete(f"{API}/channels/{channel_id}", headers=auth(kim.token))
    assert deleted.json() == {"status": "OK"}
    assert mm.channel("new-one").delete_at > 0


async def test_create_post_is_201_with_caller_as_author(mm, client):
    """POST posts is 201; user_id is forced to the caller; a bot post gets from_bot."""
    town = mm.channel("town-square").id
    response = await client.post(f"{API}/posts", headers=auth(mm.bot_token), json={
        "channel_id": town, "message": "안녕하세요", "user_id": mm.user("kim").id})
    assert response.status_code == 201
    post = response.json()
    assert post["user_id"] == mm.bot.id
    assert post["props"] == {"from_bot": "true"}
    assert len(post["id"]) == 26 and post["create_at"] == post["update_at"] > 0
    fetched = await client.get(f"{API}/posts/{post['id']}", headers=auth(mm.bot_token))
    assert fetched.json()["message"] == "안녕하세요"


async def test_post_in_a_channel_one_is_not_member_of_is_403(mm, client):
    """Posting where the caller is not a member is 403."""
    response = await client.post(f"{API}/posts", headers=auth(mm.user("park").token), json={
        "channel_id": mm.channel("defects").id, "message": "hi"})
    _assert_app_error(response, 403, "api.context.permissions.app_error")


async def test_root_id_must_be_an_existing_root_in_the_same_channel(mm, client):
    """Unknown root or a reply as root is 400 Invalid RootId; another channel's root too."""
    headers = auth(mm.bot_token)
    town, quality = mm.channel("town-square").id, mm.channel("quality").id
    root = await mm.post_as("kim", "town-square", "root")
    reply = await mm.post_as("kim", "town-square", "reply", root_id=str(root["id"]))
    for bad in ("a" * 26, reply["id"]):
        response = await client.post(f"{API}/posts", headers=headers,
                                     json={"channel_id": town, "message": "x", "root_id": bad})
        body = _assert_app_error(response, 400, "api.post.create_post.root_id.app_error")
        assert body["message"] == "Invalid RootId parameter."
    other = await client.post(f"{API}/posts", headers=headers,
                              json={"channel_id": quality, "message": "x", "root_id": root["id"]})
    _assert_app_error(other, 400, "api.post.create_post.channel_root_id.app_error")


async def test_message_length_limit_counts_code_points(mm, client):
    """16383 code points pass (even 4-byte ones); 16384 are 400 message_length."""
    headers = auth(mm.bot_token)
    town = mm.channel("town-square").id
    ok = await client.post(f"{API}/posts", headers=headers,
                           json={"channel_id": town, "message": "😀" * 16383})
    assert ok.status_code == 201
    too_long = await client.post(f"{API}/posts", headers=headers,
                                 json={"channel_id": town, "message": "가" * 16384})
    _assert_app_error(too_long, 400, "model.post.is_valid.message_length.app_error")


async def test_system_post_types_are_rejected(mm, client):
    """A client may not create a system_* post."""
    response = await client.post(f"{API}/posts", headers=auth(mm.bot_token), json={
        "channel_id": mm.channel("town-square").id, "message": "x", "type": "system_join_channel"})
    _assert_app_error(response, 400, "api.context.invalid_param.app_error")


async def test_pending_post_id_deduplicates_within_30_s(mm, client):
    """A repeated pending_post_id returns 201 with the original post; nothing new is stored."""
    body = {"channel_id": mm.channel("town-square").id, "message": "once",
            "pending_post_id": "p-1"}
    first = await client.post(f"{API}/posts", json=body, headers=auth(mm.bot_token))
    second = await client.post(f"{API}/posts", json=body, headers=auth(mm.bot_token))
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert [p["message"] for p in mm.posts("town-square")].count("once") == 1


async def test_pending_post_id_expires_after_30_s(autojump_clock):
    """After 30 s of server time the same pending_post_id creates a new post."""
    async with FakeMattermost() as mm:
        first = await mm.post_as("kim", "town-square", "a", pending_post_id="p")
        repeat = await mm.post_as("kim", "town-square", "a", pending_post_id="p")
        assert repeat["id"] == first["id"]
        await trio.sleep(31)
        later = await mm.post_as("kim", "town-square", "a", pending_post_id="p")
        assert later["id"] != first["id"]


async def test_failed_post_frees_its_pending_post_id(mm):
    """A rejected post does not keep its pending_post_id, so a fixed retry succeeds."""
    with pytest.raises(AppError) as rejected:
        await mm.post_as("kim", "town-square", "x" * 20000, pending_post_id="retry")
    assert rejected.value.status == 400
    post = await mm.post_as("kim", "town-square", "short", pending_post_id="retry")
    assert post["message"] == "short"


async def test_patch_replaces_props_and_sets_edit_at(mm, client):
    """PUT posts/{id}/patch replaces props and sets edit_at when the message changes."""
    post = await mm.post_as("kim", "town-square", "before", props={"a": 1, "b": 2})
    response = await client.put(f"{API}/posts/{post['id']}/patch",
                                headers=auth(mm.user("kim").token),
                                json={"message": "after", "props": {"c": 3}})
    patched = response.json()
    assert response.status_code == 200
    assert patched["props"] == {"c": 3} and patched["message"] == "after"
    assert patched["edit_at"] > 0 and patched["update_at"] > post["update_at"]
    other = await client.put(f"{API}/posts/{post['id']}/patch",
                             headers=auth(mm.user("lee").token), json={"message": "x"})
    assert other.status_code == 403


async def test_delete_post_soft_deletes_the_thread(mm, client):
    """DELETE posts/{id} on a root soft-deletes its replies; GET is then 404."""
    root = await mm.post_as("kim", "town-square", "root")
    reply = await mm.post_as("lee", "town-square", "reply", root_id=str(root["id"]))
    response = await client.delete(f"{API}/posts/{root['id']}", headers=auth(mm.user("kim").token))
    assert response.json() == {"status": "OK"}
    for post_id in (root["id"], reply["id"]):
        gone = await client.get(f"{API}/posts/{post_id}", headers=auth(mm.bot_token))
        assert gone.status_code == 404
    assert all(p["delete_at"] > 0 for p in mm.posts("town-square")[-2:])


async def test_reactions_add_list_remove(mm, client):
    """POST reactions is 200 (403 for another user_id); GET lists; DELETE removes."""
    post = await mm.post_as("kim", "town-square", "react to me")
    bot = auth(mm.bot_token)
    body = {"user_id": mm.bot.id, "post_id": post["id"], "emoji_name": "thumbsup"}
    added = await client.post(f"{API}/reactions", json=body, headers=bot)
    assert added.status_code == 200 and added.json()["emoji_name"] == "thumbsup"
    forged = await client.post(f"{API}/reactions", headers=bot,
                               json={**body, "user_id": mm.user("kim").id})
    _assert_app_error(forged, 403, "api.context.permissions.app_error")
    listed = await client.get(f"{API}/posts/{post['id']}/reactions", headers=bot)
    assert [r["user_id"] for r in listed.json()] == [mm.bot.id]
    removed = await client.delete(
        f"{API}/users/{mm.bot.id}/posts/{post['id']}/reactions/thumbsup", headers=bot)
    assert removed.json() == {"status": "OK"}
    assert (await client.get(f"{API}/posts/{post['id']}/reactions", headers=bot)).json() == []


async def test_system_ping_and_client_config(mm, client):
    """system/ping needs no auth; config/client?format=old has MaxPostSize 16383."""
    assert (await client.get(f"{API}/system/ping")).json()["status"] == "OK"
    config = await client.get(f"{API}/config/client?format=old")
    assert config.json()["MaxPostSize"] == "16383"
    assert (await client.get(f"{API}/config/client")).status_code == 501


async def test_posts_by_ids_skips_unknown_and_unreadable(mm, client):
    """POST posts/ids returns the readable posts among the ids given."""
    mine = await mm.post_as("kim", "defects", "secret")
    public = await mm.post_as("kim", "town-square", "open")
    response = await client.post(f"{API}/posts/ids", json=[mine["id"], public["id"], "z" * 26],
                                 headers=auth(mm.user("park").token))
    assert [p["id"] for p in response.json()] == [public["id"]]


async def test_group_channel_needs_three_to_eight_members(mm, client):
    """POST channels/group is 201 for 3–8 users (existing group returned); 2 is 400."""
    ids = [mm.user(n).id for n in ("lee", "park", "choi")]
    made = await client.post(f"{API}/channels/group", json=ids, headers=auth(mm.user("lee").token))
    again = await client.post(f"{API}/channels/group", json=ids[::-1],
                              headers=auth(mm.user("park").token))
    assert made.status_code == again.status_code == 201
    assert made.json()["id"] == again.json()["id"] and made.json()["type"] == "G"
    assert made.json()["display_name"] == "choi, lee, park"
    small = await client.post(f"{API}/channels/group", json=ids[:2],
                              headers=auth(mm.user("lee").token))
    assert small.status_code == 400


async def test_default_channel_cannot_be_left(mm, client):
    """Leaving town-square is 400 api.channel.remove.default.app_error."""
    kim = mm.user("kim")
    response = await client.delete(
        f"{API}/channels/{mm.channel('town-square').id}/members/{kim.id}", headers=auth(kim.token))
    _assert_app_error(response, 400, "api.channel.remove.default.app_error")


async def test_posting_to_an_archived_channel_is_400(mm, client):
    """A deleted (archived) channel refuses new posts."""
    await mm.create_channel("old", members=["kim"])
    await mm.delete_channel("old")
    response = await client.post(f"{API}/posts", headers=auth(mm.user("kim").token),
                                 json={"channel_id": mm.channel("old").id, "message": "x"})
    _assert_app_error(response, 400, "api.post.create_post.can_not_post_to_deleted.error")
