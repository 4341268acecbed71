"""Korean full-text search on PostgreSQL (``pg.search``) against the SQLite path, on the
meaning eval's memories and questions (tests/chat/meaning_cases.py).

The same memories (the SQLite rows, copied with their ids) are searched on both backends with
the same analyzer (Kiwi with the glossary, the service's default) and the same audience (the
rooms ``repo.visible_rooms`` gives the asker). Printed: recall@1 / recall@3 per category on
each backend and how often both put the same memory first. Asserted: nothing outside the
audience is ever returned, and PostgreSQL's recall@1 is no lower than SQLite's by more than
one question in any category. The questions measure; nothing in either search is tuned
against them.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mchat_actors.chat import repo
from mchat_actors.chat import schema as chat_schema
from mchat_actors.chat import search as lite_search
from mchat_actors.chat.analysis import PlainAnalyzer
from mchat_actors.chat.morph import KiwiAnalyzer
from mchat_actors.pg import search as pg_search
from mchat_actors.pg.schema import migrate

from ..chat.meaning_cases import CASES, CATEGORIES
from ..chat.test_retrieval_eval import CASES as MEMORIES
from ..chat.test_retrieval_eval import DISTRACTORS, noise

pytestmark = pytest.mark.pg

NOW = 1_760_000_000_000
Conn = psycopg.Connection[tuple[Any, ...]]
_COPIED = ("users", "chat_rooms", "room_members", "memories")


@pytest.fixture
def pg(pg_url: str) -> Iterator[Conn]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        migrate(conn)
        yield conn


def _copy(lite: sqlite3.Connection, pg: Conn) -> None:
    """The SQLite rows of the chat tables, ids and all, into PostgreSQL."""
    with pg.transaction():
        for table in _COPIED:
            cur = lite.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
            if rows:
                cols = ", ".join(names)
                marks = ", ".join(["%s"] * len(names))
                pg.cursor().executemany(
                    f"INSERT INTO {table} ({cols}) VALUES ({marks})".encode(),
                    [tuple(r) for r in rows])


def _world(path: Path, analyzer: Any) -> tuple[sqlite3.Connection, dict[str, str]]:
    conn = chat_schema.connect(str(path), analyzer)
    kim = repo.create_user(conn, "kim", "kim@example.com", NOW)
    lee = repo.create_user(conn, "lee", "lee@example.com", NOW)
    quality = repo.create_room(conn, "quality", "channel", NOW)
    other = repo.create_room(conn, "not-kims", "private", NOW)
    dm = repo.create_room(conn, "kim-dm", "direct", NOW)
    for room, user in ((quality, kim), (quality, lee), (other, lee), (dm, kim)):
        repo.add_member(conn, room.id, user.id, NOW)
    ids = {"kim": kim.id, "lee": lee.id, "quality": quality.id, "other": other.id, "dm": dm.id}
    return conn, ids


def _put(conn: sqlite3.Connection, text: str, room: str, *, scope: str = "room",
         owner: str | None = None, author: str = "") -> None:
    repo.save_memory(conn, text, scope=scope, kind="remember", room=room, owner=owner,
                     author=author or None, source_post_id=None, permalink=None, now_ms=NOW)


def test_meaning_eval_on_both_backends(tmp_path: Path, kiwi: KiwiAnalyzer, pg: Conn,
                                       capsys: Any) -> None:
    lite, ids = _world(tmp_path / "eval.db", kiwi)
    for memory, _ in MEMORIES:
        _put(lite, memory, ids["quality"], author=ids["lee"])
        _put(lite, f"{memory} (비공개 사본 99)", ids["other"], author=ids["lee"])
    for text in DISTRACTORS + noise(80):
        _put(lite, text, ids["quality"], author=ids["lee"])
    _copy(lite, pg)
    with pg.transaction():
        indexed = pg_search.reindex(pg, kiwi)
    assert indexed == lite.execute("SELECT count(*) FROM memories_fts").fetchone()[0]
    rooms = repo.visible_rooms(lite, ids["kim"], ids["dm"])
    counts: dict[str, dict[str, list[int]]] = {b: defaultdict(lambda: [0, 0, 0])
                                               for b in ("sqlite", "postgresql")}
    same_first = 0
    differ: list[str] = []
    for category, memory, question in CASES:
        if memory is None:  # a question nothing answers: for the answerer (tests/chat)
            continue
        found = {
            "sqlite": [m.content for m in lite_search.search_memories(
                lite, question, rooms=rooms, owner=ids["kim"], current_room=ids["dm"],
                now_ms=NOW, limit=3)],
            "postgresql": [m.content for m in pg_search.search_memories(
                pg, kiwi, question, rooms=rooms, owner=ids["kim"], current_room=ids["dm"],
                now_ms=NOW, limit=3)],
        }
        for backend, contents in found.items():
            assert not any("사본" in c for c in contents), (backend, question)
            counts[backend][category][0] += 1
            counts[backend][category][1] += bool(contents) and contents[0] == memory
            counts[backend][category][2] += memory in contents
        first = [f[0] if f else None for f in found.values()]
        same_first += first[0] == first[1]
        if first[0] != first[1]:
            differ.append(f"[{category}] {question!r}: sqlite {first[0]!r}, pg {first[1]!r}")
    lite.close()
    with capsys.disabled():
        asked = sum(memory is not None for _, memory, _ in CASES)
        print(f"\nmeaning eval on both backends: {asked} questions, "
              "recall@1 / recall@3 per category (kiwi+synonyms)")
        print(f"  {'backend':<12}" + "".join(f"{c:>20}" for c in CATEGORIES))
        for backend, per in counts.items():
            cells = "".join(f"{per[c][1] / per[c][0]:>11.0%} /{per[c][2] / per[c][0]:>5.0%}  "
                            for c in CATEGORIES)
            print(f"  {backend:<12}{cells}")
        print(f"  same memory first on both: {same_first}/{asked}")
        for line in differ:
            print(f"  first differs: {line}")
    for category in CATEGORIES:
        lite_at1 = counts["sqlite"][category][1]
        pg_at1 = counts["postgresql"][category][1]
        assert pg_at1 >= lite_at1 - 1, (category, pg_at1, lite_at1)


def test_audience_is_enforced_and_odd_text_is_only_text(tmp_path: Path, pg: Conn) -> None:
    analyzer = PlainAnalyzer()
    lite, ids = _world(tmp_path / "aud.db", analyzer)
    _put(lite, "X부품 불량률 12%", ids["other"], author=ids["lee"])  # lee's private room
    _put(lite, "X부품 불량률 9% (개인)", ids["quality"], scope="personal", owner=ids["lee"])
    _put(lite, "X부품 불량률 7%", ids["quality"], author=ids["lee"])
    _copy(lite, pg)
    with pg.transaction():
        pg_search.reindex(pg, analyzer)
    rooms = repo.visible_rooms(lite, ids["kim"], ids["dm"])
    found = pg_search.search_memories(pg, analyzer, "X부품 불량률", rooms=rooms,
                                      owner=ids["kim"], current_room=ids["dm"], now_ms=NOW)
    assert [m.content for m in found] == ["X부품 불량률 7%"]
    lee = pg_search.search_memories(pg, analyzer, "X부품 불량률", rooms=[ids["other"]],
                                    owner=ids["lee"], current_room=ids["other"], now_ms=NOW)
    assert {m.content for m in lee} == {"X부품 불량률 12%", "X부품 불량률 9% (개인)"}
    for odd in ("x' | '불량", "불량\\' & !'x", "'':*", "(불량 | x) & !y", "!!!", "'"):
        pg_search.search_memories(pg, analyzer, odd, rooms=rooms, owner=ids["kim"],
                                  current_room=ids["dm"], now_ms=NOW)  # no SQL error
    quoted = pg_search.search_memories(pg, analyzer, "불량률' | '12", rooms=[ids["quality"]],
                                       owner=None, current_room=None, now_ms=NOW)
    assert all(m.room_id == ids["quality"] for m in quoted)
    assert pg_search.search_memories(pg, analyzer, "불량률", rooms=[], owner=None,
                                     current_room=None, now_ms=NOW) == []
    lite.close()


def test_a_confused_vowel_in_a_words_first_syllable_is_found_as_a_typo(
        tmp_path: Path, kiwi: KiwiAnalyzer, pg: Conn) -> None:
    """As on SQLite (tests/chat/test_chat_search.py): 왜주 finds 외주, whose first syllable
    differs by a vowel people confuse (ㅙ/ㅚ), ahead of a newer memory sharing the other words."""
    lite, ids = _world(tmp_path / "typo.db", kiwi)
    meant = "외주 검사 결과 이상 없음"
    for i, text in enumerate([meant, "출하 검사 결과 양호", "설비 점검 결과 보고",
                              "수입 검사 결과 보고", "금형 점검 결과 양호"]):
        repo.save_memory(lite, text, scope="room", kind="remember", room=ids["quality"],
                         owner=None, author=ids["lee"], source_post_id=None, permalink=None,
                         now_ms=NOW + i)
    _copy(lite, pg)
    with pg.transaction():
        pg_search.reindex(pg, kiwi)
    found = pg_search.search_memories(pg, kiwi, "왜주 검사 결과 어때?", rooms=[ids["quality"]],
                                      owner=ids["kim"], current_room=ids["quality"],
                                      now_ms=NOW + 10)
    assert found and found[0].content == meant
    lite.close()
