"""The embedded ChatService's units of work: each runs in its database thread, in one
transaction (``EmbeddedChatService.db``). SQL stays in ``repo``/``memory_store``/``search``; these
compose them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs

from ..errors import ChatServiceRejected
from . import repo
from .audience import DIRECT, GROUP, Audience, RoomInfo, may_use
from .commands import Remember, parse_command, strip_mentions
from .protocol import MemoryRecord, NewMessage, StoredMessage
from .search import memory_from_row

# The queries a unit runs: the ``chat.repo`` module on SQLite, a ``pg.chat_db.PgQueries``
# on PostgreSQL (the same names and calls: one implementation of the rules on both).
Queries = Any


def store_user_message(conn: Any, room: str, user: str, content: str,
                        post_id: str | None, root_id: str | None,
                        created_ms: int, permalink: str | None = None, *,
                        q: Queries = repo) -> StoredMessage:
    if not q.room_exists(conn, room):
        raise ChatServiceRejected(f"unknown room {room}")
    if not q.user_exists(conn, user):
        raise ChatServiceRejected(f"unknown user {user}")
    stored: StoredMessage = q.insert_message(
        conn, room=room, user=user, content=content, role="user", post_id=post_id,
        root_id=root_id, created_at_ms=created_ms, permalink=permalink)
    return stored


def store_user_messages(conn: sqlite3.Connection, messages: Sequence[NewMessage]
                        ) -> list[StoredMessage]:
    """``store_user_message`` for each of ``messages``, in order (plain posts of a lane), in
    fewer statements: each room and user is checked once, and a message is one insert that
    returns its row (a post id stored before: that stored message, ``is_new=False``).

    Raises:
        ChatServiceRejected: a room or user is unknown (nothing is stored: the caller's
            request fails as a whole).
    """
    for room in dict.fromkeys(m.room for m in messages):
        if not repo.room_exists(conn, room):
            raise ChatServiceRejected(f"unknown room {room}")
    for user in dict.fromkeys(m.user for m in messages):
        if not repo.user_exists(conn, user):
            raise ChatServiceRejected(f"unknown user {user}")
    return repo.insert_user_messages(conn, messages)


def search_for_audience(conn: Any, room: str, user: str, query: str,
                         now_ms: int, limit: int, only_asker: bool = False,
                         dense: tuple[list[float], str] | None = None, *, q: Queries = repo,
                         ) -> tuple[list[MemoryRecord], list[MemoryRecord]]:
    """Search what ``user`` may see; keep what every reader of a reply in ``room`` may see.
    ``q``: the queries (``chat.repo`` on SQLite, ``pg.chat_db.PgQueries``)."""
    audience = audience_for(conn, room, user, only_asker, q=q)
    rooms = q.visible_rooms(conn, user, room)
    infos = _RoomInfos(conn, q)  # only the rooms of memories found are looked up
    found: tuple[list[MemoryRecord], list[MemoryRecord]] = q.search_scoped(
        conn, query, rooms=rooms, owner=user, current_room=room, now_ms=now_ms, limit=limit,
        keep=lambda m: may_use(audience, m, infos), dense=dense)
    return found


def audience_for(conn: Any, room: str, user: str, only_asker: bool = False, *,
                 q: Queries = repo) -> Audience:
    """The readers of a reply in ``room`` to ``user`` (or of one only ``user`` sees), with the
    teams they all belong to (``chat.audience``: what "team-wide" means). ``q``: the queries'
    module for ``conn`` (``chat.repo`` on SQLite, ``pg.chat_repo`` on PostgreSQL)."""
    if only_asker:
        return Audience.only(user, room, q.user_teams(conn, user) | {q.room_team(conn, room)})
    kind: str = q.room_kind(conn, room)
    members: frozenset[str] = q.room_members(conn, room)
    teams: frozenset[str]
    if kind in (DIRECT, GROUP):  # a DM's readers may be more than the asker: all must be in it
        teams = frozenset.intersection(*[q.user_teams(conn, m) for m in members | {user}])
    else:
        teams = frozenset({q.room_team(conn, room)})
    return Audience.of(kind=kind, room=room, members=members, asker=user, teams=teams)


def audience_scope(conn: Any, room: str, user: str, only_asker: bool,
                   memory_rooms: list[str], *, q: Queries = repo
                   ) -> tuple[Audience, dict[str, RoomInfo]]:
    """The reply's audience and what the rules need to know of ``memory_rooms`` (for a
    ChatService whose memories live elsewhere: the remote one)."""
    infos: dict[str, RoomInfo] = q.room_infos(conn, memory_rooms)
    return audience_for(conn, room, user, only_asker, q=q), infos


class _RoomInfos(Mapping[str, RoomInfo]):
    """Kind and members of a room, read when first asked for (in the database thread)."""

    def __init__(self, conn: Any, q: Queries) -> None:
        self._conn = conn
        self._q = q
        self._cache: dict[str, RoomInfo | None] = {}

    def __getitem__(self, room: str) -> RoomInfo:
        if room not in self._cache:
            self._cache[room] = self._q.room_infos(self._conn, [room]).get(room)
        info = self._cache[room]
        if info is None:
            raise KeyError(room)
        return info

    def __iter__(self) -> Iterator[str]:
        return iter([r for r, i in self._cache.items() if i is not None])

    def __len__(self) -> int:
        return sum(i is not None for i in self._cache.values())


def with_versions(conn: Any, found: list[MemoryRecord], history: bool, *, q: Queries = repo
                  ) -> tuple[list[MemoryRecord], dict[str, list[MemoryRecord]]]:
    """Each memory with the version it replaced; with ``history`` every version, by id."""
    out, chains = [], {}
    for memory in found:
        previous = q.previous_version(conn, int(memory.id[1:]))
        if previous is not None:
            memory = attrs.evolve(memory, previous_content=previous["content"])
        out.append(memory)
        if history:  # forgotten and retracted versions never reach an answer
            chains[memory.id] = [memory_from_row(r) for r in q.versions(
                conn, int(memory.id[1:])) if r["forgotten_at"] is None
                and r["deleted_at"] is None]
    return out, chains


def apply_edit(conn: Any, post_id: str, content: str, now_ms: int, *,
               extract: bool, q: Queries = repo) -> tuple[str, int] | None:
    """Edit the message and its memories; the (room, message id) to re-extract, if any."""
    row = q.message_by_post(conn, post_id)
    if row is None or row["deleted_at"] is not None:
        return None
    q.edit_message(conn, post_id, content, now_ms)
    command = parse_command(strip_mentions(content))
    for memory in q.memories_from_post(conn, post_id):
        if memory["kind"] == "remember" and isinstance(command, Remember) and command.text:
            # a new version of what the post says; the old one stays in the history
            saved, _ = q.save_memory(
                conn, command.text, scope=memory["scope"], kind="remember",
                room=memory["room_id"], owner=memory["owner_id"], author=memory["author_id"],
                source_post_id=post_id, permalink=memory["permalink"], now_ms=now_ms,
                supersedes=memory["id"])
            if saved.id != f"m{memory['id']}" and q.get_memory(conn, memory["id"]):
                # the edit repeats another current memory: this post's version goes
                q.retract_memory(conn, memory["id"], now_ms, reason=f"post {post_id} edited")
        elif memory["kind"] != "summary":
            q.retract_memory(conn, memory["id"], now_ms, reason=f"post {post_id} edited")
    if extract and command is None and row["role"] == "user":
        return row["room_id"], row["id"]
    return None


def apply_delete(conn: Any, post_id: str, now_ms: int, *, q: Queries = repo) -> None:
    q.delete_message(conn, post_id, now_ms)
    for memory in q.memories_from_post(conn, post_id):
        q.retract_memory(conn, memory["id"], now_ms, reason=f"post {post_id} deleted")


def save_extracted(conn: Any, room: str, rows: list[Any],
                   found: list[tuple[str, int]], now_ms: int, *, q: Queries = repo
                   ) -> list[MemoryRecord]:
    saved = []
    for content, index in found:
        source = rows[index]
        memory, _ = q.save_memory(
            conn, content, scope="room", kind="extracted", room=room, owner=None,
            author=source["user_id"], source_post_id=source["mchat_post_id"],
            permalink=source["permalink"],
            now_ms=now_ms)
        saved.append(memory)
    return saved


__all__ = ["apply_delete", "apply_edit", "audience_for", "audience_scope", "save_extracted",
           "search_for_audience",
           "store_user_message", "with_versions"]
