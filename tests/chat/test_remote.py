"""RemoteChatService (CHAT_BACKEND=remote) against the AI Memory Agent twin over real sockets.

One test per numbered item of issue #16 (each fails on the adapter written against the old
stand-in), then the remaining behaviour: masking, audience, replays, summaries, delegation.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from mchat_actors.chat.audience import Audience, RoomInfo
from mchat_actors.chat.llm import open_llm
from mchat_actors.chat.protocol import SendResult
from mchat_actors.chat.remote import (
    HELP_TEXT,
    RemoteChatService,
    audience_filter,
    open_remote_chat_service,
    record_from_result,
)
from mchat_actors.config import ChatConfig
from mchat_actors.errors import ConfigError
from mchat_actors.messages import AgentUserId, RoomId
from mchat_actors.testing.fake_agent_api import Fault
from mchat_actors.testing.fake_openai import FakeOpenAI

from .remote_env import Env, open_env


@attrs.define
class Spy:
    """Forwards to a ChatService and records the names of the methods called."""

    inner: Any
    calls: list[str] = attrs.Factory(list)

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.inner, name)


@pytest.fixture
async def env(db_path: str) -> AsyncIterator[Env]:
    async for e in open_env(db_path):
        yield e


def _room_meta(env: Env, **more: Any) -> dict[str, Any]:
    return {"mchat_scope": "room", "mchat_room_id": env.room.id, **more}


# -- issue #16, item by item ----------------------------------------------------------------------


async def test_1_remember_then_ask_finds_it_with_context_sources(env: Env) -> None:
    """Item 1: the search names a source (include_agent), so the server finds the memory."""
    await env.say("/remember X부품 불량률 12%", post_id="p1")
    result = await env.say("X부품 불량률 몇 %야?", post_id="q1", user=env.lee)
    assert result.assistant_message is not None and "12%" in result.assistant_message
    [search] = env.fake.calls("POST", "/memories/search")
    assert search.json["context_sources"] == {"include_agent": True}
    assert "external_user_id" not in search.json


async def test_2_results_are_mapped_from_the_real_fields(env: Env) -> None:
    """Item 2: memory_id, ISO created_at, scope and owner come through; personal ones show to
    their owner only."""
    shared = env.fake.seed_agent_memory("배포 일정은 금요일", metadata=_room_meta(env))
    mine = env.fake.seed_agent_memory("배포 전에 나는 리뷰 먼저", metadata={
        "mchat_scope": "personal", "mchat_owner_id": env.kim.id})
    # a reply in the channel never shows a personal memory; one for kim alone does
    assert [m.id for m in await env.svc.search(env.room.id, env.kim.id, "배포")] == [shared.id]
    found, hidden = await env.svc.search_scoped(env.room.id, env.kim.id, "배포",
                                                only_asker=True)
    by_id = {m.id: m for m in found}
    assert set(by_id) == {shared.id, mine.id} and hidden == 0
    expected_ms = int(shared.created_at.replace(tzinfo=UTC).timestamp() * 1000)
    assert by_id[shared.id].created_at_ms == expected_ms
    assert by_id[shared.id].room_id == env.room.id and by_id[shared.id].scope == "room"
    assert by_id[mine.id].scope == "personal" and by_id[mine.id].owner_id == env.kim.id
    assert all(m.score > 0 for m in found)
    found, hidden = await env.svc.search_scoped(env.room.id, env.lee.id, "배포",
                                                only_asker=True)
    assert [m.id for m in found] == [shared.id] and hidden == 1


async def test_3_memory_lists_through_get_data(env: Env) -> None:
    """Item 3: /memory lists via GET data?data_type=memory, not an empty-query search."""
    await env.say("/remember 회의실은 3층", post_id="p1")
    await env.say("/remember 점심은 12시", post_id="p2")
    await env.say("/remember 비밀 방 이야기", post_id="p3", room=env.other_room)
    listed = (await env.say("/memory")).assistant_message or ""
    assert "회의실은 3층" in listed and "점심은 12시" in listed
    assert "비밀 방" not in listed
    [listing] = env.fake.calls("GET", "/data")
    assert listing.path == "/api/v1/agents/agent-1/data"
    assert env.fake.calls("POST", "/memories/search") == []


async def test_4_forget_deletes_through_the_real_delete(env: Env) -> None:
    """Item 4: /forget deletes the memory by memory_id, and its data row; nothing else."""
    await env.say("/remember 회의실은 3층", post_id="p1")
    await env.say("/remember 점심 메뉴는 김밥", post_id="p2")
    reply = (await env.say("/forget 회의실")).assistant_message or ""
    assert reply.startswith("삭제했습니다: 회의실은 3층")
    deletes = env.fake.calls("DELETE", "/memories/")
    assert [r.status for r in deletes] == [200, 200]
    assert [m.content for m in env.fake.world.memories.values()] == ["점심 메뉴는 김밥"]
    assert [d.content for d in env.fake.world.data] == ["점심 메뉴는 김밥"]
    assert "회의실" not in ((await env.say("/memory")).assistant_message or "")
    assert (await env.svc.search(env.room.id, env.kim.id, "회의실은 3층"))[0].content == \
        "점심 메뉴는 김밥"  # the vector search's nearest is unrelated, which is why:


async def test_4_forget_never_deletes_an_unrelated_nearest_memory(env: Env) -> None:
    """The server returns its nearest memories however unrelated; /forget deletes only one
    that covers the query's words, and only one this reply's audience may see."""
    await env.say("/remember 점심 메뉴는 김밥", post_id="p1")
    env.fake.seed_agent_memory("회의실 예약은 비밀방 전용", metadata={
        "mchat_scope": "room", "mchat_room_id": env.other_room.id})
    reply = (await env.say("/forget 회의실 예약")).assistant_message or ""
    assert "찾지 못했습니다" in reply
    assert env.fake.calls("DELETE", "/memories/") == []
    assert len(env.fake.world.memories) == 2


async def test_5_plain_messages_are_not_uploaded(env: Env) -> None:
    """Item 5: plain messages stay local (the server makes no memories of them)."""
    for i in range(3):
        result = await env.say(f"오늘 라인 점검 {i}", post_id=f"m{i}", respond=False)
        assert result.user_message.is_new
    assert env.fake.requests == []
    assert env.fake.world.data == []


async def test_6_unknown_agent_id_is_not_a_404_the_key_decides(db_path: str) -> None:
    """Item 6: the real server ignores the path's agent id; a wrong key is a 403 rejection."""
    async for env in open_env(db_path):
        env.fake.seed_agent_memory("X부품 불량률 12%", metadata=_room_meta(env))
        cfg = attrs.evolve(ChatConfig(), backend="remote", backend_url=env.fake.url,
                           backend_api_key="agent-key-SECRET-42", backend_agent_id="other")
        async with open_remote_chat_service(cfg, local=env.local, llm=None) as svc:
            assert [m.content for m in await svc.search(env.room.id, env.kim.id, "X부품")] == \
                ["X부품 불량률 12%"]


# -- the rest ------------------------------------------------------------------------------------


async def test_remember_stores_a_masked_memory_with_audience_fields(env: Env) -> None:
    result = await env.say("/remember 담당자 kim@example.com, X부품 불량률 12%", post_id="p2",
                           permalink="http://mm/pl/p2")
    [item] = env.fake.world.data
    assert item.data_type == "memory" and item.content == "담당자 [EMAIL], X부품 불량률 12%"
    assert item.external_user_id is None
    meta = item.metadata or {}
    assert meta["mchat_scope"] == "room" and meta["mchat_room_id"] == env.room.id
    assert meta["mchat_owner_id"] == env.kim.id and meta["mchat_post_id"] == "p2"
    assert meta["mchat_permalink"] == "http://mm/pl/p2"
    assert result.assistant_message == "기억했습니다: 담당자 [EMAIL], X부품 불량률 12%"
    [record] = result.extracted_memories
    assert record.id == item.id and record.room_id == env.room.id
    assert "kim@example.com" not in str(env.fake.world.data)


async def test_replayed_remember_is_stored_once(env: Env) -> None:
    """A re-delivered /remember is answered again but stored once (found by its post id)."""
    first = await env.say("/remember 회의는 3시", post_id="p1")
    again = await env.say("/remember 회의는 3시", post_id="p1")
    assert again.assistant_message == first.assistant_message
    assert not again.user_message.is_new and len(env.fake.world.memories) == 1


async def test_replayed_remember_is_found_behind_a_page_of_newer_items(env: Env) -> None:
    """The replay's look-up pages on: 130 newer items do not make it store a second copy."""
    ticks = itertools.count()
    start = datetime(2026, 1, 1)  # naive UTC, as the server's clock
    env.fake.world.clock = lambda: start + timedelta(seconds=next(ticks))
    await env.say("/remember 회의는 3시", post_id="p1")
    for i in range(130):
        env.fake.seed_memory_item(f"다른 기억 {i}", metadata=_room_meta(env))
    await env.say("/remember 회의는 3시", post_id="p1")
    assert [d.content for d in env.fake.world.data].count("회의는 3시") == 1


async def test_remember_lost_before_the_server_is_stored_on_replay(env: Env) -> None:
    """The first attempt dies (a 400 from a proxy); the re-delivery stores it after all."""
    env.fake.script(Fault(status=400, path="/data"))
    with pytest.raises(Exception):  # noqa: B017 - any ChatServiceError
        await env.say("/remember 회의는 3시", post_id="p1")
    await env.say("/remember 회의는 3시", post_id="p1")
    assert [m.content for m in env.fake.world.memories.values()] == ["회의는 3시"]


async def test_other_rooms_and_old_adapter_metadata_stay_in_their_room(env: Env) -> None:
    env.fake.seed_agent_memory("X부품 불량률 99% (비밀 방)", metadata={
        "scope": "room", "room_id": env.other_room.id})  # written by the old adapter
    env.fake.seed_agent_memory("X부품 불량률 12%", metadata=_room_meta(env))
    answer = (await env.say("X부품 불량률 몇 %야?")).assistant_message or ""
    assert "12%" in answer and "99%" not in answer


async def test_question_through_the_llm_sees_only_masked_visible_memories(db_path: str) -> None:
    async with FakeOpenAI(api_key="sk-llm") as openai:
        llm_cfg = ChatConfig(llm_base_url=openai.url, llm_api_key="sk-llm", llm_model="m")
        async with open_llm(llm_cfg) as llm:
            async for env in open_env(db_path, llm=llm):
                env.fake.seed_agent_memory("X부품 불량률 12%", metadata=_room_meta(env))
                env.fake.seed_agent_memory("X부품 불량률 99% (비밀 방)", metadata={
                    "mchat_scope": "room", "mchat_room_id": env.other_room.id})
                env.fake.seed_agent_memory("X부품 불량률 메모: lee 개인", metadata={
                    "mchat_scope": "personal", "mchat_owner_id": env.lee.id})
                result = await env.say("X부품 불량률 몇 %야? 내 메일 kim@example.com")
    assert result.assistant_message is not None and "12%" in result.assistant_message
    prompt = str(openai.requests[-1].json["messages"])
    assert "12%" in prompt and "99%" not in prompt and "lee 개인" not in prompt
    assert "kim@example.com" not in prompt


async def test_search_is_ephemeral_and_ranked(env: Env) -> None:
    env.fake.seed_agent_memory("배포 담당은 lee", metadata=_room_meta(env))
    env.fake.seed_agent_memory("배포 일정은 금요일", metadata=_room_meta(env))
    result = await env.say("/search 배포 일정")
    assert result.ephemeral
    text = result.assistant_message or ""
    assert text.startswith("'배포 일정' 검색 결과 2건:")
    assert text.index("금요일") < text.index("담당은 lee")


async def test_help_and_summary_from_the_local_store(env: Env) -> None:
    assert (await env.say("/help")).assistant_message == HELP_TEXT
    await env.say("X부품 불량 이슈: 공급사 변경으로 불량률 12% 결정", respond=False)
    reactions: list[str] = []

    async def react(emoji: str) -> None:
        reactions.append(emoji)

    result = await env.say("요약 3시간", react=react)
    assert "12%" in (result.assistant_message or "")
    assert reactions == ["hourglass_flowing_sand", "white_check_mark"]
    assert env.fake.requests == []


async def test_summary_without_a_summarizing_local_says_so(env: Env) -> None:
    @attrs.define
    class Plain:
        inner: Any

        async def send_message(self, *args: Any, **kwargs: Any) -> SendResult:
            return await self.inner.send_message(*args, **kwargs)

    svc = RemoteChatService(local=Plain(env.local), llm=None, api=env.svc._api)  # noqa: SLF001
    result = await svc.send_message(env.room.id, env.kim.id, "@ai 요약", respond=True,
                                    prompt="요약")
    assert "embedded" in (result.assistant_message or "")


async def test_delegates_users_rooms_members_and_edits_to_local(db_path: str) -> None:
    async for env in open_env(db_path, local_wrapper=Spy):
        spy = env.svc._local  # noqa: SLF001 - the Spy the test passed in
        assert await env.svc.find_user_by_email("KIM@example.com") == env.kim
        await env.svc.remove_room_member(env.room.id, env.lee.id)
        await env.svc.edit_message(post_id="p1", content="x")
        await env.svc.delete_message(post_id="p1")
        assert env.fake.requests == []
    # "db": the service reads the post first (an unknown post has no memory in the agent)
    assert "db" in spy.calls
    assert [c for c in spy.calls if c != "db"] == [
        "create_room", "create_room", "create_user", "create_user", "add_room_member",
        "add_room_member", "find_user_by_email", "remove_room_member", "edit_message",
        "delete_message"]


async def test_missing_backend_settings_are_a_config_error(env: Env) -> None:
    with pytest.raises(ConfigError):
        async with open_remote_chat_service(ChatConfig(backend="remote"), local=env.local,
                                            llm=None):
            pass


def test_record_mapping_tolerates_odd_results_and_the_filter_is_one_place() -> None:
    odd = record_from_result({"memory_id": "m1", "content": "x", "created_at": "yesterday",
                              "metadata": "not a dict", "score": "high"})
    assert (odd.id, odd.created_at_ms, odd.score, odd.room_id) == ("m1", 0, 0.0, None)
    aware = record_from_result({"memory_id": "m2", "content": "y",
                                "created_at": "2026-01-01T09:00:00+09:00"})
    assert aware.created_at_ms == int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    room, other = RoomId("r1"), RoomId("r2")
    kim, lee = AgentUserId("kim"), AgentUserId("lee")
    here = attrs.evolve(odd, room_id=room)
    mine = attrs.evolve(odd, scope="personal", owner_id=kim)
    theirs = attrs.evolve(odd, room_id=other)
    rooms = {other: RoomInfo(kind="private", members=frozenset({kim}), team="A")}
    # odd has no room: nobody is known to see it, so no reply shows it
    channel = Audience.of(kind="channel", room=room, members={kim, lee}, asker=kim, teams={"A"})
    assert audience_filter([odd, here, mine, theirs], channel, rooms) == (
        [here], [odd, mine, theirs])
    assert audience_filter([odd, here, mine, theirs], Audience.only(kim, room), rooms)[0] == [
        here, mine, theirs]
    assert audience_filter([odd, here, mine, theirs], Audience.only(lee, room), rooms)[0] == [
        here]
    team = record_from_result({"memory_id": "m3", "content": "z", "metadata": {
        "mchat_scope": "team", "mchat_team_id": "A"}})
    assert (team.scope, team.team_id, team.room_id) == ("team", "A", None)
    assert audience_filter([team], channel, rooms)[0] == [team]
    assert audience_filter([team], Audience.only(lee, room, teams={"B"}), rooms)[0] == []


async def test_memory_pages_past_other_rooms(env: Env) -> None:
    """/memory finds this room's memories behind a page of another room's newer ones."""
    env.fake.seed_memory_item("우리 방 기억: 회의실은 3층", metadata=_room_meta(env))
    for i in range(130):
        env.fake.seed_memory_item(f"다른 방 기억 {i}", metadata={
            "mchat_scope": "room", "mchat_room_id": env.other_room.id})
    listed = (await env.say("/memory")).assistant_message or ""
    assert "회의실은 3층" in listed and "다른 방" not in listed
    assert [r.json for r in env.fake.calls("GET", "/data")] == [None, None]


# -- edits and deletes of posts reach the Agent API where it allows (issue #8) -------------------


async def test_an_edited_remember_post_replaces_its_memory_in_the_agent(env: Env) -> None:
    await env.say("/remember X부품 불량률 12%", post_id="p1")
    await env.svc.edit_message(post_id="p1", content="@ai /remember X부품 불량률 15%")
    assert [m.content for m in env.fake.world.memories.values()] == ["X부품 불량률 15%"]
    assert [d.content for d in env.fake.world.data] == ["X부품 불량률 15%"]
    [item] = env.fake.world.data
    assert item.metadata is not None and item.metadata["mchat_post_id"] == "p1"
    assert item.metadata["mchat_room_id"] == env.room.id  # the same audience fields
    answer = (await env.say("X부품 불량률 몇 %야?", user=env.lee)).assistant_message or ""
    assert "15%" in answer and "12%" not in answer
    before = len(env.fake.requests)
    await env.svc.edit_message(post_id="p1", content="@ai /remember X부품 불량률 15%")
    assert len(env.fake.world.memories) == 1  # a replayed edit changes nothing
    assert [r.method for r in env.fake.requests[before:]] == ["GET"]


async def test_a_deleted_remember_post_deletes_its_memory_in_the_agent(env: Env) -> None:
    await env.say("/remember 라인 2 가동률 87%", post_id="p1")
    await env.say("/remember 라인 3 가동률 90%", post_id="p2")
    await env.svc.delete_message(post_id="p1")
    assert [m.content for m in env.fake.world.memories.values()] == ["라인 3 가동률 90%"]
    assert [d.content for d in env.fake.world.data] == ["라인 3 가동률 90%"]


async def test_editing_a_plain_message_costs_no_agent_request(env: Env) -> None:
    await env.say("점심 뭐 먹지", post_id="p1", respond=False)
    await env.svc.edit_message(post_id="p1", content="점심은 12시")
    await env.svc.delete_message(post_id="p1")
    assert env.fake.requests == []


async def test_an_edit_whose_old_memory_cannot_be_found_stores_no_second_version(
        env: Env) -> None:
    """The memory was deleted in the agent but its row remains: the edit must not add a second
    current version beside whatever still answers."""
    await env.say("/remember 금형 1호기 점검 주기 2주", post_id="p1")
    for memory_id in list(env.fake.world.memories):
        del env.fake.world.memories[memory_id]
    await env.svc.edit_message(post_id="p1", content="@ai /remember 금형 1호기 점검 주기 3주")
    assert env.fake.world.memories == {}
    assert [d.content for d in env.fake.world.data] == ["금형 1호기 점검 주기 2주"]


async def test_the_members_recheck_reaches_the_audience(env: Env) -> None:
    """Someone who left a private channel while we were disconnected loses its memories at the
    re-check (``Mapper.resync_members`` calls ``set_room_members``), on the remote backend too."""
    for user in (env.kim, env.lee):
        await env.svc.add_room_member(env.other_room.id, user.id)
    await env.say("/remember 신제품 코드명은 블루버드", room=env.other_room)
    dm = await env.svc.create_room(name="dm-lee", kind="direct")
    await env.svc.add_room_member(dm.id, env.lee.id)
    asked = "신제품 코드명 뭐였지?"
    assert "블루버드" in ((await env.say(asked, user=env.lee, room=dm)).assistant_message or "")
    assert await env.svc.set_room_members(env.other_room.id, [env.kim.id]) == (0, 1)
    assert "블루버드" not in ((await env.say(asked, user=env.lee, room=dm)).assistant_message
                            or "")
