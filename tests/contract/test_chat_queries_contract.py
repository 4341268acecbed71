"""The queries the embedded ChatService's units run (``chat.units``' ``q``) on both backends:
the ``chat.repo`` module on SQLite, ``pg.chat_db.PgQueries`` on PostgreSQL. The functions
ported for the service (``twins``, ``room_has_current``, ``room_names``, ``admin_list``,
``search_scoped`` with its audience filter) give the same results, and the units composed of
them (``apply_edit``, ``apply_delete``, ``with_versions``, handlers' ``_remember_both`` and
``_forget_best``) leave the same memories."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import psycopg
import pytest

from mchat_actors.chat import handlers, repo, units
from mchat_actors.chat import memory_store as sqlite_memories
from mchat_actors.chat.analysis import PlainAnalyzer
from mchat_actors.chat.protocol import StoredMessage
from mchat_actors.chat.schema import connect as chat_connect
from mchat_actors.pg import memory_store as pg_memories
from mchat_actors.pg.chat_db import PgQueries
from mchat_actors.pg.schema import migrate as pg_migrate

from .helpers import BACKENDS


@attrs.frozen
class Side:
    conn: Any
    q: Any
    m: Any  # the memory module (admin_list)


@pytest.fixture(params=BACKENDS)
def side(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Side]:
    analyzer = PlainAnalyzer()
    if request.param == "sqlite":
        conn = chat_connect(str(tmp_path / "q.db"), analyzer)
        yield Side(conn, repo, sqlite_memories)
        conn.close()
        return
    with psycopg.connect(request.getfixturevalue("pg_url"), autocommit=True) as conn:
        pg_migrate(conn)
        yield Side(conn, PgQueries(analyzer), pg_memories)


def _request(room: str, user: str, post: str) -> handlers.Request:
    message = StoredMessage(id="1", room_id=room, user_id=user,  # type: ignore[arg-type]
                            content="", mchat_post_id=post, created_at_ms=0)
    return handlers.Request(room=room, user=user, message=message,  # type: ignore[arg-type]
                            post_id=post, permalink=None, react=None)


def test_the_ported_queries_agree(side: Side) -> None:
    c, q = side.conn, side.q
    kim = q.create_user(c, "kim", "kim@example.com", 0).id
    lee = q.create_user(c, "lee", "lee@example.com", 0).id
    open_ = q.create_room(c, "quality", "channel", 0).id
    secret = q.create_room(c, "secret", "private", 0).id
    for room in (open_, secret):
        q.add_member(c, room, kim, 0)
    q.add_member(c, open_, lee, 0)
    assert q.room_names(c, [open_, secret, "nope"]) == {open_: "quality", secret: "secret"}
    (room_copy, outcome, _), (personal, _, _) = handlers._remember_both(  # noqa: SLF001
        c, "X부품 불량률 12%", _request(secret, kim, "p1"), 10, q=q)
    assert outcome == "added" and personal.scope == "personal"
    row = q.get_memory(c, int(room_copy.id[1:]))
    assert [t["id"] for t in q.twins(c, row, kim)] == [int(personal.id[1:])]
    assert q.twins(c, row, lee) == []
    assert q.room_has_current(c, secret, row["norm"], "")
    assert q.room_has_current(c, secret, "other text", row["subject"]) == bool(row["subject"])
    assert not q.room_has_current(c, open_, row["norm"], row["subject"])
    # the audience filter: lee, in the open channel, neither sees nor hears of the secret
    found, hidden = units.search_for_audience(c, open_, lee, "X부품 불량률", 20, 10, q=q)
    assert found == [] and hidden == []
    found, hidden = units.search_for_audience(c, open_, kim, "X부품 불량률", 20, 10, q=q)
    assert found == []  # kim's own copy is personal: lee reads a reply in the open channel
    assert [m.content for m in hidden] == ["X부품 불량률 12%"]
    found, _ = units.search_for_audience(c, secret, kim, "X부품 불량률", 20, 10, True, q=q)
    assert [m.content for m in found] == ["X부품 불량률 12%"]
    # an edited /remember post: a new version (old kept), then deleted: retracted
    assert units.apply_edit(c, "p1", "/remember X부품 불량률 9%", 30, extract=False, q=q) \
        is None  # no such message stored: nothing happens
    q.insert_message(c, room=secret, user=kim, content="/remember X부품 불량률 12%",
                     role="user", post_id="p1", root_id=None, created_at_ms=5)
    units.apply_edit(c, "p1", "/remember X부품 불량률 9%", 30, extract=False, q=q)
    found, _ = units.search_for_audience(c, secret, kim, "X부품 불량률", 40, 10, q=q)
    found, chains = units.with_versions(c, found, True, q=q)
    assert [(m.content, m.previous_content) for m in found] == \
        [("X부품 불량률 9%", "X부품 불량률 12%")]
    assert [m.content for m in chains[found[0].id]] == ["X부품 불량률 12%", "X부품 불량률 9%"]
    units.apply_delete(c, "p1", 50, q=q)
    assert units.search_for_audience(c, secret, kim, "X부품 불량률", 60, 10, q=q) == ([], [])
    assert [r["content"] for r in side.m.admin_list(c, query="불량률 9", state="retracted",
                                                    limit=10)] == ["X부품 불량률 9%"] * 2
    assert side.m.admin_list(c, query="", state="current", limit=10) == []
    # /forget by words: the best match and its twin, only among the asker's rooms
    handlers._remember_both(c, "코드명 블루버드", _request(secret, kim, "p2"), 70, q=q)  # noqa: SLF001
    assert handlers._forget_best(c, _request(open_, lee, "f1"), "코드명 블루버드", 80,  # noqa: SLF001
                                 q=q) is None
    gone = handlers._forget_best(c, _request(secret, kim, "f2"), "코드명 블루버드", 80,  # noqa: SLF001
                                 q=q)
    assert gone is not None and gone.content == "코드명 블루버드"
    assert len(side.m.admin_list(c, query="블루버드", state="forgotten", limit=10)) == 2
