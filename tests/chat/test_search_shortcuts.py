"""What the search does to stay fast at 100 000 memories, and that it changes no answer:
cached document counts expire with every index write (also one made on another connection),
the visibility SQL still guards what the FTS index returns, and a question's analysis is
cached per analyzer options."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mchat_actors.chat import repo
from mchat_actors.chat.morph import KiwiAnalyzer
from mchat_actors.chat.schema import connect
from mchat_actors.chat.search import (
    _document_counts,
    index_memory,
    search_memories,
    unindex_memory,
)


def _save(conn: sqlite3.Connection, text: str, room: str = "r1") -> int:
    memory, _ = repo.save_memory(conn, text, scope="room", kind="remember", room=room, owner=None,
                              author="u1", source_post_id=None, permalink=None, now_ms=1)
    return int(memory.id.lstrip("m"))


def test_cached_counts_follow_writes_on_another_connection(tmp_path: Path,
                                                           kiwi: KiwiAnalyzer) -> None:
    """The service reads on its own connection while the storage actor writes on another:
    a count read before a write is never served after it."""
    path = str(tmp_path / "chat.db")
    reader, writer = connect(path, kiwi), connect(path, kiwi)
    query = kiwi.analyze_query("금형 세척 주기")
    assert _document_counts(reader, query)[0]["금형"] == 0
    memory_id = _save(writer, "2번 금형 세척은 매주 금요일")
    docs, total = _document_counts(reader, query)
    assert docs["금형"] == 1 and total >= 1
    assert _document_counts(reader, query)[0]["금형"] == 1  # served from the cache
    unindex_memory(writer, memory_id)
    assert _document_counts(reader, query)[0]["금형"] == 0
    index_memory(writer, memory_id, "2번 금형 세척은 매주 금요일", scope="room", room="r1",
                 owner=None)
    assert _document_counts(reader, query)[0]["금형"] == 1


def test_a_word_first_known_after_a_search_is_found_exactly(tmp_path: Path,
                                                            kiwi: KiwiAnalyzer) -> None:
    """Asked before any memory holds 세척, the cache said 0 (typo expansions); once it is
    remembered, the same question finds it."""
    path = str(tmp_path / "chat.db")
    reader, writer = connect(path, kiwi), connect(path, kiwi)
    args = {"rooms": ["r1"], "owner": "u1", "current_room": "r1", "now_ms": 10}
    assert search_memories(reader, "금형 세척 언제야?", **args) == []  # type: ignore[arg-type]
    _save(writer, "2번 금형 세척은 매주 금요일")
    found = search_memories(reader, "금형 세척 언제야?", **args)  # type: ignore[arg-type]
    assert [m.content for m in found] == ["2번 금형 세척은 매주 금요일"]


def test_the_visibility_sql_guards_a_stale_index_row(kiwi: KiwiAnalyzer) -> None:
    """An index row whose ``vis`` token says room r1 while the memory is in the secret room
    (a stale or tampered index) is never returned to a reader of r1."""
    conn = connect(":memory:", kiwi)
    _save(conn, "X부품 불량률은 12%입니다")
    secret = _save(conn, "X부품 불량률 비밀 수치 99%", room="secret")
    index_memory(conn, secret, "X부품 불량률 비밀 수치 99%", scope="room", room="r1",
                 owner=None)  # the index now lies: it says r1
    found = search_memories(conn, "X부품 불량률", rooms=["r1"], owner="u1", current_room="r1",
                            now_ms=10)
    assert [m.content for m in found] == ["X부품 불량률은 12%입니다"]


def test_query_analysis_is_cached_per_options(kiwi: KiwiAnalyzer) -> None:
    first = kiwi.analyze_query("결함률 얼마야?")
    assert kiwi.analyze_query("결함률 얼마야?") is first
    plain = kiwi.with_options(expand=False)
    other = plain.analyze_query("결함률 얼마야?")
    assert other is not first
    assert all(not c.expansions or all(e.source == "analysis" for e in c.expansions)
               for c in other.concepts)
    assert any(e.source in ("glossary", "kiwi") for c in first.concepts for e in c.expansions)
