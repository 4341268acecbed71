"""Property: with several Mattermost teams, no embedded answer or search result shows a memory
outside its audience; in particular a public channel is team-wide in its own team only.

As ``test_confidentiality_property``, with rooms in two teams read from the runtime's channel
mapping, memberships inside each room's team, joins and leaves between steps. The oracle, stated
without the audience module: reader r may read a room memory of X when X is the room asked in,
r is a member of X now, or X is a public channel of a team r is in; a personal memory when r
owns it.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mchat_actors.chat import repo
from mchat_actors.chat.answer import builtin_answer
from mchat_actors.chat.schema import connect
from mchat_actors.chat.units import search_for_audience

ROOMS = {"a_pub": ("channel", "A"), "a_priv": ("private", "A"), "b_pub": ("channel", "B"),
         "b_pub2": ("channel", "B"), "b_priv": ("private", "B"), "dm": ("direct", ""),
         "grp": ("group", ""), "unmapped": ("channel", "")}
TEAMS = {"A": {"u0", "u1", "u2"}, "B": {"u2", "u3"}}
USERS = ("u0", "u1", "u2", "u3")
WORDS = ("배포", "일정", "불량률", "도면")
_MARK = re.compile(r"메모(\d{3})")

remember = st.tuples(st.just("remember"), st.sampled_from(sorted(ROOMS)), st.sampled_from(USERS),
                     st.lists(st.sampled_from(WORDS), min_size=1, max_size=2).map(" ".join),
                     st.booleans())
membership = st.tuples(st.sampled_from(("join", "leave")), st.sampled_from(sorted(ROOMS)),
                       st.sampled_from(USERS))
question = st.tuples(st.just("ask"), st.sampled_from(sorted(ROOMS)), st.sampled_from(USERS),
                     st.lists(st.sampled_from(WORDS), min_size=1, max_size=2).map(" ".join),
                     st.booleans())


def _in_team(room: str, user: str) -> bool:
    team = ROOMS[room][1]
    return not team or user in TEAMS[team]


# team B's public memory asked about in team A's public channel by a member of both teams
_CROSS_TEAM = ({("a_pub", "u1"), ("a_pub", "u2"), ("b_pub", "u2")},
               [("remember", "b_pub", "u2", "도면", False), ("ask", "a_pub", "u2", "도면", False)])


@settings(max_examples=150, deadline=None)
@example(*_CROSS_TEAM)
@given(initial=st.sets(st.tuples(st.sampled_from(sorted(ROOMS)), st.sampled_from(USERS))),
       steps=st.lists(st.one_of(remember, membership, question), min_size=1, max_size=25))
def test_no_reply_shows_another_teams_or_a_private_memory(
        initial: set[tuple[str, str]], steps: list[tuple[object, ...]]) -> None:
    conn = connect(":memory:")
    conn.execute("CREATE TABLE mchat_channel_mapping (mchat_channel_id TEXT, mchat_team_id TEXT,"
                 " agent_room_id TEXT)")  # the runtime's table, the columns the rules read
    for room, (kind, team) in ROOMS.items():
        conn.execute("INSERT INTO chat_rooms (id, name, kind, created_at) VALUES (?, ?, ?, 0)",
                     (room, room, kind))
        if room != "unmapped":
            conn.execute("INSERT INTO mchat_channel_mapping VALUES (?, ?, ?)",
                         (f"ch-{room}", team, room))
    check_team_steps(conn, repo, initial, steps)
    conn.close()


def check_team_steps(conn: Any, q: Any, initial: set[tuple[str, str]],
                     steps: list[tuple[object, ...]]) -> None:
    """Run ``steps`` on ``conn`` (rooms ``ROOMS`` created and mapped to their teams) with the
    queries ``q`` (``chat.repo`` on SQLite, ``pg.chat_db.PgQueries``); check every reply."""
    for room, user in initial:
        if _in_team(room, user):
            q.add_member(conn, room, user, 0)
    where: dict[int, tuple[str, str, str | None]] = {}
    for n, step in enumerate(steps):
        kind, room, user = str(step[0]), str(step[1]), str(step[2])
        if not _in_team(room, user):
            continue  # Mattermost lets nobody into a team's channel from outside the team
        if kind == "remember":
            personal = bool(step[4])
            marker = len(where)
            q.save_memory(conn, f"{step[3]} 메모{marker:03d}",
                          scope="personal" if personal else "room", kind="remember",
                          room=room, owner=user if personal else None, author=user,
                          source_post_id=None, permalink=None, now_ms=n)
            where[marker] = ("personal" if personal else "room", room,
                             user if personal else None)
        elif kind == "join":
            q.add_member(conn, room, user, n)
        elif kind == "leave":
            q.remove_member(conn, room, user)
        else:
            search = bool(step[4])
            found, _ = search_for_audience(conn, room, user, str(step[3]), n, 50, search,
                                           q=q)
            shown = "\n".join(m.content for m in found)
            if not search:
                shown += "\n" + builtin_answer(str(step[3]), found)
            readers = {user} if search else set(q.room_members(conn, room)) | {user}
            for mark in _MARK.findall(shown):
                scope, memory_room, owner = where[int(mark)]
                for reader in readers:
                    if scope == "personal":
                        assert owner == reader, (step, mark, reader)
                        continue
                    memory_kind, team = ROOMS[memory_room]
                    assert (memory_room == room
                            or reader in q.room_members(conn, memory_room)
                            or (memory_kind == "channel" and bool(team)
                                and reader in TEAMS[team])), (step, mark, reader)


def test_a_public_channel_is_team_wide_in_its_own_team() -> None:
    """The positive side, so the property is not vacuous: team B's public memory answers in
    another public channel of team B, not in team A's (before: in both)."""
    conn = connect(":memory:")
    conn.execute("CREATE TABLE mchat_channel_mapping (mchat_channel_id TEXT, mchat_team_id TEXT,"
                 " agent_room_id TEXT)")
    for room, (kind, team) in ROOMS.items():
        conn.execute("INSERT INTO chat_rooms (id, name, kind, created_at) VALUES (?, ?, ?, 0)",
                     (room, room, kind))
        conn.execute("INSERT INTO mchat_channel_mapping VALUES (?, ?, ?)", (room, team, room))
    for room, user in (("a_pub", "u1"), ("a_pub", "u2"), ("b_pub", "u2"), ("b_pub2", "u3"),
                       ("b_pub2", "u2")):
        repo.add_member(conn, room, user, 0)
    repo.save_memory(conn, "도면 번호는 DW-7781", scope="room", kind="remember", room="b_pub",
                     owner=None, author="u2", source_post_id=None, permalink=None, now_ms=1)
    found, _ = search_for_audience(conn, "b_pub2", "u3", "도면 번호", 2, 10)
    assert [m.content for m in found] == ["도면 번호는 DW-7781"]
    found, hidden = search_for_audience(conn, "a_pub", "u2", "도면 번호", 2, 10)
    assert found == [] and [m.content for m in hidden] == ["도면 번호는 DW-7781"]
