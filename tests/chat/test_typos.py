"""Typos matched by jamo distance (``chat.typos``): a vowel people confuse in the first
syllable (ㅐ/ㅔ/ㅒ/ㅖ, ㅚ/ㅙ/ㅞ) is looked up as well as the words beginning as written."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mchat_actors.chat.typos import typo_matches, vowel_variants

WORDS = st.text(st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3), min_size=1,
                max_size=4)


@pytest.mark.parametrize(("term", "expected"), [
    ("베선", ["배선", "뱨선", "볘선"]), ("계측기", ["개측기", "게측기", "걔측기"]),
    ("왜주", ["외주", "웨주"]), ("웬", ["왼", "왠"]), ("가공", []), ("abc", []), ("", []),
    ("x베선", []),
])
def test_vowel_variants_swap_the_first_vowel_for_the_confused_ones(
        term: str, expected: list[str]) -> None:
    assert vowel_variants(term) == expected


@given(WORDS)
def test_a_variant_differs_by_one_vowel_of_the_first_syllable_and_leads_back(word: str) -> None:
    letters = unicodedata.normalize("NFD", word)
    for v in vowel_variants(word):
        other = unicodedata.normalize("NFD", v)
        assert len(other) == len(letters) and v[1:] == word[1:]
        assert [i for i, (a, b) in enumerate(zip(letters, other, strict=True)) if a != b] == [1]
        assert word in vowel_variants(v)
        assert typo_matches(word, [v]) == ([v] if len(word) >= 2 else [])


def test_a_vowel_confused_in_the_first_syllable_is_one_typo_away() -> None:
    index = ["외주", "외관", "입고", "배선", "배송", "계측기", "계획"]
    for typo, meant in (("왜주", "외주"), ("베선", "배선"), ("게측기", "계측기")):
        assert typo_matches(typo, [t for t in index if t[0] == typo[0]]) == []  # as written
        assert typo_matches(typo, vowel_variants(typo)) and meant in vowel_variants(typo)
