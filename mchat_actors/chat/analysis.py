"""Text analysis for search: the query model shared by every analyzer, and the plain analyzer.

An analyzer (``Analyzer``) derives what is indexed for a memory (``index_columns``), turns a
question into concepts (``analyze_query``) and says how much of a question a text covers
(``relevance``). The service's analyzer is ``chat.morph.KiwiAnalyzer`` (Korean morphology,
stemming, synonyms), loaded once at start. ``PlainAnalyzer`` needs no model: words as written
(Latin ones through the Snowball stemmer) and Hangul bigrams; it serves callers that have no
service analyzer (the remote backend's threshold checks) and is never mixed into an index
built by another analyzer (``chat.search.ensure_index``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Protocol

import attrs
import Stemmer  # type: ignore[import-not-found]

_WORD = re.compile(r"[^\W_]+")
_HANGUL = re.compile(r"^[\uac00-\ud7a3]+$")
_HANGUL_RUN = re.compile(r"[\uac00-\ud7a3]+")


def normalize(text: str) -> str:
    """NFKC, lower case, single spaces: the form texts are compared and deduplicated in."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def is_hangul(text: str) -> bool:
    return bool(_HANGUL.match(text))


def hangul_bigrams(run: str) -> list[str]:
    return [run[i : i + 2] for i in range(len(run) - 1)]


@attrs.frozen
class Expansion:
    """Another way a text may say a concept: all of ``terms``, counted at ``weight`` (< 1)."""

    terms: tuple[str, ...]
    weight: float
    source: str  # glossary, kiwi (CoNg similarity), typo, typo-corrected


@attrs.frozen
class Concept:
    """One meaningful term of a query."""

    stem: str  # the term as indexed
    grams: tuple[str, ...]  # Hangul bigrams searched for it
    weight: float = 1.0
    tag: str = ""
    expansions: tuple[Expansion, ...] = ()


def _q(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


@attrs.frozen
class Query:
    concepts: tuple[Concept, ...]

    def _alternatives(self, c: Concept) -> list[str]:
        alts = [_q(c.stem)]
        for e in c.expansions:
            alts.append(" AND ".join(_q(t) for t in e.terms) if len(e.terms) == 1
                        else "(" + " AND ".join(_q(t) for t in e.terms) + ")")
        return alts

    def word_match(self) -> str | None:
        """The FTS5 expression over ``words``: any concept or expansion."""
        terms = sorted({a for c in self.concepts for a in self._alternatives(c)})
        return "{words} : (" + " OR ".join(terms) + ")" if terms else None

    def gram_match(self) -> str | None:
        """The FTS5 expression over ``grams``, or None when the query has no Hangul bigram."""
        grams = sorted({g for c in self.concepts for g in c.grams if len(c.grams) > 1})
        return "{grams} : (" + " OR ".join(_q(g) for g in grams) + ")" if grams else None

    def only(self, stems: set[str]) -> Query:
        """The query restricted to the concepts whose stem is in ``stems``."""
        return Query(tuple(c for c in self.concepts if c.stem in stems))

    def strict_match(self) -> str | None:
        """The FTS5 expression requiring every full-weight concept (or one of its expansions)."""
        parts = []
        for c in self.concepts:
            if c.weight < 1.0:
                continue
            grams = (" OR {grams} : (" + " AND ".join(_q(g) for g in c.grams) + ")"
                     if len(c.grams) > 1 else "")
            parts.append("({words} : (" + " OR ".join(self._alternatives(c)) + ")" + grams + ")")
        return " AND ".join(parts) if parts else None


class Analyzer(Protocol):
    """What search and the answerer need from a text analyzer."""

    name: str

    @property
    def index_version(self) -> str: ...

    def index_columns(self, text: str) -> tuple[str, str]: ...

    def analyze_query(self, text: str) -> Query: ...

    def relevance(self, query: Query, content: str, weights: Mapping[str, float] | None = None,
                  *, indexed: tuple[frozenset[str], frozenset[str]] | None = None) -> float: ...


COMPOUND_WEIGHT = 0.7  # a noun found as a part of a compound noun (포장 in 포장재)
COMPOUND_TAGS = frozenset(("NNG", "NNP"))
# Prefixes that negate the noun they are written on (불합격, 미입고, 비정상, 무결점, 부적합): Kiwi
# tags them XPN; the word with its prefix is one term (``chat.morph``), and the noun after the
# prefix is no part of it (a question about 합격 never matches 불합격 as a compound of 합격)
NEGATING_PREFIXES = frozenset("불미비무부몰")


def coverage(query: Query, terms: frozenset[str], grams: frozenset[str],
             weights: Mapping[str, float] | None = None, *, compounds: bool = False) -> float:
    """See ``KiwiAnalyzer.relevance``."""
    if not query.concepts:
        return 0.0
    got = total = 0.0
    parts = compound_parts(terms) if compounds else None
    for c in query.concepts:
        weight = c.weight * (weights.get(c.stem, 1.0) if weights else 1.0)
        total += weight
        got += weight * concept_match(c, terms, grams, compounds=compounds, parts=parts)[0]
    return got / total if total else 0.0


def concept_match(c: Concept, terms: frozenset[str], grams: frozenset[str], *,
                  compounds: bool = False,
                  parts: Mapping[str, str] | None = None) -> tuple[float, str]:
    """How well (0..1) and how (``exact``, ``glossary:...``) ``c`` is found in a text.

    ``compounds``: ``terms`` are morphemes (Kiwi), so a longer Hangul term that begins or
    ends with a noun of two syllables or more is a compound of it (포장재, 발표회, 택트타임:
    Korean writes compound nouns without a space and Kiwi keeps those it knows whole); an
    expansion of a noun stands for it and is found in a compound the same way (미팅 -> 회의 in
    회의실), at its own weight times ``COMPOUND_WEIGHT``. ``parts``: ``compound_parts(terms)``
    when already computed."""
    if c.stem in terms:
        return 1.0, "exact"
    best = (0.0, "")
    noun = compounds and c.tag in COMPOUND_TAGS
    if noun and parts is None:
        parts = compound_parts(terms)
    for e in c.expansions:
        if e.weight > best[0] and all(t in terms for t in e.terms):
            best = (e.weight, f"{e.source}:{' '.join(e.terms)}")
        elif noun and parts and e.weight * COMPOUND_WEIGHT > best[0]:
            found = [t if t in terms else parts.get(t) for t in e.terms]
            if all(found):
                best = (e.weight * COMPOUND_WEIGHT,
                        f"{e.source}:{' '.join(e.terms)} compound:{' '.join(map(str, found))}")
    if noun and parts and best[0] < COMPOUND_WEIGHT and c.stem in parts:
        best = (COMPOUND_WEIGHT, f"compound:{parts[c.stem]}")
    if c.grams and len(c.grams) > 1:
        share = sum(g in grams for g in c.grams) / len(c.grams)
        if share >= 0.5 and 0.7 * share > best[0]:
            best = (0.7 * share, "part")
    return best


def opposite(query: Query, terms: frozenset[str]) -> bool:
    """Whether ``terms`` say the opposite of a noun ``query`` names: 불합격 where it asks about
    합격 (and does not say 합격), or 합격 where it asks about 불합격 (``NEGATING_PREFIXES``)."""
    for c in query.concepts:
        s = c.stem
        if s in terms or not is_hangul(s):
            continue
        if any(p + s in terms for p in NEGATING_PREFIXES) or (
                len(s) > 2 and s[0] in NEGATING_PREFIXES and s[1:] in terms):
            return True
    return False


def compound_parts(terms: frozenset[str]) -> dict[str, str]:
    """Each beginning and end of two syllables or more of a longer Hangul term of ``terms``,
    with that term (a compound noun of it: 포장 and 장재 -> 포장재); not the noun a negating
    prefix is written on (합격 of 불합격: ``NEGATING_PREFIXES``)."""
    parts: dict[str, str] = {}
    for t in sorted(terms, reverse=True):  # the first in order wins
        if len(t) > 2 and is_hangul(t):
            for k in range(2, len(t)):
                parts[t[:k]] = t
                if not (k == len(t) - 1 and t[0] in NEGATING_PREFIXES):  # 합격 of 불합격
                    parts[t[-k:]] = t
    return parts


_ENGLISH_FUNCTION_WORDS = frozenset(
    "a an the is are was were be been of to for in on at by with do does did what when where "
    "who whom which how why it this that and or".split()
)


@attrs.define
class PlainAnalyzer:
    """Words as written, Latin words stemmed (Snowball), Hangul bigrams; no model."""

    stemmer: Stemmer.Stemmer = attrs.field(factory=lambda: Stemmer.Stemmer("english"))
    name = "plain"
    index_version = "plain-1"

    def _terms(self, text: str) -> list[str]:
        out = []
        for word in _WORD.findall(normalize(text)):
            if word in _ENGLISH_FUNCTION_WORDS:
                continue
            out.append(self.stemmer.stemWord(word) if word.isascii() else word)
        return out

    def index_columns(self, text: str) -> tuple[str, str]:
        terms = self._terms(text)
        grams = [g for t in terms for r in _HANGUL_RUN.findall(t) for g in hangul_bigrams(r)]
        return " ".join(dict.fromkeys(terms)), " ".join(grams)

    def analyze_query(self, text: str) -> Query:
        concepts: dict[str, Concept] = {}
        for t in self._terms(text):
            grams = tuple(g for r in _HANGUL_RUN.findall(t) for g in hangul_bigrams(r))
            weight = 0.4 if len(t) == 1 and t.isascii() else 1.0
            concepts.setdefault(t, Concept(t, grams, weight))
        return Query(tuple(concepts.values()))

    def relevance(self, query: Query, content: str, weights: Mapping[str, float] | None = None,
                  *, indexed: tuple[frozenset[str], frozenset[str]] | None = None) -> float:
        if indexed is None:
            words, bigrams = self.index_columns(content)
            indexed = frozenset(words.split()), frozenset(bigrams.split())
        terms, grams = indexed
        # Korean attaches particles and endings to the word: a word a text's word starts with
        # is in the text (회의실 in 회의실은); no list of particles is needed for that.
        starts = {t[:k] for t in terms if _HANGUL_RUN.match(t) for k in range(2, len(t))}
        return coverage(query, terms | starts, grams, weights)


def analyze_query(text: str, analyzer: Analyzer | None = None) -> Query:
    """``text``'s concepts by ``analyzer`` (default: the plain analyzer)."""
    return (analyzer or PlainAnalyzer()).analyze_query(text)


def relevance(query: Query, content: str, weights: Mapping[str, float] | None = None,
              analyzer: Analyzer | None = None) -> float:
    """The weighted share (0..1) of ``query``'s concepts that ``content`` says."""
    return (analyzer or PlainAnalyzer()).relevance(query, content, weights)


__all__ = [
    "Analyzer", "Concept", "Expansion", "PlainAnalyzer", "Query", "analyze_query",
    "compound_parts", "concept_match", "coverage", "hangul_bigrams", "is_hangul", "normalize",
    "relevance",
]
