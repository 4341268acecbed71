"""What a question asks for (chat.asked): the unit, time, length of time, amount or interval a
memory must state to answer it."""

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
    assert asked_kind("What did Stark Industries fail?") == Asked()
    assert asked_kind("누구나 볼 수 있어?") == Asked()  # anyone: no who asked


@pytest.mark.parametrize(("question", "someone", "nobody"), [
    ("초도품 검사 누가 해?", "Z모듈 초도품 검사(FAI)는 QA팀 박지민 담당",
     "Z모듈 초도품 검사(FAI) 합격"),
    ("시험 결과서 원본 누가 갖고 있어?", "시험성적서 원본은 품질보증팀 문서함에 보관",
     "시험성적서 원본 스캔 완료"),
    ("용접 인장강도 시험은 누가 하나요?", "용접 인장강도 시험은 오승철 프로가 진행",
     "용접 인장강도 시험 기준 400MPa 이상"),
    ("교정 담당자가 누구예요?", "교정은 이 과장님께 문의", "교정 주기 6개월"),
    ("Who owns the corrective action?", "Owner of the corrective action is Dana",
     "The corrective action is due on Friday"),
    ("Who ran the gauge R&R study?", "The QA team ran the gauge R&R study",
     "Gauge R&R study showed 8% variation"),
    ("Who is the contact at Stark Industries?", "Our contact at Stark Industries is Tony Kim",
     "Vendor Stark Industries failed the first article inspection"),  # the company is asked
    ("누가 발표해?", "발표는 @jiwoo", "발표는 12월 3일 본관 강당"),
])
def test_who_is_answered_by_a_memory_naming_someone_else(question: str, someone: str,
                                                         nobody: str) -> None:
    """A who-question is answered by a name, a team or a company the question does not name;
    never by a memory about the thing asked that names nobody (or only what was asked)."""
    asked = asked_kind(question)
    assert asked.who
    assert states(someone, asked)
    assert not states(nobody, asked)


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



@pytest.mark.parametrize(("question", "interval", "no_interval"), [
    ("세척 언제마다 해?", "세척은 500샷마다", "세척 11월 28일 완료"),
    ("얼마나 자주 교정해?", "교정은 매주 월요일", "교정 11월 28일 완료"),
    ("몇 시간마다 점검해요?", "점검은 매일 아침", "500시간 시점 베어링 마모 확인"),
    ("필터 몇 주에 한 번 갈아?", "필터 교체 2주에 한 번", "필터 교체 2주 걸림"),
    ("기록계 백업 한 달에 몇 번 해?", "기록계 백업 월 1회", "기록계 백업 3회 실패"),
    ("교정 주기 얼마야?", "교정 주기 3개월", "교정 3개월 전 완료"),
    ("교정 주기 얼마야?", "6개월 주기로 교정", "교정 비용 6만 원"),
    ("검증 주기가 어떻게 되나요?", "기준 보드 검증은 교대조마다 1회", "기준 보드 검증 11월 완료"),
    ("How often do we calibrate the torque driver?", "The driver is calibrated weekly",
     "Calibrated the driver on Tuesday"),
    ("How often is belt tension checked?", "Belt tension is checked every 4 hours",
     "Belt tension was checked 4 hours ago"),
    ("How frequently is resin tested?", "Resin is tested once per lot",
     "Resin was tested on lot 8812"),
    ("How many times per shift is the pot skimmed?", "The pot is skimmed twice a shift",
     "The pot was skimmed at the start of the shift"),
    ("Every how many hours is the filter changed?", "The filter is changed every 8 hours",
     "The filter was changed 8 hours ago"),
    ("교정 주기 얼마야?", "교정 간격 6개월", "교정 6개월 전 완료"),
])
def test_how_often_is_answered_by_an_interval_only(question: str, interval: str,
                                                   no_interval: str) -> None:
    """A how-often question is answered by an interval in any unit, not by a date, a moment,
    a count or a length of time (before: read as asking a time or a number, or nothing)."""
    asked = asked_kind(question)
    assert states(interval, asked)
    assert not states(no_interval, asked)


@pytest.mark.parametrize(("question", "revision", "none"), [
    ("도면 개정 몇이야", "도면 개정 A", "도면 배포 완료"),
    ("기준서 몇 번째 개정이야?", "기준서 Rev.C 배포", "기준서 배포 완료"),
    ("기준서 버전 몇이죠?", "기준서 버전 2 배포", "기준서 배포 완료"),
])
def test_a_revision_asked_with_myeot_is_a_letter_or_a_number(question: str, revision: str,
                                                             none: str) -> None:
    asked = asked_kind(question)
    assert states(revision, asked)
    assert not states(none, asked)


def test_how_often_asks_for_an_interval_not_a_time_or_number() -> None:
    assert asked_kind("금형 세척 언제마다 하지?") == Asked(often=True)
    assert asked_kind("How often is mold 2 cleaned?") == Asked(often=True)
    assert not asked_kind("세척 언제 했어?").often  # a time
    # 간격 and interval are spacings too, 빈도 and frequency rates: no interval asked
    assert not asked_kind("볼트 간격 몇 mm야?").often
    assert not asked_kind("What's the confidence interval?").often
    # a yes/no question about the period asks for no interval: 주기 단축 answers it
    assert not asked_kind("스텐실 세척 주기 줄였어?").often
    assert states("스텐실 세척 주기 단축", asked_kind("스텐실 세척 주기 줄였어?"))
    # a letter is no count outside a revision
    assert not asked_kind("불량 몇 건이야?").revision
    assert not states("불량 A등급", asked_kind("불량 몇 건이야?"))


_HOW_OFTEN = ("언제마다 해?", "얼마나 자주 해?", "몇 {u}마다 해?", "주기가 어떻게 돼?",
              "몇 {u}에 한 번 해?", "주기 얼마야?")


@given(n=st.integers(1, 9_999), unit=st.sampled_from(("샷", "시간", "일", "주", "개월", "사이클")),
       form=st.sampled_from(("{n}{u}마다", "{n}{u}에 한 번", "주기 {n}{u}", "{n}{u} 주기로",
                             "{n}{u} 간격으로", "{n}{u}에 2회")),
       question=st.sampled_from(_HOW_OFTEN))
def test_an_interval_answers_how_often_and_a_moment_does_not(n: int, unit: str, form: str,
                                                             question: str) -> None:
    """However the interval is written and the question asked, `N단위마다` answers it; the same
    number and unit as a moment (`N단위 시점에 점검 완료`) never does."""
    asked = asked_kind("세척 " + question.format(u=unit))
    assert asked.often
    assert states("세척 " + form.format(n=n, u=unit), asked)
    assert not states(f"세척 {n}{unit} 시점에 점검 완료", asked)


@given(n=st.integers(2, 999), unit=st.sampled_from(("hours", "days", "weeks", "months", "lots")),
       form=st.sampled_from(("every {n} {u}", "once every {n} {u}", "at intervals of {n} {u}")),
       question=st.sampled_from(("How often is it cleaned?", "How frequently do we clean it?",
                                 "Every how many {u} is it cleaned?")))
def test_an_interval_answers_how_often_in_english(n: int, unit: str, form: str,
                                                  question: str) -> None:
    asked = asked_kind(question.format(u=unit))
    assert states("It is cleaned " + form.format(n=n, u=unit), asked)
    assert not states(f"It was cleaned {n} {unit} ago", asked)


@pytest.mark.parametrize(("question", "memory", "stated"), [
    ("매트 몇 개 샀어?", "미끄럼 방지 매트 20장 구매", True),
    ("프레스 몇 개 돌아가?", "프레스 3대 가동", True),
    ("불량 몇 개 나왔어?", "도장 박리 불량 15건 발생", True),
    ("지그 몇 개 남았어?", "지그 2세트 보관", True),
    ("불량 몇 개 나왔어?", "택트타임 42초로 단축", False),  # a time, no count of things
    ("작업자 몇 개야?", "작업자 12명 배치", False),  # people are no things
    ("프레스 몇 대 돌아가?", "프레스 부품 3개 교체", False),  # 대 is asked, not 개
    ("매트 몇 장 샀어?", "매트 20개 구매", False),  # only 개 is the general counter
])
def test_the_general_counter_is_answered_by_a_things_own_counter(
        question: str, memory: str, stated: bool) -> None:
    """개 counts anything: 몇 개 is answered by 20장, 3대, 15건, 2세트 (how a team writes the
    count of sheets, machines, cases, sets), never by people or a time."""
    assert states(memory, asked_kind(question)) is stated
