"""Property: the remote backend never shows a memory outside its reply's audience.

Like ``test_confidentiality_property`` but over the Agent API's results: random search results
as the server returns them (``memory_id``, ``content``, ``metadata`` with our audience fields, the
old adapter's, a team mark, or none at all), mapped by ``remote_records.record_from_result`` and
filtered by ``remote_records.audience_filter`` with the audience our local store gives
(``units.audience_scope``, the remote service's source). Rooms of every kind in two teams,
random memberships (inside the room's team), random askers, rooms and ``only_asker``.

Stated without the audience module (the oracle): the readers of a reply in R are R's members and
the asker (``only_asker``: the asker); reader r may read
- a room memory of X when X is R, r is a member of X, or X is a public channel of r's team;
- a personal memory when r owns it;
- a team-marked memory without a room when r is in that team;
- a memory with neither room nor team: never.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mchat_actors.chat import repo
from mchat_actors.chat.remote_records import audience_filter, record_from_result
from mchat_actors.chat.schema import connect
from mchat_actors.chat.units import audience_scope

# room -> (kind, team); "" is no team (DMs) or an unmapped room
ROOMS = {"a_pub": ("channel", "A"), "a_pub2": ("channel", "A"), "a_priv": ("private", "A"),
         "b_pub": ("channel", "B"), "b_priv": ("private", "B"), "dm": ("direct", ""),
         "grp": ("group", ""), "unmapped": ("channel", "")}
TEAMS = {"A": {"u0", "u1", "u2"}, "B": {"u2", "u3"}}  # who is in which team (ground truth)
USERS = ("u0", "u1", "u2", "u3")


def _may_join(room: str, user: str) -> bool:
    team = ROOMS[room][1]
    return not team or user in TEAMS[team]


metadata = st.one_of(
    st.builds(lambda r: {"mchat_scope": "room", "mchat_room_id": r},
              st.sampled_from(sorted(ROOMS))),
    st.builds(lambda r: {"scope": "room", "room_id": r}, st.sampled_from(sorted(ROOMS))),
    st.builds(lambda u: {"mchat_scope": "personal", "mchat_owner_id": u}, st.sampled_from(USERS)),
    st.builds(lambda t: {"mchat_scope": "team", "mchat_team_id": t},
              st.sampled_from(("A", "B", ""))),
    st.just({}),
    st.builds(lambda r: {"mchat_scope": "team", "mchat_room_id": r},
              st.sampled_from(sorted(ROOMS))),
)


def _readable(reader: str, meta: dict[str, Any], room: str,
              members: dict[str, set[str]]) -> bool:
    if meta.get("mchat_scope") == "personal":
        return bool(meta.get("mchat_owner_id") == reader)
    where = meta.get("mchat_room_id") or meta.get("room_id")
    if where:
        kind, team = ROOMS[where]
        return (where == room or reader in members[where]
                or (kind == "channel" and bool(team) and reader in TEAMS[team]))
    team = meta.get("mchat_team_id")
    return meta.get("mchat_scope") == "team" and bool(team) and reader in TEAMS.get(team, set())


@settings(max_examples=200, deadline=None)
@given(joins=st.sets(st.tuples(st.sampled_from(sorted(ROOMS)), st.sampled_from(USERS))),
       metas=st.lists(metadata, min_size=1, max_size=12),
       asks=st.lists(st.tuples(st.sampled_from(sorted(ROOMS)), st.sampled_from(USERS),
                               st.booleans()), min_size=1, max_size=6))
def test_no_remote_result_outside_its_audience(
        joins: set[tuple[str, str]], metas: list[dict[str, Any]],
        asks: list[tuple[str, str, bool]]) -> None:
    conn = connect(":memory:")
    conn.execute("CREATE TABLE mchat_channel_mapping (mchat_channel_id TEXT, mchat_team_id TEXT,"
                 " agent_room_id TEXT)")  # the runtime's table, the columns the rules read
    for room, (kind, team) in ROOMS.items():
        conn.execute("INSERT INTO chat_rooms (id, name, kind, created_at) VALUES (?, ?, ?, 0)",
                     (room, room, kind))
        if room != "unmapped":
            conn.execute("INSERT INTO mchat_channel_mapping VALUES (?, ?, ?)",
                         (f"ch-{room}", team, room))
    members: dict[str, set[str]] = {room: set() for room in ROOMS}
    for room, user in joins:
        if _may_join(room, user):
            repo.add_member(conn, room, user, 0)
            members[room].add(user)
    results = [{"memory_id": f"m{i}", "content": f"메모{i:03d}", "score": 0.5, "metadata": meta}
               for i, meta in enumerate(metas)]
    records = [record_from_result(r) for r in results]
    for room, asker, only_asker in asks:
        if not _may_join(room, asker):
            continue  # nobody asks in a team's room without being in the team
        audience, infos = audience_scope(conn, room, asker, only_asker,
                                         sorted({m.room_id for m in records if m.room_id}))
        shown, hidden = audience_filter(records, audience, infos)
        assert len(shown) + len(hidden) == len(records)
        readers = {asker} if only_asker else members[room] | {asker}
        for memory in shown:
            meta = metas[int(memory.id[1:])]
            for reader in readers:
                assert _readable(reader, meta, room, members), (room, asker, only_asker, meta,
                                                                reader)
    conn.close()


def test_the_oracle_is_not_vacuous() -> None:
    """A memory of the room asked in is shown, so the property compares real results."""
    conn = connect(":memory:")
    conn.execute("INSERT INTO chat_rooms (id, name, kind, created_at) VALUES ('r', 'r', "
                 "'channel', 0)")
    record = record_from_result({"memory_id": "m0", "content": "x",
                                 "metadata": {"mchat_scope": "room", "mchat_room_id": "r"}})
    audience, infos = audience_scope(conn, "r", "u0", False, ["r"])
    assert audience_filter([record], audience, infos) == ([record], [])
