"""요약 [N시간]: built-in and LLM summaries, reactions, idempotency per window."""

from __future__ import annotations

import sqlite3

import pytest

from mchat_actors.chat.embedded import open_embedded_chat_service
from mchat_actors.errors import ChatServiceError, MattermostUnavailable

from .chat_fakes import FakeClock, FakeLLM
from .conftest import World, make_world

HOUR = 3600.0


async def conversation(world: World) -> None:
    """Three hours of quality-room talk, the oldest line five hours ago."""
    start = world.clock.now
    lines = [
        (-5 * HOUR, world.kim, "어제 회식 장소는 강남역"),
        (-2 * HOUR, world.kim, "X부품 불량률이 12%로 올라서 공급사 Acme에 원인 분석 요청했습니다"),
        (-1.5 * HOUR, world.lee, "좋아요"),
        (-1 * HOUR, world.lee, "배포 일정은 금요일 오후 3시로 확정, 담당 010-1234-5678"),
        (-0.5 * HOUR, world.kim, "@ai X부품 불량률 몇 %야?"),
    ]
    for i, (offset, user, text) in enumerate(lines):
        world.clock.now = start + offset
        await world.say(world.quality, user, text, post_id=f"c{i}", respond=False)
    world.clock.now = start


def summaries(world: World) -> list[sqlite3.Row]:
    return world.svc._conn.execute(  # noqa: SLF001 - white-box check
        "SELECT * FROM memories WHERE kind = 'summary' AND deleted_at IS NULL"
        " AND valid_to IS NULL").fetchall()


async def test_builtin_summary_lists_participants_count_and_key_lines(world: World) -> None:
    """Without an LLM, 요약 3시간 gives participants, the message count and key lines, masked."""
    await conversation(world)
    result = await world.say(world.quality, world.kim, "요약 3시간")
    text = result.assistant_message or ""
    assert "최근 3시간 요약" in text and "메시지 3개" in text and "kim, lee" in text
    assert "12%" in text and "금요일 오후 3시" in text and "[PHONE]" in text
    assert "강남역" not in text  # outside the window
    assert "몇 %야" not in text  # questions to the bot are left out
    (memory,) = result.extracted_memories
    assert (memory.scope, memory.room_id, memory.content) == ("room", world.quality.id, text)


async def test_summary_is_idempotent_per_window(world: World) -> None:
    """Asking twice in the same hour for the same span keeps one current summary memory: the
    second is a new version of the first, which stays in the history."""
    await conversation(world)
    first = await world.say(world.quality, world.kim, "요약 3시간")
    world.clock.now += 60
    second = await world.say(world.quality, world.lee, "@ai 요약 3h")
    first_id, second_id = (int(r.extracted_memories[0].id[1:]) for r in (first, second))
    assert len(summaries(world)) == 1
    (old,) = world_rows(world, "SELECT superseded_by FROM memories WHERE id = ?", first_id)
    assert old[0] == second_id
    await world.say(world.quality, world.lee, "요약 2시간")
    world.clock.now += HOUR
    await world.say(world.quality, world.lee, "요약 3시간")
    assert len(summaries(world)) == 3


def world_rows(world: World, sql: str, *args: object) -> list[tuple[object, ...]]:
    return [tuple(r) for r in world.svc._conn.execute(sql, args).fetchall()]  # noqa: SLF001


async def test_summary_reacts_before_and_after(world: World) -> None:
    """The hourglass reaction comes before the work, the check mark after it."""
    await conversation(world)
    seen: list[str] = []

    async def react(emoji: str) -> None:
        seen.append(emoji)

    await world.say(world.quality, world.kim, "요약", react=react)
    assert seen == ["hourglass_flowing_sand", "white_check_mark"]


async def test_failing_reactions_are_ignored(world: World) -> None:
    """A reaction that raises does not stop the summary."""
    await conversation(world)

    async def react(emoji: str) -> None:
        raise MattermostUnavailable("down")

    result = await world.say(world.quality, world.kim, "요약 3시간", react=react)
    assert "최근 3시간 요약" in (result.assistant_message or "")


async def test_summary_of_a_quiet_room_stores_nothing(world: World) -> None:
    """No messages in the window: a plain reply and no memory."""
    result = await world.say(world.quality, world.kim, "요약 1시간")
    assert "요약할 대화가 없습니다" in (result.assistant_message or "")
    assert result.extracted_memories == () and summaries(world) == []


async def test_llm_summary_gets_the_masked_conversation(db_path: str, clock: FakeClock) -> None:
    """With an LLM, the conversation is sent masked and the model's summary is posted."""
    llm = FakeLLM("- X부품 불량률 12%\n- 배포 금요일 15시")
    async with open_embedded_chat_service(db_path, llm=llm, clock=clock) as svc:
        world = await make_world(svc, clock)
        await conversation(world)
        result = await world.say(world.quality, world.kim, "요약 3시간")
        assert "배포 금요일 15시" in (result.assistant_message or "")
        prompt = llm.calls[-1][1]["content"]
        assert "[PHONE]" in prompt and "010-1234-5678" not in prompt and "강남역" not in prompt


async def test_llm_summary_errors_propagate(db_path: str, clock: FakeClock) -> None:
    """A failing LLM makes the summary fail with ChatServiceError and stores nothing."""
    async with open_embedded_chat_service(db_path, llm=FakeLLM(error=ChatServiceError("x")),
                                          clock=clock) as svc:
        world = await make_world(svc, clock)
        await conversation(world)
        with pytest.raises(ChatServiceError):
            await world.say(world.quality, world.kim, "요약 3시간")
        assert summaries(world) == []


async def test_summarize_room_is_the_scheduled_summary_hook(world: World) -> None:
    """summarize_room stores the window's summary without a message, or None when quiet."""
    assert await world.svc.summarize_room(world.quality.id, hours=1) is None
    await conversation(world)
    memory = await world.svc.summarize_room(world.quality.id, hours=24)
    assert memory is not None and "메시지 4개" in memory.content  # the 24 hours include 강남역
