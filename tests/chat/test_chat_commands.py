"""parse_command: commands versus questions."""

from __future__ import annotations

import pytest

from mchat_actors.chat.commands import (
    DEFAULT_SUMMARY_HOURS,
    Command,
    Forget,
    Help,
    ListMemories,
    Remember,
    Search,
    Summarize,
    parse_command,
)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("/remember X부품 불량률 12%", Remember("X부품 불량률 12%")),
        ("  /REMEMBER   배포는 금요일  ", Remember("배포는 금요일")),
        ("@ai /remember 회의 10시", Remember("회의 10시")),
        ("/remember", Remember("")),
        ("/기억 공급사 Acme", Remember("공급사 Acme")),
        ("/search 배포 일정", Search("배포 일정")),
        ("/forget m12", Forget("m12")),
        ("/forget X부품 불량률", Forget("X부품 불량률")),
        ("/memory", ListMemories()),
        ("/memory history 리드타임", ListMemories(history="리드타임")),
        ("@ai /memory 이력 Sunrise 리드타임", ListMemories(history="Sunrise 리드타임")),
        ("/기억이력 X부품", ListMemories(history="X부품")),
        ("/memory whatever", ListMemories()),
        ("/help", Help()),
        ("/도움말", Help()),
    ],
)
def test_recognises_slash_commands(prompt: str, expected: Command) -> None:
    """Each slash command (any case, after a mention) parses to its command with its argument."""
    assert parse_command(prompt) == expected


@pytest.mark.parametrize(
    ("prompt", "hours"),
    [
        ("요약", DEFAULT_SUMMARY_HOURS), ("요약 3시간", 3), ("요약 3h", 3), ("요약 12 hours", 12),
        ("요약해줘", DEFAULT_SUMMARY_HOURS), ("요약 2일", 48), ("3시간 요약", 3),
        ("최근 6시간 요약해줘", 6), ("/summary 5", 5), ("@ai 요약 1시간", 1),
        ("요약 9999시간", 168),
    ],
)
def test_recognises_summaries_with_hours(prompt: str, hours: int) -> None:
    """요약 [N시간] (also Nh, N일, 'N시간 요약', /summary N) parses, clamped to a week."""
    assert parse_command(prompt) == Summarize(hours)


@pytest.mark.parametrize(
    "prompt",
    [
        "help me with the report", "@ai help me ...", "X부품 불량률 몇 %야?", "/foo bar",
        "/remembers x", "요약하면 뭐야?", "요약 좀 해줘 회의 내용", "", "   ", "remember to deploy",
        "/summary yesterday",
    ],
)
def test_everything_else_is_a_question(prompt: str) -> None:
    """Prose, unknown slash words and near-misses are not commands."""
    assert parse_command(prompt) is None
