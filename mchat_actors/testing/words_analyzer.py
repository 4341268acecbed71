"""The analyzer search used before Kiwi (issue #9), kept ONLY as the baseline of the retrieval
eval (tests/chat/test_meaning_eval.py) and benchmark (bench/bench_retrieval.py): "words only".

A hand-made particle list, stopword list and suffix stemmer, exactly as they were (the stopword
list even held words of the old eval's questions). Never used by the service: ``WordsAnalyzer``
adapts it to ``chat.analysis.Analyzer`` so the same search code can run on its index.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

import attrs

_WORD = re.compile(r"[^\W_]+")
_RUN = re.compile(r"[\uac00-\ud7a3]+|[a-z]+|[0-9]+|[^\W_\uac00-\ud7a3a-z0-9]+")
_HANGUL = re.compile(r"^[\uac00-\ud7a3]+$")

# Particles whose removal cannot be mistaken for the end of a noun.
_SAFE_PARTICLES = (
    "에서는 에서도 에게서 으로는 으로도 으로서 으로써 이라고 이라는 이라면 이에요 입니다 이었다 "
    "였습니다 이었어 인가요 인데요 까지는 부터는 한테서 에게는 이에요 에는 에도 에서 에게 한테 "
    "으로 부터 까지 처럼 보다 이랑 이고 이며 이다 이야 예요 인가 인데 라고 라는 은 는 을 를 에"
).split()
# Particles that also end ordinary nouns (회의, 정확도, 평가): stripped, but the unstripped
# word's bigrams are searched too.
_AMBIGUOUS_PARTICLES = "이나 하고 의 도 가 이 요 야 과 와 로 만 랑".split()
_PARTICLES = sorted(
    [(p, False) for p in _SAFE_PARTICLES] + [(p, True) for p in _AMBIGUOUS_PARTICLES],
    key=lambda item: -len(item[0]),
)
_STOPWORDS = frozenset(
    (
        "몇 뭐 뭐야 뭐지 뭔가 무엇 무슨 어떤 어느 언제 어디 어떻게 얼마 얼마나 누구 누가 왜 "
        "알려줘 알려 알려주세요 알려줄래 주세요 줘 있어 있나 있나요 있어요 있지 어때 어때요 어땠어 "
        "어떤가요 됐어요 됐나요 "
        "인지 건지 오늘 지금 "
        "혹시 좀 요즘 했어 했나 했지 됐어 됐나 되나 돼 거야 거예요 해 맞아 나요 였지 였어 였나 "
        "이었지 이었어 더라 뭐였지 시야 시지 시에 시였지 하나 얼마였지 몇시 몇시야 "
        "야 요 시 분 것 거 수 더 꼭 잘 다 또 및 등 "
        "a an the is are was were be been of to for in on at by with do does did our we i you "
        "it this that these me my tell about much many please any there has have had from and "
        "or what when where who whom which how why can could should would will shall as"
    ).split()
)


def normalize(text: str) -> str:
    """NFKC, lower case, single spaces: the form texts are compared and deduplicated in."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def strip_particle(word: str) -> tuple[str, bool]:
    """``(stem, ambiguous)``: ``word`` without a trailing Korean particle, stem >= 2 syllables."""
    for particle, ambiguous in _PARTICLES:
        if word.endswith(particle) and len(word) - len(particle) >= 2:
            stem = word[: -len(particle)]
            if _HANGUL.match(stem[-1]):
                return stem, ambiguous
    return word, False


def _loose_stem(word: str) -> str:
    """``word`` without any trailing particle, even down to one syllable (몇이야 -> 몇)."""
    for particle, _ in _PARTICLES:
        if word.endswith(particle) and len(word) > len(particle):
            return word[: -len(particle)]
    return word


def english_stem(word: str) -> str:
    """A light suffix stripper, the same on both sides (``deployments`` -> ``deploy``)."""
    for suffix, repl, min_len in (
        ("ments", "", 7), ("ment", "", 6), ("ings", "", 6), ("ing", "", 5), ("ies", "y", 4),
        ("sses", "ss", 5), ("ed", "", 4), ("es", "", 5), ("s", "", 4),
    ):
        if word.endswith(suffix) and len(word) >= min_len and not word.endswith(("ss", "us", "is")):
            return word[: -len(suffix)] + repl
    return word


def _bigrams(run: str) -> list[str]:
    return [run[i : i + 2] for i in range(len(run) - 1)]


def _word_forms(word: str) -> set[str]:
    """The tokens indexed for one word: itself, its stem, its script runs and their stems."""
    stem, _ = strip_particle(word)
    forms = {word, stem}
    runs = _RUN.findall(stem)
    if len(runs) > 1:
        forms.update(runs)
    forms.update(english_stem(r) for r in runs if r.isascii() and r.isalpha())
    return forms


def index_columns(text: str) -> tuple[str, str]:
    """The ``(words, grams)`` columns indexed for a memory's ``text``."""
    words: set[str] = set()
    grams: list[str] = []
    for word in _WORD.findall(normalize(text)):
        words |= _word_forms(word)
        for run in _RUN.findall(word):
            if _HANGUL.match(run):
                grams.extend(_bigrams(run))
    return " ".join(sorted(words)), " ".join(grams)


@attrs.frozen
class Concept:
    """One meaningful word of a query."""

    stem: str  # particle-stripped, lower case
    runs: tuple[str, ...]  # script runs of the stem
    grams: tuple[str, ...]  # Hangul bigrams searched for it
    weight: float = 1.0
    expansions: tuple[object, ...] = ()  # the Analyzer interface; this analyzer has none


@attrs.frozen
class Query:
    concepts: tuple[Concept, ...]

    def word_match(self) -> str | None:
        """The FTS5 expression over ``words``, or None when the query has no words.

        Stems match exactly (stems are indexed); English words of four letters or more also
        as prefixes. Two-syllable Hangul words are left to ``gram_match``, whose bigram finds
        every memory the word would (and compounds such as 주간회의 too). Single Latin letters
        of mixed words (the ``x`` of ``x부품``) are left to the whole word and to
        ``relevance``: they would match a large part of the index.
        """
        terms: set[str] = set()
        for c in self.concepts:
            forms = {c.stem, *(r for r in c.runs if len(r) > 1 or not r.isascii())}
            for form in forms:
                if len(form) == 2 and _HANGUL.match(form):
                    continue  # the same bigram in ``grams`` finds a superset

                if form.isascii() and form.isalpha() and len(form) >= 4:
                    terms.add(f'"{english_stem(form)}"*')
                else:
                    terms.add(f'"{form}"')
        return "{words} : (" + " OR ".join(sorted(terms)) + ")" if terms else None

    def gram_match(self) -> str | None:
        """The FTS5 expression over ``grams``, or None when the query has no Hangul bigram."""
        grams = sorted({g for c in self.concepts for g in c.grams})
        return "{grams} : (" + " OR ".join(f'"{g}"' for g in grams) + ")" if grams else None


    def only(self, stems: set[str]) -> Query:
        """The query restricted to the concepts whose stem is in ``stems``."""
        return Query(tuple(c for c in self.concepts if c.stem in stems))

    def strict_match(self) -> str | None:
        """The FTS5 expression requiring every concept (as a word, or all of its bigrams)."""
        parts = []
        for c in self.concepts:
            if c.weight < 1.0:
                continue
            words = f'{{words}} : "{c.stem}"'
            stem_grams = [g for g in c.grams if g in c.stem]
            grams = " AND ".join(f'"{g}"' for g in stem_grams)
            parts.append(f"({words} OR {{grams}} : ({grams}))" if grams else f"({words})")
        return " AND ".join(parts) if parts else None


def analyze_query(text: str) -> Query:
    """The concepts of ``text``: its words without question words, stopwords and particles."""
    concepts: dict[str, Concept] = {}
    for word in _WORD.findall(normalize(text)):
        if word in _STOPWORDS:
            continue
        stem, ambiguous = strip_particle(word)
        if stem in _STOPWORDS or _loose_stem(word) in _STOPWORDS:
            continue
        runs = tuple(_RUN.findall(stem))
        grams = {g for r in runs if _HANGUL.match(r) for g in _bigrams(r)}
        if ambiguous:
            grams.update(g for r in _RUN.findall(word) if _HANGUL.match(r) for g in _bigrams(r))
        weight = 0.4 if len(stem) == 1 and stem.isascii() else 1.0
        concepts.setdefault(stem, Concept(stem, runs, tuple(sorted(grams)), weight))
    return Query(tuple(concepts.values()))


def _run_score(run: str, content: str, tokens: set[str]) -> float:
    if _HANGUL.match(run):
        if run in content:
            return 1.0
        grams = _bigrams(run)
        hit = sum(g in content for g in grams) / len(grams) if grams else 0.0
        return 0.7 * hit if hit >= 0.5 else 0.0
    if run.isascii() and run.isalpha() and len(run) >= 3:
        return 1.0 if english_stem(run) in content else 0.0
    return 1.0 if run in tokens else 0.0


def relevance(query: Query, content: str, weights: Mapping[str, float] | None = None) -> float:
    """The weighted share (0..1) of ``query``'s concepts found in ``content``.

    Args:
        weights: an extra weight per concept stem (``search_memories`` passes inverse document
            frequencies, so covering a rare word counts more than covering a common one).
    """
    if not query.concepts:
        return 0.0
    text = normalize(content)
    tokens = {r for w in _WORD.findall(text) for r in (w, *_RUN.findall(w))}
    got = total = 0.0
    for c in query.concepts:
        weight = c.weight * (weights.get(c.stem, 1.0) if weights else 1.0)
        total += weight
        if len(c.runs) > 1 and c.stem in text:
            got += weight
        elif c.runs:
            got += weight * sum(_run_score(r, text, tokens) for r in c.runs) / len(c.runs)
    return got / total if total else 0.0


class WordsAnalyzer:
    """``chat.analysis.Analyzer`` over the functions above."""

    name = "words"
    index_version = "words-baseline"

    def index_columns(self, text: str) -> tuple[str, str]:
        return index_columns(text)

    def analyze_query(self, text: str) -> Query:
        return analyze_query(text)

    def relevance(self, query: Query, content: str, weights: Mapping[str, float] | None = None,
                  *, indexed: object = None) -> float:
        return relevance(query, content, weights)


__all__ = [
    "WordsAnalyzer",
    "Concept",
    "Query",
    "analyze_query",
    "english_stem",
    "index_columns",
    "normalize",
    "relevance",
    "strip_particle",
]
