"""Property: a search never returns a memory the asker may not see."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mchat_actors.chat import repo
from mchat_actors.chat.schema import connect
from mchat_actors.chat.search import search_memories

ROOMS = ("r0", "r1", "r2", "r3")
USERS = ("u0", "u1", "u2")
WORDS = ("불량률", "배포", "회의", "X부품", "Acme", "supplier", "일정", "테스트", "결과", "12%")

memory_specs = st.tuples(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
    st.sampled_from(("room", "personal")),
    st.sampled_from(ROOMS),
    st.sampled_from(USERS),
)


@given(
    members=st.sets(st.tuples(st.sampled_from(ROOMS), st.sampled_from(USERS))),
    memories=st.lists(memory_specs, max_size=25),
    asker=st.sampled_from(USERS),
    room=st.sampled_from(ROOMS),
    query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
)
def test_search_returns_only_memories_of_joined_rooms_and_own_personal_ones(
    members: set[tuple[str, str]], memories: list[tuple[str, str, str, str]], asker: str,
    room: str, query: str, shared_analyzer: Any,
) -> None:
    """Results are room memories of the room asked in or a joined room, or the asker's own."""
    conn = connect(":memory:", shared_analyzer.get())
    for member_room, user in members:
        repo.add_member(conn, member_room, user, 0)
    for text, scope, memory_room, author in memories:
        repo.save_memory(conn, text, scope=scope, kind="remember", room=memory_room,
                         owner=author if scope == "personal" else None, author=author,
                         source_post_id=None, permalink=None, now_ms=0)
    found = search_memories(conn, query, rooms=repo.visible_rooms(conn, asker, room),
                            owner=asker, current_room=room, now_ms=0, limit=50)
    for memory in found:
        if memory.scope == "room":
            assert memory.room_id == room or (memory.room_id, asker) in members
        else:
            assert memory.owner_id == asker
