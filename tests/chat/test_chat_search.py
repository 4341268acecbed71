"""Korean-aware search: bigrams, particles, English words, mixed tokens, visibility, ranking."""

from __future__ import annotations

import sqlite3

import pytest

from mchat_actors.chat import repo
from mchat_actors.chat.analysis import analyze_query, index_columns, relevance, strip_particle
from mchat_actors.chat.schema import connect
from mchat_actors.chat.search import search_memories

CORPUS = [
    "X부품 불량률은 12%입니다",
    "Y부품 불량률 3%",
    "다음 배포는 금요일 오후 3시",
    "주간 회의는 월요일 10시 2층 회의실",
    "Supplier Acme delivered the housings late; deployment postponed",
    "정확도 테스트 결과 98% 통과",
    "점심은 구내식당",
]


@pytest.fixture
def conn() -> sqlite3.Connection:
    conn = connect(":memory:")
    for i, text in enumerate(CORPUS):
        repo.save_memory(conn, text, scope="room", kind="remember", room="r1", owner=None,
                         author="u1", source_post_id=None, permalink=None, now_ms=i)
    return conn


def top(conn: sqlite3.Connection, query: str, **kwargs: object) -> list[str]:
    args = {"rooms": ["r1"], "owner": "u1", "current_room": "r1", "now_ms": 10, "limit": 3}
    args.update(kwargs)
    return [m.content for m in search_memories(conn, query, **args)]  # type: ignore[arg-type]


def test_finds_a_word_inside_a_word_with_a_particle(conn: sqlite3.Connection) -> None:
    """불량률 finds 불량률은 (the FTS5 trigram tokenizer cannot be trusted here)."""
    assert "X부품 불량률은 12%입니다" in top(conn, "불량률")


@pytest.mark.parametrize(("query", "expected"), [("배포", CORPUS[2]), ("회의", CORPUS[3]),
                                                 ("배포 언제야?", CORPUS[2]),
                                                 ("회의는 몇 시야?", CORPUS[3])])
def test_finds_two_syllable_words(conn: sqlite3.Connection, query: str, expected: str) -> None:
    """Two-syllable words (배포, 회의) are found, also with particles and question words."""
    assert top(conn, query)[0] == expected


@pytest.mark.parametrize(("query", "expected"), [("Acme supplier", CORPUS[4]),
                                                 ("when was the deployment?", CORPUS[4]),
                                                 ("deployments", CORPUS[4]),
                                                 ("housing", CORPUS[4])])
def test_finds_english_words_and_their_inflections(conn: sqlite3.Connection, query: str,
                                                   expected: str) -> None:
    """English words match case-insensitively and across simple inflections."""
    assert top(conn, query)[0] == expected


def test_mixed_latin_hangul_token_prefers_the_exact_part(conn: sqlite3.Connection) -> None:
    """X부품 ranks the X part above the Y part, and both parts are indexed."""
    assert top(conn, "오늘 X부품 불량률 몇 %야?")[:2] == [CORPUS[0], CORPUS[1]]
    assert top(conn, "Y부품 불량률")[0] == CORPUS[1]
    assert set(top(conn, "부품")[:2]) == {CORPUS[0], CORPUS[1]}


def test_unrelated_query_finds_nothing(conn: sqlite3.Connection) -> None:
    """A query with no shared word returns no memory."""
    assert top(conn, "주차장 위치") == []


def test_only_visible_rooms_and_own_personal_memories_are_searched(
    conn: sqlite3.Connection,
) -> None:
    """Room memories outside ``rooms`` and other people's personal memories are never returned."""
    repo.save_memory(conn, "비밀 배포 계획", scope="room", kind="remember", room="r2", owner=None,
                     author="u2", source_post_id=None, permalink=None, now_ms=0)
    repo.save_memory(conn, "개인 배포 메모", scope="personal", kind="remember", room="r2",
                     owner="u2", author="u2", source_post_id=None, permalink=None, now_ms=0)
    found = top(conn, "배포", limit=10)
    assert "비밀 배포 계획" not in found and "개인 배포 메모" not in found
    assert "개인 배포 메모" in top(conn, "배포", owner="u2", limit=10)
    assert "비밀 배포 계획" in top(conn, "배포", rooms=["r1", "r2"], limit=10)


def test_current_room_outranks_equal_matches_elsewhere() -> None:
    """With equal text relevance, the room asked in wins over another visible room."""
    conn = connect(":memory:")
    for room in ("a", "b"):
        repo.save_memory(conn, f"배포 일정 금요일 {room}", scope="room", kind="remember", room=room,
                         owner=None, author="u", source_post_id=None, permalink=None, now_ms=0)
    for current in ("a", "b"):
        found = search_memories(conn, "배포 일정", rooms=["a", "b"], owner="u",
                                current_room=current, now_ms=0)
        assert found[0].room_id == current


def test_index_columns_hold_stems_runs_and_bigrams() -> None:
    """The words column has stems and script runs; the grams column has Hangul bigrams."""
    words, grams = index_columns("X부품 불량률은 12%입니다")
    assert {"x부품", "x", "부품", "불량률", "불량률은", "12"} <= set(words.split())
    assert {"불량", "량률", "부품"} <= set(grams.split())


@pytest.mark.parametrize(("word", "stem"), [
    ("불량률은", "불량률"), ("배포는", "배포"), ("회의", "회의"), ("회의가", "회의"),
    ("공급사에서", "공급사"), ("가", "가"),
])
def test_strip_particle_keeps_two_syllable_stems(word: str, stem: str) -> None:
    """Particles are stripped only when at least two syllables remain."""
    assert strip_particle(word)[0] == stem


def test_question_words_are_not_concepts() -> None:
    """몇, 야, 오늘 and English stopwords are dropped from a query."""
    korean = analyze_query("오늘 X부품 불량률 몇 %야?")
    english = analyze_query("What is the deploy date?")
    assert [c.stem for c in korean.concepts] == ["x부품", "불량률"]
    assert [c.stem for c in english.concepts] == ["deploy", "date"]


def test_relevance_is_the_share_of_concepts_covered() -> None:
    """relevance() is 1 when every concept is present and partial for a mixed token's part."""
    query = analyze_query("X부품 불량률")
    assert relevance(query, "X부품 불량률은 12%") == 1.0
    assert 0.5 <= relevance(query, "Y부품 불량률 3%") < 1.0
    assert relevance(query, "점심 메뉴") == 0.0
