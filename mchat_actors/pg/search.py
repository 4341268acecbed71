"""Korean full-text search on PostgreSQL: the SQLite search (``chat.search``) on tsvectors.

The same analyzer (``chat.morph.KiwiAnalyzer``) derives the same terms (``index_columns``):
Kiwi's content morphemes and stemmed English words (``words``) and the Hangul bigrams of those
terms (``grams``). They are stored in ``memories_search`` as text and as ``tsvector``s built
with ``array_to_tsvector``: the lexemes are the analyzer's terms exactly, with no parser or
dictionary of PostgreSQL's in between (the 'simple' configuration would re-tokenize them, and
its word rules for Hangul depend on the server's locale). Queries are ``tsquery`` values made
of quoted lexemes, so nothing is normalized twice. GIN indexes serve ``@@``.

What matches and how it is scored follow ``chat.search`` step by step: the concepts and their
expansions (glossary, Kiwi similarity, typos: the index words one typo away come from
``ts_stat``), the *strict* list (every full-weight concept, as a word or all its bigrams), then
the *words* and *grams* lists (any concept), each the best ``_CANDIDATES`` by a BM25 computed
in SQL (IDF from the same document counts, one hit per term, length normalized), fused by
reciprocal rank, and the final score is ``chat.search``'s own ``_score`` (the analyzer's
coverage of the question, scope, recency), deduplicated the same way.

Visibility: ``vis`` holds the token of the room (or of the owner of a personal memory);
candidates are filtered by it AND by the rows of ``memories`` (scope, room in the asker's
rooms, or owner), as on SQLite: nothing outside the audience is ever scored or returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs
import psycopg
from psycopg.rows import dict_row

from ..chat.analysis import Analyzer, Concept, Expansion, Query, is_hangul
from ..chat.asked import asked_kind
from ..chat.hybrid import fuse
from ..chat.protocol import MemoryRecord
from ..chat.search import (
    _CANDIDATES,
    _concept_counts,
    _dedupe,
    _score,
    _selective,
    concept_weights,
    kind_boosted,
    memory_from_row,
    visibility_token,
)
from ..chat.typos import TYPO_WEIGHT, typo_matches, vowel_variants

if TYPE_CHECKING:
    from .embeddings import VectorCache

Conn = psycopg.Connection[Any]

VISIBLE = ("m.deleted_at IS NULL AND m.valid_to IS NULL AND m.forgotten_at IS NULL"
           " AND ((m.scope = 'room' AND m.room_id = ANY(%(rooms)s::text[]))"
           " OR (m.scope = 'personal' AND m.owner_id = %(owner)s))")


def lexeme(term: str) -> str:
    """``term`` as one quoted tsquery lexeme, verbatim."""
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def index_memory(conn: Conn, analyzer: Analyzer, memory_id: int, content: str, *,
                 scope: str, room: str | None, owner: str | None) -> None:
    """(Re)index one memory, with who may see it."""
    words, grams = analyzer.index_columns(content)
    vis = visibility_token(scope, (owner if scope == "personal" else room) or "")
    conn.execute(
        "INSERT INTO memories_search (memory_id, words, grams, words_tsv, grams_tsv, vis)"
        " VALUES (%(id)s, %(w)s, %(g)s, array_to_tsvector(%(wl)s::text[]),"
        " array_to_tsvector(%(gl)s::text[]), %(vis)s)"
        " ON CONFLICT (memory_id) DO UPDATE SET words = excluded.words, grams = excluded.grams,"
        " words_tsv = excluded.words_tsv, grams_tsv = excluded.grams_tsv, vis = excluded.vis",
        {"id": memory_id, "w": words, "g": grams, "wl": sorted(set(words.split())),
         "gl": sorted(set(grams.split())), "vis": vis})


def unindex_memory(conn: Conn, memory_id: int) -> None:
    conn.execute("DELETE FROM memories_search WHERE memory_id = %s", (memory_id,))


def reindex(conn: Conn, analyzer: Analyzer) -> int:
    """Rebuild the whole index with ``analyzer`` (as ``chat.search.ensure_index``)."""
    conn.execute("DELETE FROM memories_search")
    rows = conn.execute("SELECT id, content, scope, room_id, owner_id FROM memories"
                        " WHERE deleted_at IS NULL AND valid_to IS NULL AND forgotten_at IS NULL"
                        ).fetchall()
    for memory_id, content, scope, room, owner in rows:
        index_memory(conn, analyzer, memory_id, content, scope=scope, room=room, owner=owner)
    conn.execute("INSERT INTO chat_state (key, value) VALUES ('index_version', %s)"
                 " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 (analyzer.index_version,))
    return len(rows)


@attrs.frozen
class _Term:
    column: str  # words | grams
    term: str


@attrs.frozen
class _Match:
    """A boolean condition over the two tsvectors and the terms it mentions (for BM25)."""

    sql: str
    params: tuple[str, ...]
    terms: tuple[_Term, ...]


def _any_of(column: str, groups: Iterable[Sequence[str]]) -> tuple[str, list[_Term]]:
    """A tsquery over ``column``: any group, each group all of its terms. A group with an
    empty term (no lexeme can be empty) matches nothing, as an empty FTS5 phrase; no group
    left is a query that matches nothing."""
    groups = [g for g in groups if g and all(g)]
    if not groups:
        return _NOTHING, []
    alts = sorted({" & ".join(lexeme(t) for t in g) if len(g) == 1
                   else "(" + " & ".join(lexeme(t) for t in g) + ")" for g in groups})
    terms = [_Term(column, t) for g in groups for t in g]
    return " | ".join(alts), terms


# a lexeme no memory has: index terms come from str.split(), so never hold a space
_NOTHING = "' '"


def _alternatives(c: Concept) -> list[tuple[str, ...]]:
    return [(c.stem,), *(e.terms for e in c.expansions)]


def word_match(query: Query) -> _Match | None:
    groups = [a for c in query.concepts for a in _alternatives(c)]
    if not groups:
        return None
    tsq, terms = _any_of("words", groups)
    return _Match("s.words_tsv @@ %s::tsquery", (tsq,), tuple(terms))


def gram_match(query: Query) -> _Match | None:
    grams = sorted({g for c in query.concepts for g in c.grams if len(c.grams) > 1})
    if not grams:
        return None
    tsq, terms = _any_of("grams", [(g,) for g in grams])
    return _Match("s.grams_tsv @@ %s::tsquery", (tsq,), tuple(terms))


def strict_match(query: Query) -> _Match | None:
    """Every full-weight concept, as one of its words or all of its bigrams."""
    parts: list[str] = []
    params: list[str] = []
    terms: list[_Term] = []
    for c in query.concepts:
        if c.weight < 1.0:
            continue
        tsq, found = _any_of("words", _alternatives(c))
        part, terms = "s.words_tsv @@ %s::tsquery", [*terms, *found]
        params.append(tsq)
        if len(c.grams) > 1:
            part += " OR s.grams_tsv @@ %s::tsquery"
            params.append(" & ".join(lexeme(g) for g in c.grams))
            terms += [_Term("grams", g) for g in c.grams]
        parts.append(f"({part})")
    if not parts:
        return None
    return _Match(" AND ".join(parts), tuple(params), tuple(terms))


def document_counts(conn: Conn, query: Query) -> tuple[dict[str, int], int]:
    """Memories holding each stem and bigram of ``query`` (in either column), and the size of
    the index as ``chat.search`` counts it (its largest id)."""
    docs: dict[str, int] = {}
    for term in sorted({t for c in query.concepts for t in (c.stem, *c.grams)}):
        if not term:
            docs[term] = 0
            continue
        row = conn.execute("SELECT count(*) FROM memories_search WHERE words_tsv @@ %s::tsquery"
                           " OR grams_tsv @@ %s::tsquery", (lexeme(term), lexeme(term))
                           ).fetchone()
        docs[term] = int(row[0]) if row else 0
    row = conn.execute("SELECT COALESCE(MAX(memory_id), 0) FROM memories_search").fetchone()
    return docs, int(row[0]) if row else 0


def with_typos(conn: Conn, query: Query, docs: Mapping[str, int]) -> Query:
    """Hangul concepts the index does not hold, expanded by index words a typo away."""
    concepts = []
    for c in query.concepts:
        if docs.get(c.stem, 0) == 0 and is_hangul(c.stem) and len(c.stem) >= 2:
            first = c.stem[0]
            # a confused vowel in the first syllable: those words too, in the same statement
            # (ts_stat reads the whole index)
            variants = vowel_variants(c.stem)
            near = conn.execute(
                "WITH s AS (SELECT word FROM"
                " ts_stat('SELECT words_tsv || grams_tsv FROM memories_search'))"
                " (SELECT word FROM s WHERE word = ANY(%s)) UNION ALL"
                " (SELECT word FROM s WHERE word COLLATE \"C\" >= %s"
                " AND word COLLATE \"C\" < %s LIMIT 2000)",
                (variants, first, chr(ord(first) + 1))).fetchall()
            extra = [Expansion((t,), TYPO_WEIGHT, "typo")
                     for t in typo_matches(c.stem, (str(r[0]) for r in near))]
            if extra:
                c = attrs.evolve(c, expansions=(*c.expansions, *extra[:3]))
        concepts.append(c)
    return Query(tuple(concepts))


def _bm25(conn: Conn, match: _Match, total: int) -> tuple[str, list[object]]:
    """SQL for each candidate's BM25 over the match's terms (k1 1.2, b 0.75), and its params."""
    terms = sorted({t for t in match.terms if t.term}, key=lambda t: (t.column, t.term))
    row = conn.execute("SELECT COALESCE(avg(length(words_tsv) + length(grams_tsv)), 1)"
                       " FROM memories_search").fetchone()
    avg = float(row[0]) if row and row[0] else 1.0
    norm = f"(1.2 * (0.25 + 0.75 * (length(s.words_tsv) + length(s.grams_tsv)) / {avg!r}))"
    parts: list[str] = []
    params: list[object] = []
    for t in terms:
        n = conn.execute(f"SELECT count(*) FROM memories_search WHERE {t.column}_tsv @@"
                         " %s::tsquery", (lexeme(t.term),)).fetchone()
        count = int(n[0]) if n else 0
        idf = max(1e-6, math.log((max(total, 1) - count + 0.5) / (count + 0.5)))
        parts.append(f"(CASE WHEN s.{t.column}_tsv @@ %s::tsquery THEN {idf!r} * 2.2"
                     f" / (1 + {norm}) ELSE 0 END)")
        params.append(lexeme(t.term))
    return (" + ".join(parts) or "0"), params


def _ranked_ids(conn: Conn, match: _Match, vis: list[str], rooms: list[str],
                owner: str | None, total: int) -> list[int]:
    score, score_params = _bm25(conn, match, total)
    sql = (f"SELECT s.memory_id, {score} AS rank FROM memories_search AS s"
           " JOIN memories AS m ON m.id = s.memory_id"
           f" WHERE ({match.sql}) AND s.vis = ANY(%s::text[]) AND {VISIBLE}"
           " ORDER BY rank DESC, s.memory_id LIMIT %s")
    positional = sql.replace("%(rooms)s", "%s").replace("%(owner)s", "%s")
    rows = conn.execute(positional.encode(), [*score_params, *match.params, vis, rooms, owner,
                                              _CANDIDATES]).fetchall()
    return [int(r[0]) for r in rows]


def search_memories(conn: Conn, analyzer: Analyzer, text: str, *, rooms: Sequence[str],
                    owner: str | None, current_room: str | None, now_ms: int,
                    limit: int = 10) -> list[MemoryRecord]:
    """The memories matching ``text`` among the visible ones, best first (``chat.search``'s
    ``search_memories`` on PostgreSQL)."""
    return search_scoped(conn, analyzer, text, rooms=rooms, owner=owner,
                         current_room=current_room, now_ms=now_ms, limit=limit)[0]


def search_scoped(conn: Conn, analyzer: Analyzer, text: str, *, rooms: Sequence[str],
                  owner: str | None, current_room: str | None, now_ms: int, limit: int = 10,
                  keep: Callable[[MemoryRecord], bool] | None = None,
                  dense: tuple[Sequence[float], str] | None = None,
                  vectors: VectorCache | None = None,
                  ) -> tuple[list[MemoryRecord], list[MemoryRecord]]:
    """``chat.search.search_scoped`` on PostgreSQL: ``(kept, left out)``, ``keep`` applied
    before copies of one text are merged. ``dense``: the question's embedding and its model;
    the visible memories nearest it (``pg.embeddings.nearest``) are one more ranked list,
    fused as on SQLite, each found so carrying its ``similarity``; ``vectors``: the process's
    cache of vectors already read (``PgQueries.vectors``)."""
    from .embeddings import nearest  # pg.embeddings imports VISIBLE from here

    query = analyzer.analyze_query(text)
    vis = [visibility_token("room", r) for r in rooms]
    vis += [visibility_token("personal", owner)] if owner else []
    if not (query.concepts or dense) or not vis:
        return [], []
    docs, total = document_counts(conn, query)
    query = with_typos(conn, query, docs)
    room_list = list(rooms)
    strict = strict_match(query)
    ranked = [_ranked_ids(conn, strict, vis, room_list, owner, total)] if strict else []
    near = (nearest(conn, dense[0], dense[1], rooms=room_list, owner=owner, cache=vectors)
            if dense is not None else [])
    similarity = dict(near)
    if query.concepts and (not ranked or len(ranked[0]) < 2 * limit):
        narrow = _selective(query, docs, total)
        for match in (word_match(narrow), gram_match(narrow)):
            if match is not None:
                ranked.append(_ranked_ids(conn, match, vis, room_list, owner, total))
    fused = fuse(ranked, near)
    if not fused:
        return [], []
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT m.*, COALESCE(u.name, '') AS author_name, COALESCE(r.name, '') AS room_name,"
            " s.words AS fts_words, s.grams AS fts_grams"
            " FROM memories AS m LEFT JOIN users AS u ON u.id = m.author_id"
            " LEFT JOIN chat_rooms AS r ON r.id = m.room_id"
            " LEFT JOIN memories_search AS s ON s.memory_id = m.id"
            f" WHERE m.id = ANY(%(ids)s::bigint[]) AND {VISIBLE}",
            {"ids": list(fused), "rooms": room_list, "owner": owner}).fetchall()
    weights = concept_weights(_concept_counts(query, docs), total)
    scored = [(_score(analyzer, query, weights, cast(Any, row), fused[row["id"]], current_room,
                      now_ms), cast(Any, row)) for row in rows]
    records = {row["id"]: memory_from_row(row, score, similarity.get(row["id"]))
               for score, row in scored}
    kept: list[tuple[float, Any]] = []
    left: list[tuple[float, Any]] = []
    for score, row in scored:
        (kept if keep is None or keep(records[row["id"]]) else left).append((score, row))
    kind = asked_kind(text)
    best = _dedupe(kind_boosted(kept, kind, limit))[:limit]
    shown = {row["norm"] for _, row in best}
    hidden = _dedupe(kind_boosted([(s, r) for s, r in left if r["norm"] not in shown], kind,
                                  limit))[:limit]
    return ([memory_from_row(row, score, similarity.get(row["id"])) for score, row in best],
            [memory_from_row(row, score, similarity.get(row["id"])) for score, row in hidden])
