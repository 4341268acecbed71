"""Korean-aware search: bigrams, particles, English words, mixed tokens, visibility, ranking."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mchat_actors.chat import repo, search
from mchat_actors.chat.asked import asked_kind
from mchat_actors.chat.morph import KiwiAnalyzer
from mchat_actors.chat.schema import connect
from mchat_actors.chat.search import _dedupe, kind_boosted, search_memories

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
def conn(kiwi: KiwiAnalyzer) -> sqlite3.Connection:
    conn = connect(":memory:", kiwi)
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


def test_current_room_outranks_equal_matches_elsewhere(kiwi: KiwiAnalyzer) -> None:
    """With equal text relevance, the room asked in wins over another visible room."""
    conn = connect(":memory:", kiwi)
    for room in ("a", "b"):
        repo.save_memory(conn, f"배포 일정 금요일 {room}", scope="room", kind="remember", room=room,
                         owner=None, author="u", source_post_id=None, permalink=None, now_ms=0)
    for current in ("a", "b"):
        found = search_memories(conn, "배포 일정", rooms=["a", "b"], owner="u",
                                current_room=current, now_ms=0)
        assert found[0].room_id == current


def test_index_columns_hold_content_morphemes_and_their_bigrams(kiwi: KiwiAnalyzer) -> None:
    """Particles and endings are not terms; compounds and letters are split; English stemmed."""
    words, grams = kiwi.index_columns("X부품 불량률은 12%입니다, deployments postponed")
    assert {"x", "부품", "불량", "12", "deploy", "postpon"} <= set(words.split())
    assert not {"은", "입니다", "x부품", "불량률은"} & set(words.split())
    assert {"부품", "불량"} <= set(grams.split())


@pytest.mark.parametrize("noun", ["수요", "시도", "분야", "회의", "정확도", "평가"])
def test_nouns_that_end_like_particles_stay_whole(kiwi: KiwiAnalyzer, noun: str) -> None:
    """The hand-made particle list turned 수요, 시도, 분야 into nothing; Kiwi keeps them."""
    assert kiwi.index_columns(f"{noun}는 중요하다")[0].split()[0] == noun


def test_question_words_endings_and_politeness_are_not_concepts(kiwi: KiwiAnalyzer) -> None:
    """몇, 야, 요, 부탁드립니다 are other parts of speech; English function words dropped."""
    korean = kiwi.with_options(expand=False).analyze_query("오늘 X부품 불량률 몇 %야?")
    polite = kiwi.with_options(expand=False).analyze_query("X부품 불량률 알려주세요")
    english = kiwi.with_options(expand=False).analyze_query("What is the deploy date?")
    assert [c.stem for c in korean.concepts] == ["오늘", "x", "부품", "불량"]
    assert [(c.stem, c.weight) for c in polite.concepts][:3] == [("x", 0.4), ("부품", 1.0),
                                                                  ("불량", 1.0)]
    assert all(c.weight < 1 for c in polite.concepts[3:])  # 알리: a predicate counts half
    assert [c.stem for c in english.concepts] == ["deploy", "date"]


def test_relevance_is_the_share_of_concepts_covered(kiwi: KiwiAnalyzer) -> None:
    """relevance() is 1 when every concept is present, partial otherwise, 0 for none."""
    plain = kiwi.with_options(expand=False)
    query = plain.analyze_query("X부품 불량률")
    assert plain.relevance(query, "X부품 불량률은 12%") == 1.0
    assert 0.5 <= plain.relevance(query, "Y부품 불량률 3%") < 1.0
    assert plain.relevance(query, "점심 메뉴") == 0.0


def test_expansions_count_below_an_exact_match(kiwi: KiwiAnalyzer) -> None:
    """A glossary synonym (결함 -> 불량) covers a concept, at less than the word itself."""
    query = kiwi.analyze_query("X부품 결함률")
    exact = kiwi.relevance(query, "X부품 결함률 12%")
    synonym = kiwi.relevance(query, "X부품 불량률 12%")
    assert 0.8 < synonym < exact == 1.0
    assert kiwi.with_options(expand=False).relevance(
        kiwi.with_options(expand=False).analyze_query("X부품 결함률"), "X부품 불량률 12%") < 0.7


def test_an_index_built_by_another_analyzer_is_rebuilt_on_open(tmp_path, kiwi: KiwiAnalyzer
                                                               ) -> None:  # noqa: ANN001
    """A database indexed by an older analyzer (here the plain one, as an upgrade from words
    to Kiwi) is re-indexed when opened: Kiwi's terms are searchable, forgotten memories stay
    out, and a second open does not rebuild again."""
    path = str(tmp_path / "old.db")
    old = connect(path)  # the plain analyzer: words as written
    for i, text in enumerate(["X부품 불량률은 12%입니다", "회의는 월요일", "비밀 불량률 99%"]):
        repo.save_memory(old, text, scope="room", kind="remember", room="r1", owner=None,
                         author="u1", source_post_id=None, permalink=None, now_ms=i)
    old.execute("UPDATE memories SET forgotten_at = 1 WHERE content LIKE '비밀%'")
    words = old.execute("SELECT words FROM memories_fts WHERE rowid = 1").fetchone()[0]
    assert "불량률은" in words.split()
    old.close()
    new = connect(path, kiwi)
    assert new.execute("SELECT value FROM chat_state WHERE key = 'index_version'"
                       ).fetchone()[0] == kiwi.index_version
    words = new.execute("SELECT words FROM memories_fts WHERE rowid = 1").fetchone()[0]
    assert "불량" in words.split() and "불량률은" not in words.split()
    assert new.execute("SELECT count(*) FROM memories_fts").fetchone()[0] == 2
    assert top(new, "불량률") == ["X부품 불량률은 12%입니다"]
    new.close()
    from mchat_actors.chat.search import ensure_index

    again = connect(path, kiwi)
    assert ensure_index(again) == 0


def test_glossary_spellings_cannot_inject_fts_syntax(kiwi: KiwiAnalyzer, tmp_path) -> None:  # noqa: ANN001
    """An admin's glossary entry full of FTS5 syntax (quotes, OR, column filters, NEAR, *) is
    searched as literal words: no SQL error, no memory of another room."""
    from mchat_actors.chat.morph import Glossary

    hostile = kiwi.with_options(expand=True)
    spellings = ['불량', 'x" OR vis : *', "NEAR(부품 불량) AND {vis}", '"', "*"]
    hostile.glossary = Glossary((tuple(t for t in (kiwi.best_terms(s) for s in spellings) if t),))
    conn = connect(str(tmp_path / "g.db"), hostile)
    for room, text in (("r1", "X부품 불량률 12%"), ("r2", "비밀 NEAR vis 99%")):
        repo.save_memory(conn, text, scope="room", kind="remember", room=room, owner=None,
                         author="u1", source_post_id=None, permalink=None, now_ms=0)
    found = search_memories(conn, '불량 "vis" OR *', rooms=["r1"], owner="u1",
                            current_room="r1", now_ms=0)
    assert [m.content for m in found] == ["X부품 불량률 12%"]


def test_a_confused_vowel_in_a_words_first_syllable_is_found_as_a_typo(
        kiwi: KiwiAnalyzer) -> None:
    """The typo look-up reads the index words beginning with the question word's first
    syllable; 왜주 (외주) begins otherwise, and Kiwi's typo model leaves it as it is: the first
    syllable's confused vowels (ㅐ/ㅔ/ㅒ/ㅖ, ㅚ/ㅙ/ㅞ) are looked up too. Without that, a newer
    memory that shares the question's other words comes first."""
    meant = "외주 검사 결과 이상 없음"
    conn = connect(":memory:", kiwi)
    for i, text in enumerate([meant, "출하 검사 결과 양호", "설비 점검 결과 보고",
                              "수입 검사 결과 보고", "금형 점검 결과 양호"]):
        repo.save_memory(conn, text, scope="room", kind="remember", room="r1", owner=None,
                         author="u1", source_post_id=None, permalink=None, now_ms=i)
    assert top(conn, "왜주 검사 결과 어때?")[0] == meant


def test_a_memory_stating_the_kind_of_value_asked_ranks_first(
        kiwi: KiwiAnalyzer, monkeypatch: pytest.MonkeyPatch) -> None:
    """`몇 건`, `언제`, `몇 %` say what the answer is, but they are no content morphemes: two
    memories sharing the question's words are ranked by whether they state a value of that
    kind (``chat.asked``). Without it the shorter memory about the paint booth's lights ranks
    above the one with the 15 cases of peeling paint."""
    conn = connect(":memory:", kiwi)
    for i, text in enumerate(["도장실 조명 교체", "용접 지그 교체 완료",
                              "T10 커버 도장 박리 불량 15건 발생, 도료 로트 변경 후 재발"]):
        repo.save_memory(conn, text, scope="room", kind="remember", room="r1", owner=None,
                         author="u1", source_post_id=None, permalink=None, now_ms=i)
    assert top(conn, "도장 벗겨진 거 몇 건이야?")[0].startswith("T10 커버")
    monkeypatch.setattr(search, "ANSWER_KIND_BOOST", 0.0)
    assert top(conn, "도장 벗겨진 거 몇 건이야?")[0] == "도장실 조명 교체"


def test_a_compound_kiwi_splits_wrongly_is_indexed_as_written(kiwi: KiwiAnalyzer) -> None:
    """Kiwi reads the unknown 염수분무 (salt spray) as 염수분 + 무/prefix: 분무 was in neither
    column. The word as written is indexed too, so a question saying 분무 finds the memory (a
    noun at a compound's edge); a compound Kiwi splits into words (도장 + 실) stays split."""
    words = kiwi.index_columns("염수분무 시험 96시간 후 볼트 부식")[0].split()
    assert "염수분무" in words
    assert "도장실" not in kiwi.index_columns("도장실 배기팬 소음")[0].split()
    conn = connect(":memory:", kiwi)
    for i, text in enumerate(["염수분무 시험 96시간 후 볼트 부식 발생", "분기 시험 계획 공유",
                              "케이블 하네스 풀테스트 기준 50N"]):
        repo.save_memory(conn, text, scope="room", kind="remember", room="r1", owner=None,
                         author="u1", source_post_id=None, permalink=None, now_ms=i)
    assert top(conn, "분무 시험 결과 어때?")[0].startswith("염수분무")


@given(st.lists(st.tuples(st.floats(0, 2), st.integers(0, 5), st.booleans()), max_size=30),
       st.integers(1, 8))
@example([(1.0, 0, False), (0.95, 1, True)], 1)  # the second is lifted above the first
def test_the_kind_asked_is_checked_only_where_it_can_change_the_first_results(
        items: list[tuple[float, int, bool]], limit: int) -> None:
    """``kind_boosted`` checks a memory only when the boost could lift it into the first
    ``limit`` texts (a check costs ~0.1 ms); the first ``limit`` are those of boosting all."""
    kind = asked_kind("불량 몇 건이야?")
    scored = [(score, {"id": i, "norm": f"t{norm}{states}",
                       "content": f"불량 {'15건' if states else '조치'} {norm}"})
              for i, (score, norm, states) in enumerate(items)]
    every = [(s + search.ANSWER_KIND_BOOST if "건" in r["content"] else s, r) for s, r in scored]
    assert ([r["id"] for _, r in _dedupe(kind_boosted(scored, kind, limit))[:limit]]
            == [r["id"] for _, r in _dedupe(every)[:limit]])


@pytest.mark.parametrize(("negated", "term", "plain"), [
    ("수입검사 불합격 3건", "불합격", "수입검사 합격 12건"),
    ("A사 부품 미입고 2건", "미입고", "A사 부품 입고 40건"),
    ("서버 비정상 종료 5건", "비정상", "서버 정상 종료 30건"),
    ("라벨 부적합 판정 4건", "부적합", "라벨 적합 판정 90건"),
])
def test_a_negating_prefix_stays_on_its_noun(kiwi: KiwiAnalyzer, negated: str, term: str,
                                             plain: str) -> None:
    """Kiwi reads 불합격 as the prefix 불 + 합격, and only 합격 was a term: a memory of 3
    rejections and one of 12 passes were the same to the search, and a question about either
    could be answered by the other. The negated noun is its own term now, and the plain noun
    is no compound part of it."""
    words = kiwi.index_columns(negated)[0].split()
    assert term in words and term[1:] not in words
    conn = connect(":memory:", kiwi)
    for i, text in enumerate([plain, negated, "점심은 구내식당"]):
        repo.save_memory(conn, text, scope="room", kind="remember", room="r1", owner=None,
                         author="u1", source_post_id=None, permalink=None, now_ms=i)
    for memory in (negated, plain):
        question = memory.rsplit(" ", 1)[0] + " 몇 건이야?"  # 수입검사 불합격 몇 건이야?
        assert top(conn, question)[0] == memory
