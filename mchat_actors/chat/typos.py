"""Typos matched by jamo edit distance: a question word the index does not hold is looked up
among the index words one jamo (two for words of three syllables or more) away from it, the
first syllable's vowel swapped for those Korean confuses as well (배선/베선, 외주/왜주).
Pure functions, used by the SQLite and PostgreSQL searches."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from .analysis import is_hangul

TYPO_WEIGHT = 0.8  # a typo-corrected word counts below an exact match


def jamo(text: str) -> str:
    """Hangul syllables split into their letters (불량 -> ㅂㅜㄹㄹㅑㅇ)."""
    return unicodedata.normalize("NFD", text)


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, or ``limit + 1`` once it exceeds ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


# Vowels Korean spells one for another (their sounds merged in speech: ㅐ/ㅔ, and ㅖ/ㅒ said
# [ㅔ] after a consonant; ㅚ/ㅙ/ㅞ): the commonest misspellings (배선/베선, 계측/게측, 외주/왜주)
CONFUSED_VOWELS = ("ㅐㅔㅒㅖ", "ㅚㅙㅞ")
_VOWELS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"  # Unicode's order of the medial vowels


def vowel_variants(term: str) -> list[str]:
    """``term`` with the vowel of its first syllable swapped for each one it is confused with
    (베선 -> 배선, 볘선, 벼선... only the confused ones: 배선, 뱨선, 볘선; 왜주 -> 외주, 웨주).

    The typo look-up reads the index words that begin with a question word's first syllable
    (a typo anywhere else is found among them); a typo in the first syllable itself is found
    by looking these up as well."""
    code = ord(term[0]) - 0xAC00 if term else -1
    if not 0 <= code < 11172:
        return []
    vowel = code // 28 % 21
    group = next((g for g in CONFUSED_VOWELS if _VOWELS[vowel] in g), "")
    return [chr(0xAC00 + code + (_VOWELS.index(v) - vowel) * 28) + term[1:]
            for v in group if v != _VOWELS[vowel]]


def typo_matches(term: str, candidates: Iterable[str]) -> list[str]:
    """The ``candidates`` one jamo (two for words of three syllables or more) from ``term``."""
    if not is_hangul(term) or len(term) < 2:
        return []
    limit = 1 if len(term) == 2 else 2
    target = jamo(term)
    return [c for c in candidates if c != term and is_hangul(c)
            and abs(len(c) - len(term)) <= 1 and edit_distance(jamo(c), target, limit) <= limit]


__all__ = ["TYPO_WEIGHT", "edit_distance", "jamo", "typo_matches", "vowel_variants"]
