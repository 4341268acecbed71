"""How a query's concept is found in a text's terms (``analysis.concept_match``): exactly,
through an expansion, in a compound noun, and an expansion in a compound noun (i42)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mchat_actors.chat.analysis import (
    COMPOUND_WEIGHT,
    Concept,
    Expansion,
    Query,
    compound_parts,
    concept_match,
    coverage,
)


def noun(stem: str, *expansions: tuple[tuple[str, ...], float], tag: str = "NNG") -> Concept:
    return Concept(stem, (), 1.0, tag, tuple(Expansion(t, w, "glossary") for t, w in expansions))


def match(c: Concept, *terms: str) -> tuple[float, str]:
    return concept_match(c, frozenset(terms), frozenset(), compounds=True)


def test_an_expansion_is_found_in_a_compound_at_both_discounts() -> None:
    """세제 -> 세정 (an expansion) in 세정액: the expansion's weight times the compound's."""
    score, how = match(noun("세제", (("세정",), 0.85)), "세척기", "세정액", "농도")
    assert score == pytest.approx(0.85 * COMPOUND_WEIGHT)
    assert how == "glossary:세정 compound:세정액"


def test_an_expansion_found_whole_beats_the_same_in_a_compound() -> None:
    assert match(noun("세제", (("세정",), 0.85)), "세정", "세정액")[0] == 0.85


def test_the_word_in_a_compound_beats_its_expansion_in_one() -> None:
    """세척 in 세척기 (0.7) beats 세척 -> 세정 in 세정액 (0.85 x 0.7)."""
    score, how = match(noun("세척", (("세정",), 0.85)), "세척기", "세정액")
    assert (score, how) == (COMPOUND_WEIGHT, "compound:세척기")


def test_every_term_of_a_spelling_must_be_found_whole_or_in_a_compound() -> None:
    c = noun("fai", (("초도품", "검사"), 0.85))
    assert match(c, "초도품", "검사원")[0] == pytest.approx(0.85 * COMPOUND_WEIGHT)
    assert match(c, "초도품", "측정원")[0] == 0.0


@pytest.mark.parametrize("terms", [("실험실",), ("변경안",)])
def test_predicates_and_one_syllable_words_are_never_parts_of_a_compound(
        terms: tuple[str, ...]) -> None:
    """A verb's expansions (바꾸 -> 변경) name no thing; one syllable (실) is no part."""
    assert match(noun("바꾸", (("변경",), 0.36), tag="VV"), *terms)[0] == 0.0
    assert match(noun("부스", (("실",), 0.85)), *terms)[0] == 0.0


def test_without_compounds_only_exact_terms_count() -> None:
    c = noun("세제", (("세정",), 0.85))
    assert concept_match(c, frozenset({"세정액"}), frozenset())[0] == 0.0
    assert coverage(Query((c,)), frozenset({"세정액"}), frozenset()) == 0.0
    assert coverage(Query((c,)), frozenset({"세정액"}), frozenset(), compounds=True) \
        == pytest.approx(0.85 * COMPOUND_WEIGHT)


def test_compound_parts_are_the_beginnings_and_ends_of_longer_hangul_terms() -> None:
    assert compound_parts(frozenset({"세정액", "팬", "lux", "보관"})) == {
        "세정": "세정액", "정액": "세정액"}
    parts = compound_parts(frozenset({"자재창고", "창고"}))
    assert parts["자재"] == parts["창고"] == parts["재창고"] == "자재창고"
    assert "재창" not in parts  # the middle of a word is no part of it


hangul = st.text(st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3), min_size=1,
                 max_size=3)


@given(word=hangul.filter(lambda s: len(s) >= 2), other=hangul, synonym=hangul.filter(
    lambda s: len(s) >= 2), affix=hangul, weight=st.floats(0.05, 0.95), front=st.booleans())
def test_an_expansion_in_a_compound_never_counts_more_than_either_discount(
        word: str, other: str, synonym: str, affix: str, weight: float, front: bool) -> None:
    """Whatever the words: a concept found only through an expansion inside a compound
    counts exactly the expansion's weight times the compound's, below both."""
    compound = affix + synonym if front else synonym + affix
    terms = {compound, other}
    if word in terms or synonym in terms or word in compound_parts(frozenset(terms)) or \
            word in compound_parts(frozenset({other})):
        return  # the word itself is there: another case
    score = match(noun(word, ((synonym,), weight)), *terms)[0]
    assert score == pytest.approx(weight * COMPOUND_WEIGHT)
    assert score < min(weight, COMPOUND_WEIGHT)
