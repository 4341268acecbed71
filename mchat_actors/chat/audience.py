"""Who reads an answer, and which memories it may therefore use. Pure: no I/O, both backends.

    audience = Audience.of(kind="channel", room="r1", members={"u1", "u2"}, asker="u1")
    allowed, hidden = partition(audience, memories, rooms)

The rules (docs/architecture.md, "Answers scoped to their audience"):

- *channel* (public or private, and any room of unknown kind): the readers are whoever is or
  will be in the channel, so only the channel's own memories and team-wide ones (memories of
  public channels) may be used. Nobody's personal memories, not even the asker's.
- *direct* (a DM with the bot): the asker alone reads it: their personal memories, the rooms
  they are a member of, and team-wide memories.
- *group* (a group DM): what every member may see: the group's own memories, team-wide ones,
  and memories of rooms every member belongs to; no personal memories.
- *only_asker* (an ephemeral reply, or results sent to the asker by DM): as *direct*.

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


@attrs.frozen(kw_only=True)
class RoomInfo:
    """What the rules need to know about a memory's room."""

    kind: str  # channel | private | direct | group
    members: frozenset[str]


@attrs.frozen(kw_only=True)
class Audience:
    """The readers of one reply."""

    kind: str  # channel | private | direct | group | only_asker
    room: str
    asker: str
    readers: frozenset[str]

    @classmethod
    def of(cls, *, kind: str, room: str, members: Iterable[str], asker: str) -> Audience:
        """The audience of a reply posted in ``room`` (of ``kind``) to ``asker``'s message."""
        readers = frozenset(members) | {asker}
        return cls(kind=kind, room=room, asker=asker, readers=readers)

    @classmethod
    def only(cls, asker: str, room: str) -> Audience:
        """A reply only the asker sees (ephemeral, or sent to them by DM)."""
        return cls(kind="only_asker", room=room, asker=asker, readers=frozenset({asker}))

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
    if memory.scope != "room" or memory.room_id is None:
        return False
    if memory.room_id == audience.room:
        return True
    info = rooms.get(memory.room_id)
    if info is None:
        return False
    if info.kind == PUBLIC:
        return True  # team-wide
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


__all__ = ["DIRECT", "GROUP", "PRIVATE", "PUBLIC", "Audience", "RoomInfo", "may_use",
           "partition"]
