"""Korean and English analysis with Kiwi: the terms memories are indexed and searched by.

``KiwiAnalyzer.load()`` reads Kiwi's model (the ``kiwipiepy-model`` package: nothing is
downloaded) and the domain glossary once; it is blocking (about 2-3 s, ~300 MB), so the
service calls it in a worker thread at start and owns the result. All its methods are
blocking too and are called from the database thread or ``trio.to_thread``.

- Terms: Kiwi's content morphemes (``NNG NNP XR SN SL SH VV VA`` and URLs, e-mails, hashtags),
  lower case; Latin words through the Snowball English stemmer (PyStemmer). Particles, endings,
  question words and politeness are other parts of speech, so they never become terms: no
  hand-made particle or stopword list (only the standard English function words).
- Queries are analysed with Kiwi's typo correction (``basic_with_continual``); a noun or verb
  stem that asks rather than names (a predicate: 알려줘, 어때, 바뀌었어) counts half.
- Words Kiwi does not know (지그, 솔더: a chain of one-syllable grammatical morphemes) are
  terms as written (``_unknown_words``); so are, in the index, compounds it splits wrongly
  (염수분무 -> 염수분 + 무/prefix: ``_written_compounds``). A negating prefix stays on its noun
  (불합격, 미입고, 비정상: ``NEGATING_PREFIXES``), never dropped to leave the opposite.
- Expansions, always weighted below an exact match: the domain glossary (``glossary.toml``
  plus ``MCHAT_GLOSSARY_PATH``) and Kiwi's CoNg morpheme similarity (``most_similar_morphemes``,
  reciprocal nearest neighbours only: 운송 -> 수송, 원인 -> 요인); the search adds index words one
  or two jamo away from an unknown query word (typos such as 불랑률 -> 불량률); the coverage
  counts a noun found in a compound noun (포장 in 포장재, ``analysis.concept_match``), and an
  expansion of it the same way (세제 -> 세정 in 세정액), below both.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import attrs
import Stemmer  # type: ignore[import-not-found]

from .analysis import (
    NEGATING_PREFIXES,
    Concept,
    Expansion,
    Query,
    concept_match,
    coverage,
    hangul_bigrams,
    is_hangul,
)
from .glossary import Glossary, read_glossary_files

INDEX_TERMS_VERSION = 4  # bump when what is indexed for a text changes: the index is rebuilt
CONTENT_TAGS = frozenset("NNG NNP XR SN SL SH VV VA W_URL W_EMAIL W_HASHTAG W_SERIAL".split())
PREDICATE_TAGS = frozenset(("VV", "VA", "PRED"))
VERB_SUFFIXES = frozenset(("XSV", "XSA"))
NEGATABLE_TAGS = frozenset(("NNG", "NNP", "XR"))
SIMILAR_TAGS = frozenset(("NNG", "NNP", "VV", "VA", "XR"))
INDEX_MARGIN = 2.0  # a second analysis this close (log-probability) is indexed too
QUERY_MARGIN = 4.0  # ... or searched for, as an alternative of the best one's concepts
ALTERNATIVE_WEIGHT = 0.9
PREDICATE_WEIGHT = 0.5
SINGLE_LETTER_WEIGHT = 0.4
GLOSSARY_WEIGHT = 0.85
SIMILAR_MIN_SCORE = 0.55  # CoNg cosine similarity below this is too loose to search for
SIMILAR_TOP_N = 10  # a word's neighbours considered, and the rank it must hold in theirs
SIMILAR_WEIGHT = 0.6  # times the similarity
QUERY_CACHE = 512  # analysed questions kept
QUERY_TYPOS = "basic_with_continual"  # Kiwi's typo model for queries (not for the index)
# The Snowball project's English stop list (function words only).
ENGLISH_STOPWORDS = frozenset(
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his himself "
    "she her hers herself it its itself they them their theirs themselves what which who whom "
    "this that these those am is are was were be been being have has had having do does did "
    "doing would should could ought a an the and but if or because as until while of at by for "
    "with about against between into through during before after above below to from up down "
    "in out on off over under again further then once here there when where why how all any "
    "both each few more most other some such no nor not only own same so than too very can will "
    "just don't should now".split()
)


class _Tok(NamedTuple):
    form: str
    tag: str
    start: int
    end: int


def _tag(token: Any) -> str:
    return str(token.tag).split("-")[0]


@attrs.define
class KiwiAnalyzer:
    """Kiwi morphology + Snowball stemming + glossary and similarity expansion.

    ``expand=False`` (and ``similar=False``) give the evaluation's intermediate configurations;
    they share the loaded model (``with_options``).
    """

    kiwi: Any
    stemmer: Any
    glossary: Glossary
    expand: bool = True
    similar: bool = True
    load_seconds: float = 0.0
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    _similar_cache: dict[tuple[str, str], tuple[tuple[str, float], ...]] = attrs.field(
        factory=dict)
    _neighbour_cache: dict[tuple[str, str], tuple[tuple[tuple[str, str], float], ...]] = (
        attrs.field(factory=dict))
    _queries: Any = attrs.field(init=False, default=None)

    name = "kiwi"

    @classmethod
    def load(cls, *, glossary_path: str | None = None) -> KiwiAnalyzer:
        """Read the model and the glossary (blocking: call it in a worker thread).

        Raises:
            ValueError: the extra glossary cannot be read.
        """
        import time

        import kiwipiepy  # type: ignore[import-untyped]

        started = time.perf_counter()
        kiwi = kiwipiepy.Kiwi()
        kiwi.most_similar_morphemes(("품질", "NNG"), top_n=1)  # builds its tables now
        stemmer = Stemmer.Stemmer("english")
        analyzer = cls(kiwi, stemmer, Glossary())
        groups = read_glossary_files(glossary_path)
        spellings = tuple(tuple(t for t in (analyzer.best_terms(s) for s in g) if t)
                          for g in groups)
        analyzer.glossary = Glossary(spellings)
        analyzer.load_seconds = time.perf_counter() - started
        return analyzer

    def with_options(self, *, expand: bool, similar: bool = True) -> KiwiAnalyzer:
        """The same model and glossary with other expansion options."""
        return KiwiAnalyzer(self.kiwi, self.stemmer, self.glossary, expand=expand,
                            similar=similar, load_seconds=self.load_seconds, lock=self._lock,
                            similar_cache=self._similar_cache,
                            neighbour_cache=self._neighbour_cache)  # one lock per Kiwi object

    @property
    def index_version(self) -> str:
        import kiwipiepy

        return f"kiwi-{kiwipiepy.__version__}-terms{INDEX_TERMS_VERSION}"

    # -- terms -------------------------------------------------------------------------------

    def _analyses(self, text: str, *, top_n: int, margin: float,
                  typos: str | None = None, compounds: bool = False) -> list[list[_Tok]]:
        """The content tokens of Kiwi's best analyses of ``text`` (those within ``margin`` of
        the best one's log-probability), best first; with ``compounds``, each word's written
        compound noun too (``_written_compounds``)."""
        text = unicodedata.normalize("NFKC", text)
        out = []
        with self._lock:  # neither Kiwi nor the stemmer is documented as thread-safe
            found = (self.kiwi.analyze(text, top_n=top_n, typos=typos) if typos
                     else self.kiwi.analyze(text, top_n=top_n))
            best = found[0][1] if found else 0.0
            for tokens, score in found:
                if best - score <= margin:
                    out.append(self._content(tokens) + _unknown_words(text, tokens)
                               + (_written_compounds(text, tokens) if compounds else []))
        return out

    def _content(self, tokens: Any) -> list[_Tok]:
        out = []
        negated = -1  # the index of a noun a negating prefix was joined to
        for i, token in enumerate(tokens):
            tag = _tag(token)
            if i == negated:
                continue
            if (tag == "XPN" and token.form in NEGATING_PREFIXES and i + 1 < len(tokens)
                    and _tag(tokens[i + 1]) in NEGATABLE_TAGS
                    and tokens[i + 1].start == token.start + token.len):
                after = tokens[i + 1]  # 불+합격 -> 불합격: the opposite of 합격, never 합격
                out.append(_Tok(token.form + after.form.lower(), _tag(after), token.start,
                                after.start + after.len))
                negated = i + 1
                continue
            if tag not in CONTENT_TAGS:
                continue
            form = token.form.lower()
            if tag == "SL":
                if form in ENGLISH_STOPWORDS:
                    continue
                form = self.stemmer.stemWord(form)
            elif tag == "NNG" and i + 1 < len(tokens) and _tag(tokens[i + 1]) in VERB_SUFFIXES:
                tag = "PRED"  # 감사(하다), 확인(해 주세요): a verbal noun used as the predicate
            out.append(_Tok(form, tag, token.start, token.start + token.len))
        return out

    def best_terms(self, text: str) -> tuple[str, ...]:
        """The terms of Kiwi's best analysis of ``text``."""
        analyses = self._analyses(text, top_n=1, margin=0.0)
        return tuple(t.form for t in analyses[0]) if analyses else ()

    def index_terms(self, text: str) -> list[str]:
        """The terms of the best analysis and of a close second one (ambiguous segmentations
        such as 사출기 / 사출+기 are indexed both ways)."""
        analyses = self._analyses(text, top_n=2, margin=INDEX_MARGIN, compounds=True)
        return list(dict.fromkeys(t.form for a in analyses for t in a))

    def index_columns(self, text: str) -> tuple[str, str]:
        """The ``(words, grams)`` columns indexed for a memory's text."""
        terms = self.index_terms(text)
        grams = [g for t in terms if is_hangul(t) for g in hangul_bigrams(t)]
        return " ".join(dict.fromkeys(terms)), " ".join(grams)

    # -- queries -----------------------------------------------------------------------------

    def analyze_query(self, text: str) -> Query:
        """The concepts of a question (Kiwi's best analysis), each with its expansions: the
        forms other close analyses and the typo-corrected one give its span, and when
        ``expand``, glossary synonyms and Kiwi's similar morphemes.

        The last ``QUERY_CACHE`` questions' analyses are kept (a question is analysed by the
        search, then again by the answerer and the count of hidden matches: ~2 ms each)."""
        if self._queries is None:  # one cache per options; lru_cache is thread-safe
            self._queries = functools.lru_cache(maxsize=QUERY_CACHE)(self._analyze_query)
        result: Query = self._queries(text)
        return result

    def _analyze_query(self, text: str) -> Query:
        analyses = self._analyses(text, top_n=3, margin=QUERY_MARGIN)
        if not analyses:
            return Query(())
        best = _join_fragments(analyses[0])
        others = [t for a in analyses[1:] for t in a]
        others += [t for a in self._analyses(text, top_n=1, margin=0.0, typos=QUERY_TYPOS)
                   for t in a]
        forms = {t.form for t in best}
        glossary = self.glossary.expansions(forms) if self.expand else {}
        concepts: dict[str, Concept] = {}
        for tok in best:
            if tok.form in concepts:
                continue
            weight = 1.0
            if tok.tag in PREDICATE_TAGS:
                weight = PREDICATE_WEIGHT
            elif tok.tag == "SL" and len(tok.form) == 1:
                weight = SINGLE_LETTER_WEIGHT
            # another analysis's reading of the same span; one syllable of a longer word is
            # a fragment of it, not another reading (솔 of 솔더)
            exps = [Expansion((o.form,), ALTERNATIVE_WEIGHT, "analysis") for o in others
                    if o.start < tok.end and tok.start < o.end and o.form not in forms
                    and not (len(o.form) == 1 < len(tok.form) and is_hangul(o.form))]
            exps += [Expansion(sp, GLOSSARY_WEIGHT, "glossary")
                     for sp in glossary.get(tok.form, [])]
            if self.expand and self.similar and tok.tag in SIMILAR_TAGS:
                exps += [Expansion((f,), SIMILAR_WEIGHT * score, "kiwi")
                         for f, score in self._similar(tok.form, tok.tag)]
            grams = tuple(hangul_bigrams(tok.form)) if is_hangul(tok.form) else ()
            concepts[tok.form] = Concept(tok.form, grams, weight, tok.tag,
                                         tuple(_unique(exps, tok.form)))
        return Query(tuple(concepts.values()))

    def _similar(self, form: str, tag: str) -> tuple[tuple[str, float], ...]:
        """Kiwi's nearest morphemes of ``(form, tag)`` that have it among their own nearest
        (reciprocal nearest neighbours). A word in a crowded region of the embedding space
        (용접, 습도, 납기: a cosine of 0.8 to dozens of merely topical words: 포름알데히드,
        성층권, 견적서) is a hub of other words' lists but they are not in its own: that
        test keeps 운송/수송, 원인/요인, 담당자/책임자, 변경/수정 and drops the topical ones,
        whatever the region's scale of similarity (which is why no absolute cut-off does)."""
        key = (form, tag)
        with self._lock:
            if key not in self._similar_cache:
                self._similar_cache[key] = tuple(
                    (f.lower(), score) for (f, t), score in self._neighbours(key)
                    if score >= SIMILAR_MIN_SCORE and t in CONTENT_TAGS and f.strip()
                    and f.lower() != form and any(n == key for n, _ in self._neighbours((f, t))))
            return self._similar_cache[key]

    def _neighbours(self, key: tuple[str, str]) -> tuple[tuple[tuple[str, str], float], ...]:
        """Kiwi's ``SIMILAR_TOP_N`` nearest morphemes of ``key`` (cached; under the lock)."""
        found = self._neighbour_cache.get(key)
        if found is None:
            try:
                near = self.kiwi.most_similar_morphemes(key, top_n=SIMILAR_TOP_N)
            except ValueError:  # not in the model's vocabulary
                near = []
            found = tuple(((m.form, _tag(m)), float(m.score)) for m in near)
            self._neighbour_cache[key] = found
        return found

    # -- relevance ---------------------------------------------------------------------------

    def content_index(self, content: str) -> tuple[frozenset[str], frozenset[str]]:
        words, grams = self.index_columns(content)
        return frozenset(words.split()), frozenset(grams.split())

    def relevance(self, query: Query, content: str, weights: Mapping[str, float] | None = None,
                  *, indexed: tuple[frozenset[str], frozenset[str]] | None = None) -> float:
        """The weighted share (0..1) of ``query``'s concepts found in ``content`` (exactly,
        or through an expansion at its lower weight). ``indexed``: the content's terms and
        bigrams when already known (the index's columns)."""
        terms, grams = indexed if indexed is not None else self.content_index(content)
        return coverage(query, terms, grams, weights, compounds=True)


_EOJEOL = re.compile(r"\S+")
NOT_WORD_FINAL = ("J", "E", "X", "VC")  # particles, endings, affixes, copula


def _unknown_words(text: str, tokens: Any) -> list[_Tok]:
    """Words Kiwi does not know, as written (tag ``UNKNOWN``).

    Without a particle to anchor it, a loanword or term missing from Kiwi's dictionary is
    explained as a chain of one-syllable morphemes, most of them grammatical (지그 -> 지/EC +
    그/MM, 솔더 -> 솔/NNG + 더/MAG, 로트 -> 로/JKB + 트/VV): the word itself disappears from
    the terms. A Hangul word of two syllables or more made only of one-syllable morphemes,
    the last of which is no particle, ending, affix or copula (그는, 했다, 할게 end in one), is
    such a word: it is indexed and searched for as written."""
    out = []
    for word in _EOJEOL.finditer(text):
        run = [t for t in tokens if t.len > 0 and word.start() <= t.start
               and t.start + t.len <= word.end() and not _tag(t).startswith("S")]
        if len(run) < 2 or any(t.len != 1 for t in run) \
                or _tag(run[-1]).startswith(NOT_WORD_FINAL):
            continue
        start, end = run[0].start, run[-1].start + run[-1].len
        surface = text[start:end]
        if is_hangul(surface) and len(surface) == len(run):
            out.append(_Tok(surface, "UNKNOWN", start, end))
    return out


COMPOUND_PIECE_TAGS = frozenset(("NNG", "NNP", "XPN", "XSN", "XR"))


def _written_compounds(text: str, tokens: Any) -> list[_Tok]:
    """Compounds Kiwi split wrongly, as written (tag ``COMPOUND``), for the index.

    Kiwi splits a compound it does not know, not always at its parts (염수분무 -> 염수분 +
    무/XPN, 항온항습 -> 항 + 온 + 항 + 습): 분무 was no term and no bigram of the index. The
    nouns, affixes and roots a word begins with are indexed as written (particle left off)
    when they show it: a prefix after the first piece, or two one-syllable pieces or more;
    a question's noun is then found at its edge (``analysis.concept_match``)."""
    out = []
    for word in _EOJEOL.finditer(text):
        run: list[Any] = []
        for t in tokens:
            if t.len == 0 or t.start < word.start() or t.start + t.len > word.end():
                continue
            if _tag(t) in COMPOUND_PIECE_TAGS and t.start == (
                    run[-1].start + run[-1].len if run else word.start()):
                run.append(t)
            elif run or t.start > word.start():
                break
        if len(run) < 2 or not (any(_tag(t) == "XPN" for t in run[1:])
                                or sum(t.len == 1 for t in run) > 1):
            continue  # Kiwi's pieces are words and affixes where they belong (검사+원, 도장+실)
        start, end = run[0].start, run[-1].start + run[-1].len
        surface = text[start:end].lower()
        if is_hangul(surface):
            out.append(_Tok(surface, "COMPOUND", start, end))
    return out


def _join_fragments(tokens: list[_Tok]) -> list[_Tok]:
    """Adjacent one-syllable Hangul morphemes of one word (납끼 -> 납 + 끼, 로트 -> 로 + 트) are
    how Kiwi splits a word it does not know, often a misspelling: they are joined back into one
    term, which the search then looks up as written and a typo away. The morphemes of a word
    found whole (``_unknown_words``) give way to it."""
    whole = [t for t in tokens if t.tag == "UNKNOWN"]
    tokens = [t for t in tokens if t.tag == "UNKNOWN"
              or not any(w.start <= t.start and t.end <= w.end for w in whole)]
    tokens.sort(key=lambda t: t.start)
    out: list[_Tok] = []
    for tok in tokens:
        prev = out[-1] if out else None
        if (prev is not None and prev.end == tok.start and len(tok.form) == 1
                and is_hangul(tok.form) and is_hangul(prev.form)
                and (len(prev.form) == 1 or prev.tag == "FRAGMENT")):
            out[-1] = _Tok(prev.form + tok.form, "FRAGMENT", prev.start, tok.end)
        else:
            out.append(tok)
    return out


def _unique(exps: Iterable[Expansion], form: str) -> list[Expansion]:
    seen: dict[tuple[str, ...], Expansion] = {}
    for e in exps:
        if e.terms == (form,):
            continue
        if e.terms not in seen or seen[e.terms].weight < e.weight:
            seen[e.terms] = e
    return list(seen.values())


def explain_matches(analyzer: Any, query: str, memories: Iterable[Any]) -> list[str]:
    """One line per memory: each concept of ``query`` and how the memory says it."""
    q = analyzer.analyze_query(query)
    lines = []
    for m in memories:
        words, grams = analyzer.index_columns(m.content)
        parts = []
        for c in q.concepts:
            score, how = concept_match(c, frozenset(words.split()), frozenset(grams.split()),
                                       compounds=True)
            parts.append(f"{c.stem}: {how} {score:.2f}" if score else f"{c.stem}: -")
        if getattr(m, "similarity", None) is not None:
            parts.append(f"embedding similarity {m.similarity:.2f}")
        lines.append(f"{m.id}: " + ", ".join(parts))
    return lines


__all__ = ["Glossary", "KiwiAnalyzer", "explain_matches", "read_glossary_files"]
