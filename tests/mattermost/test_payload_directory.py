"""PayloadDirectory: webhook-only mode's users and channels, from the payloads only."""

from __future__ import annotations

import pytest

from mchat_actors.errors import MattermostApiError
from mchat_actors.mattermost.payload_directory import PayloadDirectory

DM = "a" * 26 + "__" + "b" * 26


def _record(d: PayloadDirectory, channel: str, name: str, user: str, *, public: bool) -> bool:
    return d.record(channel_id=channel, channel_name=name, team_id="team1", user_id=user,
                    user_name=f"name-{user}", public=public)


async def test_types_members_and_users_follow_the_payloads() -> None:
    d = PayloadDirectory()
    assert _record(d, "c1", "defects", "kim", public=False) is True
    assert (await d.get_channel("c1"))["type"] == "P"  # unknown: private, never public on a guess
    assert _record(d, "c1", "defects", "kim", public=False) is False  # not a new member
    assert _record(d, "c1", "defects", "lee", public=True) is True
    assert (await d.get_channel("c1"))["type"] == "O"  # an outgoing webhook fired: public
    assert _record(d, "c1", "defects", "park", public=False) is True
    assert (await d.get_channel("c1"))["type"] == "O"  # a later slash does not demote it
    assert [m["user_id"] for m in await d.get_channel_members("c1")] == ["kim", "lee", "park"]
    assert [m["user_id"] for m in await d.get_channel_members("c1", page=1, per_page=2)] == [
        "park"]
    assert await d.get_user("lee") == {"id": "lee", "username": "name-lee"}
    _record(d, "c2", DM, "kim", public=False)
    dm = await d.get_channel("c2")
    assert (dm["type"], dm["team_id"]) == ("D", "")


async def test_a_renamed_channel_is_posted_to_by_its_latest_name() -> None:
    d = PayloadDirectory()
    _record(d, "c1", "quality", "kim", public=True)
    _record(d, "c1", "quality-2026", "lee", public=True)
    assert d.channel_name("c1") == "quality-2026"
    assert d.channel_name("unknown") is None


@pytest.mark.parametrize("call", ["get_channel", "get_user"])
async def test_unknown_ids_are_404(call: str) -> None:
    with pytest.raises(MattermostApiError) as info:
        await getattr(PayloadDirectory(), call)("nobody")
    assert info.value.status == 404
