"""The subject rules: same subject = same entity and attribute with equal identifiers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mchat_actors.chat.subject import identifiers, identifiers_match, subject_of, value_of


@pytest.mark.parametrize(("a", "b"), [
    ("라인 2 가동률 87%", "라인 2 가동률은 지금 90%"),
    ("라인 2 가동률 87%", "2라인 가동률 90%"),
    ("X부품 불량률 12%", "X부품 불량률은 15%로 올랐다"),
    ("LOT 4471 담당: 김", "로트 4471 담당: 박"),
    ("Sunrise 리드타임 2주", "Sunrise 리드타임: 3주"),
    ("Yield on line 3 improved to 98.2%", "line 3 yield is 97%"),
    ("금형 1호기 세척 주기는 5000샷", "금형 1호기 세척 주기 3000샷"),
])
def test_versions_of_one_fact_share_a_subject(a: str, b: str) -> None:
    assert subject_of(a) and subject_of(a) == subject_of(b)


@pytest.mark.parametrize(("a", "b"), [
    ("라인 2 가동률 87%", "라인 3 가동률 90%"),
    ("금형 1호기 세척 주기는 5000샷", "금형 2호기 세척 주기는 5000샷"),
    ("LOT 4471 는 재검사 대상", "LOT 4472 는 재검사 대상"),
    ("X부품 불량률 12%", "Y부품 불량률 12%"),
    ("G7 양산 일정 12월 3일", "G8 양산 일정 12월 3일"),
    ("K-220 단가 1200원", "K-221 단가 1200원"),
    ("라인 2 가동률 87%", "라인 2 불량률 3%"),
])
def test_siblings_and_other_attributes_have_different_subjects(a: str, b: str) -> None:
    assert subject_of(a) != subject_of(b)


@pytest.mark.parametrize("text", [
    "Supplier Acme ships housings from the Penang plant",  # no value, no marker
    "87%",
    "",
])
def test_texts_without_a_recognisable_subject_have_none(text: str) -> None:
    assert subject_of(text) == ""


def test_value_is_what_follows_the_subject_in_the_memorys_own_spelling() -> None:
    assert value_of("Sunrise 리드타임 3주") == "3주"
    assert value_of("Torque spec for the cover bolts is 2.5 Nm") == "2.5 Nm"
    assert value_of("회의록은 공유 드라이브") == "공유 드라이브"


@pytest.mark.parametrize(("text", "expected"), [
    ("라인 2 가동률 알려줘", {"line 2"}),
    ("로트 4471 담당자", {"lot 4471"}),
    ("X부품 불량률 몇 %야?", {"part x"}),  # as "part X" is written in English
    ("금형 2호기 세척 주기", {"mold 2호기"}),
    ("LOT 20240517-0012345 재검사", {"lot 20240517-0012345"}),
    ("도면 02-1234-5678 개정", {"drawing 02-1234-5678"}),
    ("G7 양산", {"g7"}),
    ("불량률 12%, 2.5 Nm, 45dB, 5월 17일", set()),
    # a unit with the copula or a particle attached asks for a value, it names nothing
    ("용접 인장강도 스펙이 몇 MPa야?", set()),
    ("허용 진동 몇 mm/s예요?", set()),
    ("R사랑 단가 몇 % 내리기로 했어?", {"r사"}),
    ("X부품이야?", {"part x"}),
    # a question word after an identifier noun is not the thing's name (라인 A, 게이트 B are)
    ("지그 왜 바꿔?", set()),
    ("라인 A 가동률", {"line a"}),
    # a colon or full stop after it is punctuation, not part of the name
    ("Containment for lot 4410: 100% sorting", {"lot 4410"}),
    ("Released lot 4410.", {"lot 4410"}),
    ("라인 2: 가동률 87%", {"line 2"}),
    ("EOL 소프트웨어 v1.7 배포", {"v1.7"}),
])
def test_identifiers(text: str, expected: set[str]) -> None:
    assert identifiers(text) == expected


@given(unit=st.sampled_from(("MPa", "ppm", "mm", "kg", "rpm", "dB", "Nm", "um", "kgf")),
       ending=st.sampled_from(("야", "이야", "예요", "이에요", "입니다", "인데", "인가요", "이죠",
                               "로", "으로", "은", "는", "이", "가", "를", "의", "에", "까지",
                               "부터", "이랑", "랑", "보다")),
       number=st.sampled_from(("", "400", "2.5", "45")))
def test_a_unit_with_an_ending_is_no_identifier(unit: str, ending: str, number: str) -> None:
    """`몇 MPa야?`, `400MPa이에요`: a unit (with or without its number) followed by the
    copula or a particle measures something; it never names a thing a memory must name."""
    assert identifiers(f"인장강도 기준 {number}{unit}{ending}") == frozenset()
    assert identifiers(f"인장강도 기준 몇 {unit}{ending}?") == frozenset()


def test_identifiers_match_on_the_number_and_the_noun_when_both_name_it() -> None:
    assert identifiers_match(identifiers("2호기 세척"), identifiers("금형 2호기 세척 주기"))
    assert not identifiers_match(identifiers("금형 2호기"), identifiers("프레스 2호기 점검"))
    assert not identifiers_match(identifiers("X부품"), identifiers("Y부품 불량률"))
    assert identifiers_match(frozenset(), identifiers("Y부품 불량률"))


NOUNS = ("라인", "LOT", "로트", "금형", "설비", "도면", "품번", "Line", "셀")
ATTRS = ("가동률", "불량률", "세척 주기", "담당자", "재고", "yield", "상태")
VALUES = ("87%", "12.5%", "3주", "5000샷", "김민수", "12월 3일", "보류", "96.1%")


@given(noun=st.sampled_from(NOUNS), attr=st.sampled_from(ATTRS),
       a=st.integers(1, 99_999), b=st.integers(1, 99_999),
       va=st.sampled_from(VALUES), vb=st.sampled_from(VALUES),
       particle=st.sampled_from(("", "은", "는", "의")))
def test_identifiers_decide_whether_two_memories_are_one_subject(
        noun: str, attr: str, a: int, b: int, va: str, vb: str, particle: str) -> None:
    """`<noun> <n> <attr> <value>`: equal numbers are one subject whatever the values; different
    numbers never are (siblings are never superseded)."""
    first = f"{noun} {a} {attr}{particle} {va}"
    second = f"{noun} {b} {attr} {vb}"
    assert subject_of(first)
    assert (subject_of(first) == subject_of(second)) == (a == b)
    assert identifiers_match(identifiers(first), identifiers(second)) == (a == b)


@given(letter_a=st.sampled_from("ABCDGKMXYZ"), letter_b=st.sampled_from("ABCDGKMXYZ"),
       kind=st.sampled_from(("부품", "모듈", "동")), value=st.sampled_from(VALUES))
def test_lettered_names_are_identifiers(letter_a: str, letter_b: str, kind: str,
                                        value: str) -> None:
    first, second = f"{letter_a}{kind} 불량률 {value}", f"{letter_b}{kind} 불량률 {value}"
    assert (subject_of(first) == subject_of(second)) == (letter_a == letter_b)


@pytest.mark.parametrize(("question", "memory", "same"), [
    ("What is the defect rate of part X?", "X부품 불량률 12%", True),
    ("part X defect rate", "Y부품 불량률 3%", False),
    ("line A uptime?", "A라인 가동률 87%", True),
    ("Z모듈 온도는?", "Z모듈 온도 40도", True),  # a noun with no English spelling: as written
])
def test_a_letter_with_a_noun_glued_after_it_is_the_identifier_written_in_english(
        question: str, memory: str, same: bool) -> None:
    """``X부품`` is ``part X``: an English question about a Korean memory names the same part
    (before: ``x부품`` never matched ``part x``, and the answer was "I don't know")."""
    assert identifiers_match(identifiers(question), identifiers(memory)) is same
    assert subject_of("X부품 불량률은 15%로 올랐다") == "x부품 불량률"  # stored subjects unchanged
