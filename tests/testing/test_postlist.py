"""GET channels/{id}/posts modes (since, after, before, paging) and GET posts/{id}/thread."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .wsutil import auth

if TYPE_CHECKING:
    from mchat_actors.testing import FakeMattermost

API = "/api/v4"


@pytest.fixture
async def five(mm: FakeMattermost) -> list[dict[str, object]]:
    """Five posts p0..p4 (oldest first) in quality, nothing else there."""
    return [await mm.post_as("kim", "quality", f"p{i}") for i in range(5)]


async def _list(client, mm, query: str) -> dict[str, object]:
    channel = mm.channel("quality").id
    response = await client.get(f"{API}/channels/{channel}/posts?{query}",
                                headers=auth(mm.bot_token))
    assert response.status_code == 200, response.text
    return response.json()


def _ids(posts: list[dict[str, object]], *indexes: int) -> list[object]:
    return [posts[i]["id"] for i in indexes]


async def test_plain_paging_is_newest_first_with_neighbour_cursors(mm, client, five):
    """Page 1 of size 2 is p2,p1; next is p3 and prev is p0."""
    result = await _list(client, mm, "page=1&per_page=2")
    assert result["order"] == _ids(five, 2, 1)
    assert result["next_post_id"] == five[3]["id"]
    assert result["prev_post_id"] == five[0]["id"]
    assert "has_next" not in result  # *bool omitempty on the real server
    last = await _list(client, mm, "page=2&per_page=2")
    assert last["order"] == _ids(five, 0) and last["prev_post_id"] == ""


async def test_before_mode_cursor_rules(mm, client, five):
    """before=p4 page 0: next_post_id is p4; a short page empties prev_post_id."""
    full = await _list(client, mm, f"before={five[4]['id']}&per_page=2")
    assert full["order"] == _ids(five, 3, 2)
    assert full["next_post_id"] == five[4]["id"]
    assert full["prev_post_id"] == five[1]["id"]
    short = await _list(client, mm, f"before={five[4]['id']}&per_page=2&page=1")
    assert short["order"] == _ids(five, 1, 0)
    assert short["next_post_id"] == five[2]["id"]
    assert short["prev_post_id"] == ""  # full page: computed, and nothing is older
    shorter = await _list(client, mm, f"before={five[2]['id']}&per_page=5")
    assert shorter["order"] == _ids(five, 1, 0) and shorter["prev_post_id"] == ""


async def test_after_mode_cursor_rules(mm, client, five):
    """after=p0 page 0: prev_post_id is p0; fewer than per_page posts empties next_post_id."""
    page = await _list(client, mm, f"after={five[0]['id']}&per_page=2")
    assert page["order"] == _ids(five, 2, 1)
    assert page["prev_post_id"] == five[0]["id"]
    assert page["next_post_id"] == five[3]["id"]
    rest = await _list(client, mm, f"after={five[2]['id']}&per_page=5")
    assert rest["order"] == _ids(five, 4, 3)
    assert rest["next_post_id"] == "" and rest["prev_post_id"] == five[2]["id"]


async def test_since_returns_edited_and_deleted_posts_without_cursors(mm, client, five):
    """since=t returns posts updated after t, deleted ones included; cursors are empty."""
    mark = int(five[4]["update_at"])  # type: ignore[call-overload]
    await mm.edit_post(str(five[1]["id"]), "p1 edited")
    await mm.delete_post(str(five[2]["id"]))
    new = await mm.post_as("lee", "quality", "p5")
    result = await _list(client, mm, f"since={mark}&page=3&per_page=1")  # paging ignored
    assert result["order"] == [new["id"], five[2]["id"], five[1]["id"]]
    assert result["posts"][five[2]["id"]]["delete_at"] > 0
    assert result["posts"][five[1]["id"]]["message"] == "p1 edited"
    assert result["next_post_id"] == result["prev_post_id"] == ""


async def test_since_takes_priority_over_before_and_after(mm, client, five):
    """With since and before both given, since wins."""
    mark = int(five[2]["update_at"])  # type: ignore[call-overload]
    result = await _list(client, mm, f"since={mark}&before={five[4]['id']}")
    assert result["order"] == _ids(five, 4, 3)


async def test_since_includes_the_root_of_a_changed_reply(mm, client, five):
    """A reply changed after t brings its (unchanged) root into the list."""
    mark = int(five[4]["update_at"])  # type: ignore[call-overload]
    reply = await mm.post_as("lee", "quality", "re", root_id=str(five[0]["id"]))
    result = await _list(client, mm, f"since={mark}")
    assert result["order"] == [reply["id"], five[0]["id"]]


async def test_deleted_posts_are_skipped_by_paging_and_cursors(mm, client, five):
    """Paging and neighbour cursors ignore deleted posts."""
    await mm.delete_post(str(five[3]["id"]))
    result = await _list(client, mm, "per_page=2&page=1")
    assert result["order"] == _ids(five, 1, 0)
    assert result["next_post_id"] == five[2]["id"]


async def test_thread_context_is_in_posts_but_not_in_order(mm, client, five):
    """A page with a reply carries its root in posts (outside order) unless skipFetchThreads."""
    reply = await mm.post_as("lee", "quality", "re", root_id=str(five[0]["id"]))
    result = await _list(client, mm, "per_page=1")
    assert result["order"] == [reply["id"]]
    assert five[0]["id"] in result["posts"]
    bare = await _list(client, mm, "per_page=1&skipFetchThreads=true")
    assert list(bare["posts"]) == [reply["id"]]


async def test_bad_since_and_after_are_400(mm, client):
    """A non-integer since or a malformed after id is 400."""
    channel = mm.channel("quality").id
    for query in ("since=abc", "after=short"):
        response = await client.get(f"{API}/channels/{channel}/posts?{query}",
                                    headers=auth(mm.bot_token))
        assert response.status_code == 400


async def test_thread_lists_root_and_replies(mm, client):
    """GET posts/{id}/thread returns the requested post first, then the thread in order."""
    root = await mm.post_as("kim", "town-square", "root")
    first = await mm.post_as("lee", "town-square", "one", root_id=str(root["id"]))
    second = await mm.post_as("kim", "town-square", "two", root_id=str(root["id"]))
    response = await client.get(f"{API}/posts/{first['id']}/thread", headers=auth(mm.bot_token))
    body = response.json()
    assert body["order"] == [first["id"], root["id"], second["id"]]
    assert body["posts"][root["id"]]["reply_count"] == 2
