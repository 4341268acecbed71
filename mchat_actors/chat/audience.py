"""Who reads an answer, and which memories it may therefore use. Pure: no I/O, both backends.

    audience = Audience.of(kind="channel", room="r1", members={"u1", "u2"}, asker="u1")
    allowed, hidden = partition(audience, memories, rooms)

The rules (docs/architecture.md, "Answers scoped to their audience"):

- *channel* (public or private, and any room of unknown kind): the readers are whoever is or
  will be in the channel, so only the channel's own memories and team-wide ones may be used.
  Nobody's personal memories, not even the asker's.
- *direct* (a DM with the bot): the asker alone reads it: their personal memories, the rooms
  they are a member of, and team-wide memories.
- *group* (a group DM): what every member may see: the group's own memories, team-wide ones,
  and memories of rooms every member belongs to; no personal memories.
- *only_asker* (an ephemeral reply, or results sent to the asker by DM): as *direct*.

*Team-wide* means: a memory of a public channel of a team every reader belongs to
(``Audience.teams``: a channel's own team; for a DM the asker's teams; for a group DM the teams
all members share), or a memory without a room marked ``scope="team"`` for such a team (the
remote backend's Agent API memories). A room whose team is unknown is nobody's team: its
memories are never team-wide, and a reply in it sees no other room's public memories. A memory
with neither room nor team (written through the Agent API by someone else) is visible nowhere.

A memory outside the audience is never quoted nor sent to a model; ``partition`` counts them so
the answer can say that more private results exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

import attrs

from .protocol import MemoryRecord

M = TypeVar("M", bound=MemoryRecord)

PUBLIC = "channel"
PRIVATE = "private"
DIRECT = "direct"
GROUP = "group"
TEAM = "team"  # the scope of a room-less memory meant for a whole team (remote backend)


@attrs.frozen(kw_only=True)
class RoomInfo:
    """What the rules need to know about a memory's room."""

    kind: str  # channel | private | direct | group
    members: frozenset[str]
    team: str = ""  # the Mattermost team id of the channel; "" unknown (or a DM)


@attrs.frozen(kw_only=True)
class Audience:
    """The readers of one reply."""

    kind: str  # channel | private | direct | group | only_asker
    room: str
    asker: str
    readers: frozenset[str]
    teams: frozenset[str] = frozenset()  # the teams every reader belongs to (known ones)

    @classmethod
    def of(cls, *, kind: str, room: str, members: Iterable[str], asker: str,
           teams: Iterable[str] = ()) -> Audience:
        """The audience of a reply posted in ``room`` (of ``kind``) to ``asker``'s message;
        ``teams``: the teams all its readers belong to (a channel: its own team)."""
        readers = frozenset(members) | {asker}
        return cls(kind=kind, room=room, asker=asker, readers=readers,
                   teams=frozenset(t for t in teams if t))

    @classmethod
    def only(cls, asker: str, room: str, teams: Iterable[str] = ()) -> Audience:
        """A reply only the asker sees (ephemeral, or sent to them by DM); ``teams``: the
        asker's."""
        return cls(kind="only_asker", room=room, asker=asker, readers=frozenset({asker}),
                   teams=frozenset(t for t in teams if t))

    @property
    def private_to_asker(self) -> bool:
        return self.kind in (DIRECT, "only_asker") and self.readers == {self.asker}


def may_use(audience: Audience, memory: MemoryRecord,
            rooms: Mapping[str, RoomInfo]) -> bool:
    """Whether every reader of ``audience`` may see ``memory``.

    Args:
        rooms: kind and current members of the rooms the memories come from.
    """
    if memory.scope == "personal":
        return audience.private_to_asker and memory.owner_id == audience.asker
    if memory.scope == TEAM and memory.room_id is None:
        return bool(memory.team_id) and memory.team_id in audience.teams
    if memory.scope != "room" or memory.room_id is None:
        return False
    if memory.room_id == audience.room:
        return True
    info = rooms.get(memory.room_id)
    if info is None:
        return False
    if info.kind == PUBLIC and info.team and info.team in audience.teams:
        return True  # team-wide: a public channel of a team every reader is in
    if audience.private_to_asker:
        return audience.asker in info.members
    if audience.kind == GROUP:
        return audience.readers <= info.members
    return False


def partition(audience: Audience, memories: Sequence[M],
              rooms: Mapping[str, RoomInfo]) -> tuple[list[M], int]:
    """``(memories the audience may see, in order; how many others were left out)``."""
    allowed = [m for m in memories if may_use(audience, m, rooms)]
    return allowed, len(memories) - len(allowed)


__all__ = ["DIRECT", "GROUP", "PRIVATE", "PUBLIC", "TEAM", "Audience", "RoomInfo", "may_use",
           "partition"]
