"""Background memory extraction: LLM only, debounced per room, errors contained."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from functools import partial

import trio
import trio.testing

from mchat_actors.chat.embedded import open_embedded_chat_service
from mchat_actors.chat.extraction import parse_extraction
from mchat_actors.errors import ChatServiceError

from .chat_fakes import FakeClock, FakeLLM
from .conftest import World, make_world

DEBOUNCE_S = 5.0


def extract_every_line(messages: Sequence[Mapping[str, str]]) -> str:
    """A fake model that turns each numbered chat line into one memory."""
    lines = messages[-1]["content"].splitlines()
    return json.dumps([{"memory": line.split(": ", 1)[1], "message": i}
                       for i, line in enumerate(lines, 1)], ensure_ascii=False)


def live_memories(world: World) -> list[sqlite3.Row]:
    return world.svc._conn.execute(  # noqa: SLF001 - white-box check
        "SELECT * FROM memories WHERE deleted_at IS NULL ORDER BY id").fetchall()


async def test_nothing_is_extracted_without_an_llm(world: World,
                                                   mock_clock: trio.testing.MockClock) -> None:
    """Without an LLM, ordinary messages never become memories."""
    await world.say(world.quality, world.kim, "X부품 불량률 12%", respond=False)
    mock_clock.jump(60)
    await world.svc.wait_extractions_idle()
    assert live_memories(world) == [] and world.svc.statistics().runs == 0


async def test_one_extraction_per_burst(db_path: str, clock: FakeClock,
                                        mock_clock: trio.testing.MockClock) -> None:
    """Messages within the debounce window are extracted together, once, after it."""
    llm = FakeLLM(extract_every_line)
    async with open_embedded_chat_service(db_path, llm=llm, clock=clock,
                                          extraction_debounce_s=DEBOUNCE_S) as svc:
        world = await make_world(svc, clock)
        await world.say(world.quality, world.kim, "X부품 불량률 12%", post_id="p1", respond=False,
                        permalink="http://mm/_redirect/pl/p1")
        mock_clock.jump(3)
        await world.say(world.quality, world.lee, "배포는 금요일", post_id="p2", respond=False)
        mock_clock.jump(3)
        await trio.testing.wait_all_tasks_blocked()
        assert svc.statistics().runs == 0  # the second message moved the deadline
        mock_clock.jump(DEBOUNCE_S)
        await svc.wait_extractions_idle()
        assert len(llm.calls) == 1
        memories = live_memories(world)
        assert [(m["content"], m["source_post_id"], m["kind"]) for m in memories] == [
            ("X부품 불량률 12%", "p1", "extracted"), ("배포는 금요일", "p2", "extracted")]
        # each fact's author and source link are its message's
        assert [(m["author_id"], m["permalink"]) for m in memories] == [
            (world.kim.id, "http://mm/_redirect/pl/p1"), (world.lee.id, None)]
        assert svc.statistics().memories == 2


async def test_simultaneous_messages_in_two_rooms(db_path: str, clock: FakeClock,
                                                  mock_clock: trio.testing.MockClock) -> None:
    """Concurrent messages raise nothing and give one extraction per room."""
    llm = FakeLLM(extract_every_line)
    async with open_embedded_chat_service(db_path, llm=llm, clock=clock,
                                          extraction_debounce_s=DEBOUNCE_S) as svc:
        world = await make_world(svc, clock)
        async with trio.open_nursery() as nursery:
            for topic in ("품질 회의", "출하 검사", "납기 변경"):
                nursery.start_soon(partial(world.say, world.quality, world.kim, f"{topic} 완료",
                                           respond=False))
                nursery.start_soon(partial(world.say, world.secret, world.park, f"{topic} 보류",
                                           respond=False))
        mock_clock.jump(DEBOUNCE_S + 1)
        await svc.wait_extractions_idle()
        assert len(llm.calls) == 2 and svc.statistics().failures == 0
        assert len(live_memories(world)) == 6


async def test_extraction_errors_are_counted_not_raised(db_path: str, clock: FakeClock,
                                                        mock_clock: trio.testing.MockClock,
                                                        caplog) -> None:  # noqa: ANN001
    """A failing LLM during background extraction is logged and counted; posting still works."""
    llm = FakeLLM(error=ChatServiceError("boom"))
    async with open_embedded_chat_service(db_path, llm=llm, clock=clock,
                                          extraction_debounce_s=DEBOUNCE_S) as svc:
        world = await make_world(svc, clock)
        await world.say(world.quality, world.kim, "X부품 불량률 12%", respond=False)
        mock_clock.jump(DEBOUNCE_S + 1)
        await svc.wait_extractions_idle()
        assert svc.statistics().failures == 1
        assert "memory extraction failed" in caplog.text
        await world.say(world.quality, world.kim, "다음 메시지", respond=False)


async def test_commands_are_not_extracted(db_path: str, clock: FakeClock,
                                          mock_clock: trio.testing.MockClock) -> None:
    """Command posts do not schedule an extraction."""
    llm = FakeLLM(extract_every_line)
    async with open_embedded_chat_service(db_path, llm=llm, clock=clock,
                                          extraction_debounce_s=DEBOUNCE_S) as svc:
        world = await make_world(svc, clock)
        await world.say(world.quality, world.kim, "/help")
        mock_clock.jump(DEBOUNCE_S + 1)
        await svc.wait_extractions_idle()
        assert llm.calls == []


async def test_memory_command_extracts_now_with_an_llm(db_path: str, clock: FakeClock) -> None:
    """/memory with an LLM extracts from the recent conversation at once and lists the result."""
    llm = FakeLLM(extract_every_line)
    async with open_embedded_chat_service(db_path, llm=llm, clock=clock,
                                          extraction_debounce_s=3600) as svc:
        world = await make_world(svc, clock)
        await world.say(world.quality, world.kim, "공급사 Acme 납기 5월 3일", respond=False)
        result = await world.say(world.quality, world.lee, "/memory")
        assert "공급사 Acme 납기 5월 3일" in (result.assistant_message or "")
        assert [m.content for m in result.extracted_memories] == ["공급사 Acme 납기 5월 3일"]


async def test_edit_replaces_extracted_memories(db_path: str, clock: FakeClock,
                                                mock_clock: trio.testing.MockClock) -> None:
    """Editing an extracted-from post drops its memories and extracts the new text."""
    llm = FakeLLM(extract_every_line)
    async with open_embedded_chat_service(db_path, llm=llm, clock=clock,
                                          extraction_debounce_s=DEBOUNCE_S) as svc:
        world = await make_world(svc, clock)
        await world.say(world.quality, world.kim, "검사 결과 합격", post_id="p1", respond=False)
        mock_clock.jump(DEBOUNCE_S + 1)
        await svc.wait_extractions_idle()
        await svc.edit_message(post_id="p1", content="검사 결과 불합격 kim@example.com")
        assert live_memories(world) == []
        mock_clock.jump(DEBOUNCE_S + 1)
        await svc.wait_extractions_idle()
        assert [m["content"] for m in live_memories(world)] == ["검사 결과 불합격 [EMAIL]"]


def test_parse_extraction_validates_the_schema_and_the_attribution() -> None:
    """A fenced JSON answer valid against the schema is used; a fact citing no message, a
    message out of range or a message it is not written in is dropped (it would be attributed
    to someone who did not say it); anything not matching the schema gives []."""
    messages = ["X부품 불량률 12%", "lee: 배포는 금요일"]
    fenced = ('```json\n[{"memory": "X부품 불량률 12%", "message": 1},'
              ' {"memory": "배포는 금요일", "message": 2},'
              ' {"memory": "배포는 금요일", "message": 1},'
              ' {"memory": "배포는 금요일", "message": 9}]\n```')
    assert parse_extraction(fenced, messages) == [("X부품 불량률 12%", 0), ("배포는 금요일", 1)]
    for junk in ('["bare string"]', '[{"memory": "A"}]', "- 첫째\n* 둘째", "no facts",
                 '{"memory": "A", "message": 1}'):
        assert parse_extraction(junk, messages) == []
    assert parse_extraction("[]", messages) == []
