"""Korean-aware full-text search over memories (SQL side; text analysis is ``chat.analysis``).

The index (``memories_fts``, unicode61 tokenizer) holds what the connection's analyzer
(``schema.ChatConnection.analyzer``, normally ``chat.morph.KiwiAnalyzer``) derives:

- ``words``: the text's terms (``X부품 불량률은 12%`` -> ``x 부품 불량 12``; ``deployments`` ->
  ``deploy``);
- ``grams``: the Hangul character bigrams of those terms (compounds and partial matches);
- ``vis``: one token for the room (or the owner of a personal memory), so only what the asker
  may see is ever scored. The SQL join on ``memories`` checks visibility again.

The index is rebuilt when the analyzer that built it changes (``ensure_index``: an upgrade of
Kiwi or of the term rules, recorded as ``chat_state.index_version``).

A query becomes concepts (its content terms) with expansions (glossary, Kiwi similarity, and
here index words a typo away from a query word the index does not hold). Candidates come from
up to three bm25-ranked FTS queries: *strict* (every concept, as a word or all its bigrams); and,
unless strict already found enough, *words* and *grams* (any concept). In an index of
``PRUNE_FROM_MEMORIES`` or more, the any-concept queries leave out terms held by more than
``COMMON_SHARE`` of it (scoring every memory that says 불량률 is what makes searches slow).
Document counts (``memories_vocab`` reads a term's posting list) are cached on the reading
connection until the index changes (``chat_state.index_generation``, bumped by every index
write). The index's ``vis`` token
narrows every FTS query; the visibility SQL is checked once, on the fused candidates.
The lists are fused by reciprocal rank fusion; the final score adds the IDF-weighted share of
the query's concepts a memory covers (``relevance``), a scope boost (this room, then the asker's
personal memories, then other rooms), a boost when the memory states a value of the kind the
question asks for (``chat.asked``: 몇 건 -> 15건), a small recency boost and a small malus for
summaries.
Visibility is decided by the caller: it passes the rooms whose memories the asker may see.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from .analysis import Analyzer, Expansion, PlainAnalyzer, Query, is_hangul
from .asked import Asked, asked_kind, states
from .hybrid import RRF_K, fuse, nearest_visible
from .protocol import MemoryRecord
from .typos import TYPO_WEIGHT, typo_matches, vowel_variants

logger = logging.getLogger(__name__)

_CANDIDATES = 60
ROOM_BOOST = 0.06
PERSONAL_BOOST = 0.04
RECENCY_BOOST = 0.03
RECENCY_HALF_LIFE_DAYS = 30.0
ANSWER_KIND_BOOST = 0.1  # a memory stating a value of the kind the question asks (몇 건: 15건)
COMMON_SHARE = 0.05
DENSE_WEIGHT = 1.0  # times a memory's cosine similarity to the question (docs/retrieval.md)
PRUNE_FROM_MEMORIES = 5_000
RowT = TypeVar("RowT", bound=Any)  # a result row (sqlite3.Row; a dict on PostgreSQL)
TERM_COUNTS_MAX = 50_000  # cached document counts per connection (cleared when full)


@attrs.define
class TermCounts:
    """Document counts of terms, valid for one generation of the index (``index_generation``).

    One per reading connection (``schema.ChatConnection.term_counts``), used by one thread at
    a time (the service's read limiter)."""

    generation: str | None = None
    total: int = 0
    docs: dict[str, int] = attrs.field(factory=dict)


def analyzer_of(conn: sqlite3.Connection) -> Analyzer:
    """The analyzer the connection's index is built with."""
    found: Analyzer | None = getattr(conn, "analyzer", None)
    return found if found is not None else PlainAnalyzer()


def ensure_index(conn: sqlite3.Connection) -> int:
    """Rebuild the index when another analyzer (or version) built it; how many were indexed."""
    analyzer = analyzer_of(conn)
    row = conn.execute("SELECT value FROM chat_state WHERE key = 'index_version'").fetchone()
    if row is not None and row[0] == analyzer.index_version:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM memories_fts")
        rows = conn.execute(
            "SELECT id, content, scope, room_id, owner_id FROM memories WHERE deleted_at IS NULL"
            " AND valid_to IS NULL AND forgotten_at IS NULL").fetchall()
        for r in rows:
            index_memory(conn, r[0], r[1], scope=r[2], room=r[3], owner=r[4])
        conn.execute("INSERT INTO chat_state (key, value) VALUES ('index_version', ?)"
                     " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (analyzer.index_version,))
        _bump_generation(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    if rows:
        logger.info("search index rebuilt for %s: %d memories", analyzer.index_version,
                    len(rows))
    return len(rows)


def _with_typos(conn: sqlite3.Connection, query: Query, docs: Mapping[str, int]) -> Query:
    """Hangul concepts the index does not hold, expanded by index words a typo away."""
    concepts = []
    for c in query.concepts:
        if docs.get(c.stem, 0) == 0 and is_hangul(c.stem) and len(c.stem) >= 2:
            near = [r[0] for v in vowel_variants(c.stem)  # a confused vowel in the 1st syllable
                    for r in conn.execute("SELECT term FROM memories_vocab WHERE term = ?", (v,))]
            first = c.stem[0]  # a typo anywhere else
            near += [r[0] for r in conn.execute(
                "SELECT term FROM memories_vocab WHERE term >= ? AND term < ? LIMIT 2000",
                (first, chr(ord(first) + 1)))]
            extra = [Expansion((t,), TYPO_WEIGHT, "typo") for t in typo_matches(c.stem, near)]
            if extra:
                c = attrs.evolve(c, expansions=(*c.expansions, *extra[:3]))
        concepts.append(c)
    return Query(tuple(concepts))


def _bump_generation(conn: sqlite3.Connection) -> None:
    """Say the index changed (in the writing transaction): cached document counts expire."""
    conn.execute("INSERT INTO chat_state (key, value) VALUES ('index_generation', '1')"
                 " ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1")


def _document_counts(conn: sqlite3.Connection, query: Query) -> tuple[dict[str, int], int]:
    """How many memories hold each stem and bigram of ``query``, and the size of the index.

    ``memories_vocab`` counts by reading a term's whole posting list (milliseconds for a word
    most memories hold), so the counts are kept on the connection (``TermCounts``) until the
    index's generation changes; read in the search's own transaction, they are exact."""
    cache: TermCounts | None = getattr(conn, "term_counts", None)
    if cache is not None:
        row = conn.execute(
            "SELECT value FROM chat_state WHERE key = 'index_generation'").fetchone()
        generation = row[0] if row else ""
        if generation != cache.generation or len(cache.docs) > TERM_COUNTS_MAX:
            cache.generation, cache.docs = generation, {}
            cache.total = conn.execute(
                "SELECT COALESCE(MAX(rowid), 0) FROM memories_fts").fetchone()[0]
        known, total = cache.docs, cache.total
    else:
        known = {}
        total = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM memories_fts").fetchone()[0]
    docs = {}
    for term in sorted({t for c in query.concepts for t in (c.stem, *c.grams)}):
        if term not in known:
            row = conn.execute("SELECT doc FROM memories_vocab WHERE term = ?",
                               (term,)).fetchone()
            known[term] = row[0] if row else 0
        docs[term] = known[term]
    return docs, total


def _concept_counts(query: Query, docs: Mapping[str, int]) -> dict[str, int]:
    """Memories per concept; a stem that is no indexed word (주간회) counts as its rarest bigram."""
    return {c.stem: docs.get(c.stem) or min((docs.get(g, 0) for g in c.grams), default=0)
            for c in query.concepts}


def concept_weights(df: Mapping[str, int], total: int) -> dict[str, float]:
    """BM25's inverse document frequency of each concept, floored at 0.2."""
    return {stem: max(0.2, math.log(1 + (total - n + 0.5) / (n + 0.5))) for stem, n in df.items()}


def _selective(query: Query, docs: Mapping[str, int], total: int) -> Query:
    """The concepts and bigrams worth an any-word search: in a large index, the rarer ones.

    Scoring every memory that shares a very common word (불량률 in a quality team's chat) is
    what makes a search slow; memories with all the words come from the strict query anyway.
    A term is common when more than ``COMMON_SHARE`` of the index holds it; when every
    concept (or every bigram of a concept) is common, the rarest one is kept.
    """
    if total < PRUNE_FROM_MEMORIES or not query.concepts:
        return query
    cap = COMMON_SHARE * total
    df = _concept_counts(query, docs)
    keep = {stem for stem, n in df.items() if n <= cap} or {min(df, key=lambda s: df[s])}
    concepts = []
    for c in query.concepts:
        if c.stem in keep:
            grams = [g for g in c.grams if docs.get(g, 0) <= cap]
            if not grams and c.grams:
                grams = [min(c.grams, key=lambda g: docs.get(g, 0))]
            concepts.append(attrs.evolve(c, grams=tuple(grams)))
    return Query(tuple(concepts))


def visibility_token(scope: str, owner_or_room: str) -> str:
    """The token of the ``vis`` column: who may see a memory (``room``/``personal`` + id)."""
    digest = hashlib.blake2b(f"{scope}:{owner_or_room}".encode(), digest_size=8).hexdigest()
    return f"v{digest}"


def _visible_tokens(rooms: Sequence[str], owner: str | None) -> list[str]:
    tokens = [visibility_token("room", r) for r in rooms]
    return tokens + ([visibility_token("personal", owner)] if owner else [])


def index_memory(conn: sqlite3.Connection, memory_id: int, content: str, *, scope: str,
                 room: str | None, owner: str | None) -> None:
    """(Re)index one memory, with who may see it."""
    conn.execute("DELETE FROM memories_fts WHERE rowid = ?", (memory_id,))
    words, grams = analyzer_of(conn).index_columns(content)
    vis = visibility_token(scope, (owner if scope == "personal" else room) or "")
    conn.execute("INSERT INTO memories_fts (rowid, words, grams, vis) VALUES (?, ?, ?, ?)",
                 (memory_id, words, grams, vis))
    _bump_generation(conn)


def unindex_memory(conn: sqlite3.Connection, memory_id: int) -> None:
    conn.execute("DELETE FROM memories_fts WHERE rowid = ?", (memory_id,))
    _bump_generation(conn)


_VISIBLE = (
    "m.deleted_at IS NULL AND m.valid_to IS NULL AND m.forgotten_at IS NULL"
    " AND ((m.scope = 'room' AND m.room_id IN (SELECT value FROM json_each(?)))"
    " OR (m.scope = 'personal' AND m.owner_id = ?))"
)


def _ranked_ids(conn: sqlite3.Connection, match: str, vis: str) -> list[int]:
    """Best bm25 first; the index's ``vis`` column narrows the match (the visibility SQL
    guards the fused candidates in ``search_scoped``: joining ``memories`` here for every
    match cost more than the FTS query itself)."""
    rows = conn.execute(
        "SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?"
        " ORDER BY bm25(memories_fts, 1.0, 1.0, 0.0) LIMIT ?",
        (f"({match}) AND {vis}", _CANDIDATES),
    ).fetchall()
    return [row[0] for row in rows]


def memory_from_row(row: sqlite3.Row, score: float = 0.0,
                    similarity: float | None = None) -> MemoryRecord:
    keys = row.keys()
    return MemoryRecord(
        id=f"m{row['id']}", content=row["content"], scope=row["scope"], room_id=row["room_id"],
        owner_id=row["owner_id"], source_post_id=row["source_post_id"],
        permalink=row["permalink"], created_at_ms=row["created_at"],
        updated_at_ms=row["updated_at"], score=score, author_id=row["author_id"],
        kind=row["kind"], subject=row["subject"],
        valid_from_ms=row["valid_from"] or row["created_at"], valid_to_ms=row["valid_to"],
        superseded_by=f"m{row['superseded_by']}" if row["superseded_by"] else None,
        forgotten_at_ms=row["forgotten_at"],
        author_name=row["author_name"] if "author_name" in keys else "",
        room_name=row["room_name"] if "room_name" in keys else "",
        similarity=similarity,
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
    return search_scoped(conn, text, rooms=rooms, owner=owner, current_room=current_room,
                         now_ms=now_ms, limit=limit)[0]


def search_scoped(
    conn: sqlite3.Connection,
    text: str,
    *,
    rooms: Sequence[str],
    owner: str | None,
    current_room: str | None,
    now_ms: int,
    limit: int = 10,
    keep: Callable[[MemoryRecord], bool] | None = None,
    dense: tuple[Sequence[float], str] | None = None,
) -> tuple[list[MemoryRecord], list[MemoryRecord]]:
    """``(kept, left out)``: the matches ``keep`` accepts, best first, and the others.

    ``dense``: the question's embedding and its model: the visible memories nearest it are a
    further ranked list, fused with the lexical ones (``chat.embeddings``); each memory found
    so carries its ``similarity``. ``keep`` applies to them as to every other match.

    ``keep`` is applied before copies of one text are merged, so the room copy of a memory
    the audience may see is not hidden behind a personal copy it may not.
    """
    analyzer = analyzer_of(conn)
    query = analyzer.analyze_query(text)
    tokens = _visible_tokens(rooms, owner)
    if not (query.concepts or dense) or not tokens:
        return [], []
    rooms_json = json.dumps(list(rooms))
    vis = "{vis} : (" + " OR ".join(tokens) + ")"
    docs, total = _document_counts(conn, query)
    query = _with_typos(conn, query, docs)
    strict = query.strict_match()
    ranked = [_ranked_ids(conn, strict, vis)] if strict else []
    near = (nearest_visible(conn, dense, vis, _VISIBLE, rooms_json, owner)
            if dense is not None else [])
    similarity = dict(near)
    if query.concepts and (not ranked or len(ranked[0]) < 2 * limit):
        narrow = _selective(query, docs, total)
        ranked += [_ranked_ids(conn, match, vis)
                   for match in (narrow.word_match(), narrow.gram_match()) if match]
    fused = fuse(ranked, near)
    if not fused:
        return [], []
    rows = conn.execute(
        "SELECT m.*, COALESCE(u.name, '') AS author_name, COALESCE(r.name, '') AS room_name,"
        " f.words AS fts_words, f.grams AS fts_grams"
        " FROM memories AS m LEFT JOIN users AS u ON u.id = m.author_id"
        " LEFT JOIN chat_rooms AS r ON r.id = m.room_id"
        " LEFT JOIN memories_fts AS f ON f.rowid = m.id"
        f" WHERE m.id IN (SELECT value FROM json_each(?)) AND {_VISIBLE}",
        (json.dumps(list(fused)), rooms_json, owner),
    ).fetchall()
    weights = concept_weights(_concept_counts(query, docs), total)
    scored = [(_score(analyzer, query, weights, row, fused[row["id"]], current_room, now_ms,
                      similarity.get(row["id"])), row) for row in rows]
    records = {row["id"]: memory_from_row(row, score, similarity.get(row["id"]))
               for score, row in scored}
    kept: list[tuple[float, sqlite3.Row]] = []
    left: list[tuple[float, sqlite3.Row]] = []
    for score, row in scored:
        (kept if keep is None or keep(records[row["id"]]) else left).append((score, row))
    kind = asked_kind(text)
    best = _dedupe(kind_boosted(kept, kind, limit))[:limit]
    shown = {row["norm"] for _, row in best}
    hidden = _dedupe(kind_boosted([(s, r) for s, r in left if r["norm"] not in shown], kind,
                                  limit))[:limit]
    return ([memory_from_row(row, score, similarity.get(row["id"])) for score, row in best],
            [memory_from_row(row, score, similarity.get(row["id"])) for score, row in hidden])


def kind_boosted(scored: Sequence[tuple[float, RowT]], kind: Asked, limit: int,
                 ) -> list[tuple[float, RowT]]:
    """``scored`` with ``ANSWER_KIND_BOOST`` added to the memories that state a value of the
    kind the question asks for (``chat.asked``: 몇 건 -> 15건, 언제 -> a date), which the terms
    leave out (question words, counters and units are no content morphemes).

    Checked only where it can change the first ``limit`` texts: for a memory scoring at least
    the ``limit``-th best text's score less the boost (a check costs ~0.1 ms)."""
    if kind == Asked() or not scored:
        return list(scored)
    norms: set[str] = set()
    floor = -math.inf
    for score, row in sorted(scored, key=lambda item: -item[0]):
        norms.add(row["norm"])
        if len(norms) == limit:
            floor = score - ANSWER_KIND_BOOST
            break
    return [(score + ANSWER_KIND_BOOST if score >= floor and states(row["content"], kind)
             else score, row) for score, row in scored]


def _score(analyzer: Analyzer, query: Query, weights: Mapping[str, float], row: sqlite3.Row,
           rrf: float, current_room: str | None, now_ms: int,
           similarity: float | None = None) -> float:
    """How well a memory answers: its lexical coverage of the query plus its fused rank (RRF
    over every list, the embeddings' included), its cosine similarity to the question times
    ``DENSE_WEIGHT`` when embeddings found it (meaning weighs as much as the words: a rank
    alone gave the embeddings too little say, docs/retrieval.md), scope and recency (the kind
    of value asked: ``kind_boosted``). The similarity also goes to the answerer on the record
    (``answer.MEANING_SIMILARITY``, ``answer.DENSE_THRESHOLD``)."""
    indexed = (frozenset((row["fts_words"] or "").split()),
               frozenset((row["fts_grams"] or "").split()))
    lexical = analyzer.relevance(query, row["content"], weights, indexed=indexed)
    score = lexical + 0.35 * rrf * (RRF_K + 1) / 2
    if similarity is not None:
        score += DENSE_WEIGHT * max(0.0, similarity)
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
    """Best first, one memory per normalised text (/remember stores a room and a personal copy)."""
    seen: set[str] = set()
    out = []
    for score, row in sorted(scored, key=lambda item: (-item[0], -item[1]["id"])):
        if row["norm"] not in seen:
            seen.add(row["norm"])
            out.append((score, row))
    return out


__all__ = [
    "analyzer_of",
    "concept_weights",
    "ensure_index",
    "index_memory",
    "kind_boosted",
    "memory_from_row",
    "search_memories",
    "search_scoped",
    "unindex_memory",
    "visibility_token",
]
