"""Korean-aware full-text search over memories.

SQLite 3.40's FTS5 trigram tokenizer cannot match terms shorter than three characters (``배포``,
``회의``), so the index is an FTS5 table under the plain unicode61 tokenizer over two derived
columns (``index_columns``):

- ``words``: every word, plus its particle-stripped stem (``불량률은`` -> ``불량률``), its script
  runs (``X부품`` -> ``x``, ``부품``) and a light English stem (``deployments`` -> ``deploy``);
- ``grams``: the Hangul character bigrams of every Hangul run (``불량률은`` -> ``불량 량률 률은``).

A query (``analyze_query``) becomes concepts: its words minus question words and particles.
Two FTS queries run (stems with prefix matching on ``words``; bigrams on ``grams``), each ranked by
bm25, and the candidates are fused by reciprocal rank fusion. The final score adds the share of
the query's concepts the memory covers (``relevance``), a scope boost (this room, then the asker's
personal memories, then other rooms) and a small recency boost. Visibility is decided by the
caller: it passes the rooms whose memories the asker may see.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Sequence

import attrs

from .protocol import MemoryRecord

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
        "알려줘 알려 알려주세요 알려줄래 주세요 줘 있어 있나 있나요 있어요 있지 인지 건지 오늘 지금 "
        "혹시 좀 요즘 했어 했나 했지 됐어 됐나 되나 돼 거야 거예요 해 맞아 나요 였지 였어 였나 "
        "이었지 이었어 더라 뭐였지 시야 시지 시에 시였지 하나 얼마였지 몇시 몇시야 "
        "야 요 시 분 것 거 수 더 꼭 잘 다 또 및 등 "
        "a an the is are was were be been of to for in on at by with do does did our we i you "
        "it this that these me my tell about much many please any there has have had from and "
        "or what when where who whom which how why can could should would will shall as"
    ).split()
)
RRF_K = 60
_CANDIDATES = 60
ROOM_BOOST = 0.06
PERSONAL_BOOST = 0.04
RECENCY_BOOST = 0.03
RECENCY_HALF_LIFE_DAYS = 30.0


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


@attrs.frozen
class Query:
    concepts: tuple[Concept, ...]

    def word_match(self) -> str | None:
        """The FTS5 expression over ``words``, or None when the query has no words."""
        terms: set[str] = set()
        for c in self.concepts:
            terms.add(f'"{c.stem}"*' if len(c.stem) >= 2 and not c.stem.isdigit() else f'"{c.stem}"')
            if len(c.runs) > 1:
                terms.update(f'"{r}"*' if _HANGUL.match(r) and len(r) >= 2 else f'"{r}"'
                             for r in c.runs)
            terms.update(f'"{english_stem(r)}"*' for r in c.runs if r.isalpha() and r.isascii()
                         and len(r) >= 4)
        return "{words} : (" + " OR ".join(sorted(terms)) + ")" if terms else None

    def gram_match(self) -> str | None:
        """The FTS5 expression over ``grams``, or None when the query has no Hangul bigram."""
        grams = sorted({g for c in self.concepts for g in c.grams})
        return "{grams} : (" + " OR ".join(f'"{g}"' for g in grams) + ")" if grams else None


def analyze_query(text: str) -> Query:
    """The concepts of ``text``: its words without question words, stopwords and particles."""
    concepts: dict[str, Concept] = {}
    for word in _WORD.findall(normalize(text)):
        if word in _STOPWORDS:
            continue
        stem, ambiguous = strip_particle(word)
        if stem in _STOPWORDS:
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


def relevance(query: Query, content: str) -> float:
    """The weighted share (0..1) of ``query``'s concepts found in ``content``."""
    if not query.concepts:
        return 0.0
    text = normalize(content)
    tokens = {r for w in _WORD.findall(text) for r in (w, *_RUN.findall(w))}
    got = total = 0.0
    for c in query.concepts:
        total += c.weight
        if len(c.runs) > 1 and c.stem in text:
            got += c.weight
        elif c.runs:
            got += c.weight * sum(_run_score(r, text, tokens) for r in c.runs) / len(c.runs)
    return got / total


def index_memory(conn: sqlite3.Connection, memory_id: int, content: str) -> None:
    """(Re)index one memory."""
    conn.execute("DELETE FROM memories_fts WHERE rowid = ?", (memory_id,))
    words, grams = index_columns(content)
    conn.execute("INSERT INTO memories_fts (rowid, words, grams) VALUES (?, ?, ?)",
                 (memory_id, words, grams))


def unindex_memory(conn: sqlite3.Connection, memory_id: int) -> None:
    conn.execute("DELETE FROM memories_fts WHERE rowid = ?", (memory_id,))


_VISIBLE = (
    "m.deleted_at IS NULL AND ((m.scope = 'room' AND m.room_id IN (SELECT value FROM json_each(?)))"
    " OR (m.scope = 'personal' AND m.owner_id = ?))"
)


def _ranked_ids(conn: sqlite3.Connection, match: str, rooms: str, owner: str | None) -> list[int]:
    rows = conn.execute(
        "SELECT memories_fts.rowid FROM memories_fts JOIN memories AS m ON m.id = memories_fts.rowid"
        f" WHERE memories_fts MATCH ? AND {_VISIBLE} ORDER BY bm25(memories_fts) LIMIT ?",
        (match, rooms, owner, _CANDIDATES),
    ).fetchall()
    return [row[0] for row in rows]


def memory_from_row(row: sqlite3.Row, score: float = 0.0) -> MemoryRecord:
    return MemoryRecord(
        id=f"m{row['id']}", content=row["content"], scope=row["scope"], room_id=row["room_id"],
        owner_id=row["owner_id"], source_post_id=row["source_post_id"],
        permalink=row["permalink"], created_at_ms=row["created_at"],
        updated_at_ms=row["updated_at"], score=score,
    )


def search_memories(
    conn: sqlite3.Connection,
    text: str,
    *,
    rooms: Sequence[str],
    owner: str | None,
    current_room: str | None,
    now_ms: int,
    limit: int = 10,
) -> list[MemoryRecord]:
    """The memories matching ``text`` among the visible ones, best first, with their score.

    Args:
        rooms: rooms whose room memories the asker may see.
        owner: the asker, whose personal memories are visible too.
        current_room: the room asked in; its memories get the largest boost.
    """
    query = analyze_query(text)
    fused: dict[int, float] = {}
    rooms_json = json.dumps(list(rooms))
    for match in (query.word_match(), query.gram_match()):
        if match is None:
            continue
        for rank, memory_id in enumerate(_ranked_ids(conn, match, rooms_json, owner)):
            fused[memory_id] = fused.get(memory_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    if not fused:
        return []
    rows = conn.execute(
        "SELECT * FROM memories WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(fused)),),
    ).fetchall()
    scored = [(_score(query, row, fused[row["id"]], current_room, now_ms), row) for row in rows]
    return [memory_from_row(row, score) for score, row in _dedupe(scored)[:limit]]


def _score(query: Query, row: sqlite3.Row, rrf: float, current_room: str | None,
           now_ms: int) -> float:
    score = relevance(query, row["content"]) + 0.35 * rrf * (RRF_K + 1) / 2
    if row["scope"] == "room" and row["room_id"] == current_room:
        score += ROOM_BOOST
    elif row["scope"] == "personal":
        score += PERSONAL_BOOST
    age_days = max(0.0, (now_ms - row["updated_at"]) / 86_400_000)
    score += RECENCY_BOOST * math.pow(0.5, age_days / RECENCY_HALF_LIFE_DAYS)
    if row["kind"] == "summary":
        score -= 0.1
    return score


def _dedupe(scored: Iterable[tuple[float, sqlite3.Row]]) -> list[tuple[float, sqlite3.Row]]:
    """Best first, one memory per normalised text (a /remember stores a room and a personal copy)."""
    seen: set[str] = set()
    out = []
    for score, row in sorted(scored, key=lambda item: (-item[0], -item[1]["id"])):
        if row["norm"] not in seen:
            seen.add(row["norm"])
            out.append((score, row))
    return out


__all__ = [
    "Query",
    "analyze_query",
    "index_columns",
    "index_memory",
    "normalize",
    "relevance",
    "search_memories",
    "strip_particle",
    "unindex_memory",
]
