from __future__ import annotations

import attrs
import trio

from mchat_actors.actors.mapper import Mapper
from mchat_actors.errors import MattermostUnavailable
from mchat_actors.store import open_store
from tests.fakes import FakeChat


@attrs.define
class FakeRest:
    """Just the REST calls the mapper makes, with a call log."""

    members: dict[str, list[str]]
    users: dict[str, dict]
    calls: list[str] = attrs.Factory(list)
    down: bool = False

    async def get_channel(self, channel_id):
        self.calls.append(f"channel {channel_id}")
        if self.down:
            raise MattermostUnavailable("down")
        return {"id": channel_id, "type": "O", "name": f"n-{channel_id}",
                "display_name": f"품질 {channel_id}", "team_id": "t1"}

    async def get_channel_members(self, channel_id, *, page=0, per_page=200):
        self.calls.append(f"members {channel_id} {page}")
        ids = self.members[channel_id]
        return [{"user_id": u} for u in ids[page * per_page:(page + 1) * per_page]]

    async def get_user(self, user_id):
        self.calls.append(f"user {user_id}")
        return self.users[user_id]


def rest_with(n_members: int) -> FakeRest:
    ids = [f"u{i}" for i in range(n_members)] + ["bot"]
    users = {u: {"id": u, "username": u, "email": f"{u}@example.com", "first_name": "민수",
                 "last_name": "김"} for u in ids}
    return FakeRest(members={"c1": ids}, users=users)


async def test_new_channel_creates_room_with_all_members_paged(tmp_path):
    """450 members come in three pages; all but the bot join the new room."""
    rest, chat = rest_with(450), FakeChat()
    async with open_store(tmp_path / "db") as store:
        mapper = Mapper(store=store, rest=rest, chat=chat, bot_user_id="bot")
        info = await mapper.channel("c1")
        assert info.type == "O" and info.sync_enabled
        assert len(chat.members[info.room_id]) == 450
        assert [c for c in rest.calls if c.startswith("members")] == [
            "members c1 0", "members c1 1", "members c1 2"]
        assert chat.rooms[info.room_id].name == "품질 c1"


async def test_email_match_picks_existing_agent_user(tmp_path):
    """A Mattermost user whose e-mail matches an agent user maps to that user."""
    rest, chat = rest_with(1), FakeChat()
    existing = await chat.create_user(name="Kim", email="U0@EXAMPLE.com")
    async with open_store(tmp_path / "db") as store:
        mapper = Mapper(store=store, rest=rest, chat=chat, bot_user_id="bot")
        assert await mapper.user("u0") == existing.id
        assert mapper.stats.users_matched_by_email == 1 and mapper.stats.users_created == 0


async def test_mapping_survives_restart_without_rest_calls(tmp_path):
    """A second mapper on the same database answers from the tables, not from REST."""
    rest, chat = rest_with(2), FakeChat()
    async with open_store(tmp_path / "db") as store:
        first = Mapper(store=store, rest=rest, chat=chat, bot_user_id="bot")
        room = (await first.channel("c1")).room_id
        user = await first.user("u1")
    rest.calls.clear()
    rest.down = True
    async with open_store(tmp_path / "db") as store:
        second = Mapper(store=store, rest=rest, chat=chat, bot_user_id="bot")
        assert (await second.channel("c1")).room_id == room
        assert await second.user("u1") == user
    assert rest.calls == []
    assert len(chat.rooms) == 1


async def test_concurrent_first_sightings_create_one_user(tmp_path):
    rest, chat = rest_with(1), FakeChat()
    async with open_store(tmp_path / "db") as store:
        mapper = Mapper(store=store, rest=rest, chat=chat, bot_user_id="bot")
        results = []
        async with trio.open_nursery() as n:
            for _ in range(5):
                n.start_soon(lambda: _append(results, mapper.user("u0")))
        assert len(set(results)) == 1 and len(chat.users) == 1


async def _append(results, coro):
    results.append(await coro)


async def test_member_events_follow_membership(tmp_path):
    rest, chat = rest_with(1), FakeChat()
    rest.users["new"] = {"id": "new", "username": "new", "email": "new@example.com"}
    async with open_store(tmp_path / "db") as store:
        mapper = Mapper(store=store, rest=rest, chat=chat, bot_user_id="bot")
        room = (await mapper.channel("c1")).room_id
        await mapper.member_joined("c1", "new")
        new_agent = await mapper.user("new")
        assert new_agent in chat.members[room]
        await mapper.member_left("c1", "new")
        assert new_agent not in chat.members[room]
        assert len(chat.members[room]) == 1  # u0 stays: never removed without an event


async def test_sync_toggle_updates_cache_and_db(tmp_path):
    rest, chat = rest_with(1), FakeChat()
    async with open_store(tmp_path / "db") as store:
        mapper = Mapper(store=store, rest=rest, chat=chat, bot_user_id="bot")
        await mapper.channel("c1")
        assert await mapper.set_sync("c1", False)
        assert not (await mapper.channel("c1")).sync_enabled
        row = store.db["mchat_channel_mapping"].get(1)
        assert row["sync_enabled"] == 0
        assert not await mapper.set_sync("nope", True)


async def test_every_chat_service_call_of_the_mapper_has_a_timeout(tmp_path, autojump_clock):
    """A ChatService that never answers create_user: old code waited forever (the channel
    stalled for good); now it is a ChatServiceTimeout after CHAT_TIMEOUT, which the dispatcher
    retries and parks."""
    import pytest

    from mchat_actors.errors import ChatServiceTimeout
    from tests.fakes import InlineStore

    class Hanging(FakeChat):
        async def create_user(self, *, name, email):
            await trio.sleep_forever()

    store = InlineStore.open(tmp_path / "m.db")
    mapper = Mapper(store=store, rest=rest_with(1), chat=Hanging(), bot_user_id="bot",
                    timeout_s=5)
    start = trio.current_time()
    with trio.fail_after(60), pytest.raises(ChatServiceTimeout):
        await mapper.user("u0")
    assert 5 <= trio.current_time() - start < 6
