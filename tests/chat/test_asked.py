"""What a question asks for (chat.asked): the unit, time, length of time or amount a memory
must state to answer it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mchat_actors.chat.asked import Asked, asked_kind, states


@pytest.mark.parametrize(("question", "memory", "stated"), [
    ("라인 4 작업자 몇 명이야?", "라인 4 택트타임 42초로 단축", False),
    ("라인 4 작업자 몇 명이야?", "라인 4 작업자 12명 배치", True),
    ("측정실 온도 몇 도로 유지해?", "측정실 온도는 23±1도 유지", True),
    ("보류 재고 몇 개야?", "보류 재고 320 EA", True),
    ("재작업 몇 대 했어?", "펌웨어 버그로 재작업 200대", True),
    ("인장강도 기준 몇 MPa야?", "인장강도 기준 400MPa 이상", True),
    ("인장강도 기준 몇 MPa야?", "인장강도 기준 400 kgf", False),
    ("시험 몇 사이클이야?", "냉열충격 500사이클 조건", True),
    ("How many days does the audit take?", "The audit takes 3 days", True),
    ("How many days does the audit take?", "The audit is on Monday", False),
    ("R사 납기 언제야?", "R사 납품 단가 3% 인하 합의", False),
    ("R사 납기 언제야?", "R사 납기 12월 15일", True),
    ("When does the pilot run start?", "The pilot run starts on the 14th", True),
    ("When is onboarding?", "Onboarding is every first Monday", True),
    ("회의 몇 시야?", "회의는 목요일 오후 2시", True),
    ("How long is the warranty?", "Warranty returns doubled in October", False),
    ("How long is the warranty?", "The warranty is 24 months", True),
    ("세척 주기 얼마야?", "2라인 스텐실 세척 주기 단축", False),  # the 2 of 2라인 is a name
    ("세척 주기 얼마야?", "스텐실 세척 주기 4시간으로 단축", True),
    ("How much did scrap cost?", "Scrap cost was $12,000 in Q3", True),
    ("What is the spec?", "Spec is tight", True),  # nothing recognisable asked: no constraint
    ("How many chargers came back?", "Charger returns doubled", True),  # a count of things
])
def test_a_memory_states_what_is_asked_or_not(question: str, memory: str, stated: bool) -> None:
    assert states(memory, asked_kind(question)) is stated


def test_questions_that_name_no_kind_ask_nothing() -> None:
    assert asked_kind("P-330 브래킷 도면 바뀐 거 뭐야?") == Asked()
    assert asked_kind("Who is the contact at Stark Industries?") == Asked()


# up to four digits: five are a long code to chat.subject (20240517, and so 10000도 reads as the
# code 10000 + the particle 도)
@given(n=st.integers(0, 9_999), unit=st.sampled_from(("명", "건", "개", "대", "%", "도", "초")),
       ending=st.sampled_from(("", "야", "이야", "예요", "이에요", "인가요", "로", "에", "이지")))
def test_the_number_with_its_unit_states_it_whatever_the_ending(n: int, unit: str,
                                                                ending: str) -> None:
    """`몇 명이야?` is answered by `12명`; another unit never does (a 42초 is no 명)."""
    asked = asked_kind(f"검사원 몇 {unit}{ending}?")
    assert states(f"검사원 {n}{unit}", asked)
    other = "초" if unit != "초" else "명"
    assert not states(f"검사원 {n}{other}", asked)
