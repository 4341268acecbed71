"""The embedded service's command handlers: /remember, /search, /forget, /memory, /help, 요약.

Each handler returns ``(answer, memories stored, ephemeral)``. Replies are Korean when the
command's argument is Korean (or has none), English otherwise; /help is bilingual.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, assert_never

import attrs
import trio

from ..errors import MchatActorsError
from ..messages import AgentUserId, RoomId
from . import repo
from .analysis import normalize
from .answer import format_memory, hidden_note, is_korean
from .commands import Command, Forget, Help, ListMemories, Remember, Search, Summarize
from .decide import llm_update_target
from .masking import mask_for_storage
from .memory_store import SUPERSEDED, UNCHANGED
from .protocol import MemoryRecord, ReactFn, StoredMessage
from .search import memory_from_row
from .subject import subject_of
from .units import Queries

if TYPE_CHECKING:
    from .embedded import EmbeddedChatService

logger = logging.getLogger(__name__)

SEARCH_RESULTS = 10
LIST_MEMORIES = 10
# /forget deletes the best match only when it covers this share of the query's words.
FORGET_MIN_RELEVANCE = 0.75
# A memory shown to the LLM as one a new /remember may update: the LLM judges, and an update
# needs the same identifiers (chat.decide); this only keeps unrelated memories out of the prompt.
# Numbers and predicates are concepts too and differ between a fact and its update (5월 17일 ->
# 5월 24일로 연기됨), so the share asked for is under a half.
UPDATE_CANDIDATE_MIN = 0.4
REACT_TIMEOUT_S = 5.0
_MEMORY_ID = re.compile(r"^[#m](\d+)$", re.IGNORECASE)

HELP_TEXT = """\
사용할 수 있는 명령 / Commands
- `/remember <내용>`: 이 방과 내 개인 기억에 저장 / store a memory for this room and for you
- `/search <검색어>`: 내가 볼 수 있는 기억 검색 (나에게만 표시) / search the memories you can see \
(shown only to you); `/search --why <검색어>`: 왜 맞았는지도 표시 / with why each matched
- `/forget <검색어 또는 m번호>`: 가장 잘 맞는 기억 하나를 잊음 (관리자가 되살릴 수 있음) / forget \
the best matching memory (an admin can restore it)
- `/memory`: 최근 대화에서 기억 추출 (LLM), 또는 이 방의 최근 기억 목록 (나에게만 표시) / extract \
memories from the recent conversation (LLM), or list this room's recent memories (shown only to you)
- `/memory history <검색어>`: 기억이 바뀐 이력 (나에게만 표시) / every version of a memory (shown \
only to you)
- `/help`: 이 도움말 / this help
- `@ai 요약 [N시간]`: 최근 N시간 대화 요약, 기본 24시간 / summary of the last N hours (default 24)
그 밖의 말은 질문으로 보고 저장된 기억으로 답합니다. Anything else is a question, answered from \
the stored memories."""

Outcome = tuple[str, Sequence[MemoryRecord], bool]


@attrs.frozen(kw_only=True)
class Request:
    """Who asked, where, and the stored message that asked."""

    room: RoomId
    user: AgentUserId
    message: StoredMessage
    post_id: str | None
    permalink: str | None
    react: ReactFn | None


async def handle_command(svc: EmbeddedChatService, req: Request, command: Command) -> Outcome:
    """Run ``command`` for ``req``.

    Raises:
        ChatServiceError: the database or the LLM failed.
    """
    match command:
        case Remember(text=text):
            return await _remember(svc, req, text)
        case Search(query=query):
            return await _search(svc, req, query)
        case Forget(target=target):
            return await _forget(svc, req, target)
        case ListMemories(history=history):
            return await _list_memories(svc, req, history)
        case Help():
            return HELP_TEXT, (), False
        case Summarize(hours=hours):
            return await _summarize(svc, req, hours)
        case _:
            assert_never(command)


async def _remember(svc: EmbeddedChatService, req: Request, text: str) -> Outcome:
    korean = is_korean(text) or not text
    if not text:
        return "사용법: `/remember <기억할 내용>`", (), False
    target = None
    if svc.llm is not None:  # a second opinion where the rules would add beside similar ones
        candidates = await svc.db(_update_candidates, text, req)
        target = await llm_update_target(svc.llm, text, candidates, mask=svc.mask_llm)
    (room_memory, outcome, previous), (personal, _, _) = await svc.db(
        _remember_both, text, req, svc.now_ms(), target)
    if outcome == UNCHANGED:
        reply = (f"이미 같은 내용을 기억하고 있습니다: {room_memory.content} (`{room_memory.id}`)"
                 if korean else
                 f"I already remember exactly that: {room_memory.content} (`{room_memory.id}`)")
        return reply, (), False
    if korean:
        reply = (f"기억했습니다: {room_memory.content}\n"
                 f"(이 방과 개인 기억에 저장, `{room_memory.id}`)")
        if previous is not None:
            reply += (f"\n이전 기억 `{previous.id}`({previous.content})은 새 버전으로 대체되었고 "
                      "이력에 남아 있습니다.")
    else:
        reply = (f"Remembered: {room_memory.content}\n(stored for this room and for you, "
                 f"`{room_memory.id}`)")
        if previous is not None:
            reply += (f"\nIt replaces `{previous.id}` ({previous.content}), which stays in the "
                      "history.")
    return reply, (room_memory, personal), False


_Saved = tuple[MemoryRecord, str, MemoryRecord | None]


def _update_candidates(conn: Any, text: str, req: Request, *, q: Queries = repo
                       ) -> list[MemoryRecord]:
    """Current memories of the room like ``text`` that the rules would keep beside it (no exact
    repeat, no same subject): what an LLM may judge ``text`` to update. ``q``: the queries
    (``chat.units.Queries``)."""
    norm, subject = normalize(mask_for_storage(text)), subject_of(text)
    if q.room_has_current(conn, req.room, norm, subject):
        return []
    analyzer = q.analyzer_of(conn)
    query = analyzer.analyze_query(text)
    found = q.search_memories(conn, text, rooms=[req.room], owner=None, current_room=req.room,
                            now_ms=0, limit=5)
    return [m for m in found
            if m.scope == "room" and analyzer.relevance(query, m.content) >= UPDATE_CANDIDATE_MIN]


def _remember_both(conn: Any, text: str, req: Request, now_ms: int,
                   target: int | None = None, *, q: Queries = repo) -> tuple[_Saved, _Saved]:
    """The room copy and the personal copy, each with its outcome and the version it replaced;
    ``target``: the room memory the LLM judged this one to update (and its personal twin)."""
    saved = []
    updates: dict[str, int | None] = {"room": None, "personal": None}
    target_row = q.get_memory(conn, target) if target is not None else None
    if target_row is not None:
        updates["room"] = target
        twin = q.twins(conn, target_row, req.user)
        updates["personal"] = twin[0]["id"] if twin else None
    for scope, owner in (("room", None), ("personal", req.user)):
        memory, outcome = q.save_memory(
            conn, text, scope=scope, owner=owner, kind="remember", room=req.room,
            author=req.user, source_post_id=req.post_id, permalink=req.permalink,
            now_ms=now_ms, supersedes=updates[scope])
        old = q.previous_version(conn, int(memory.id[1:]))
        previous = memory_from_row(old) if outcome == SUPERSEDED and old is not None else None
        saved.append((memory, outcome, previous))
    return saved[0], saved[1]


def _room_names(conn: Any, rooms: list[str], *, q: Queries = repo) -> dict[str, str]:
    names: dict[str, str] = q.room_names(conn, rooms)
    return names


async def _labelled(svc: EmbeddedChatService, req: Request, memories: Sequence[MemoryRecord],
                    *, korean: bool) -> list[str]:
    """Bullet lines with ids and scope labels: this room, #other-room, personal."""
    others = sorted({m.room_id for m in memories if m.scope == "room" and m.room_id != req.room
                     and m.room_id is not None})
    names = await svc.db(_room_names, others) if others else {}
    lines = []
    for m in memories:
        if m.scope == "personal":
            label = "개인" if korean else "personal"
        elif m.room_id == req.room:
            label = "이 방" if korean else "this room"
        else:
            label = f"#{names.get(m.room_id or '', '?')}"
        lines.append(format_memory(m, korean=korean, label=label, with_id=True,
                                   tz=svc.timezone))
    return lines


async def _search(svc: EmbeddedChatService, req: Request, query: str) -> Outcome:
    why = query.startswith("--why")  # /search --why <query>: how each memory matched
    if why:
        query = query[len("--why"):].strip()
    korean = is_korean(query) or not query
    if not query:
        return "사용법: `/search <검색어>`", (), True
    # ephemeral: the runtime shows it to the asker only (or sends it by DM)
    found, hidden = await svc.search_scoped(req.room, req.user, query, limit=SEARCH_RESULTS,
                                            only_asker=True)
    note = hidden_note(hidden, korean=korean)
    if not found:
        return (f"'{query}'에 맞는 기억이 없습니다." if korean
                else f"No memory matches '{query}'.") + note, (), True
    head = (f"'{query}' 검색 결과 {len(found)}건:" if korean
            else f"{len(found)} memories match '{query}':")
    lines = await _labelled(svc, req, found, korean=korean)
    if why:  # each concept of the query: exact, through which expansion, or not found
        reasons = await svc.explain(query, found)
        lines = [f"{line}\n  ↳ {reason}" for line, reason in zip(lines, reasons, strict=True)]
    return "\n".join([head, *lines]) + note, (), True


async def _forget(svc: EmbeddedChatService, req: Request, target: str) -> Outcome:
    korean = is_korean(target) or not target or bool(_MEMORY_ID.match(target.strip()))
    if not target:
        return "사용법: `/forget <검색어 또는 m번호>`", (), False
    deleted = await svc.db(_forget_best, req, target, svc.now_ms())
    if deleted is None:
        return (f"'{target}'에 해당하는 기억을 찾지 못했습니다. `/search`로 먼저 확인해 보세요."
                if korean else f"No memory you can see matches '{target}'. Try `/search` first."
                ), (), False
    if korean:
        return (f"잊었습니다: {deleted.content} (`{deleted.id}`). 답변에 더 이상 쓰지 않으며, "
                "관리자가 되살릴 수 있습니다."), (), False
    return (f"Forgotten: {deleted.content} (`{deleted.id}`). Answers no longer use it; an admin "
            "can restore it."), (), False


def _forget_best(conn: Any, req: Request, target: str,
                 now_ms: int, *, q: Queries = repo) -> MemoryRecord | None:
    # the room asked in and the rooms the asker belongs to (not every public room: reading a
    # team-wide memory does not make it yours to forget)
    rooms = q.member_rooms(conn, req.user, req.room)
    by_id = _MEMORY_ID.match(target.strip())
    row = None
    if by_id:
        row = q.get_memory(conn, int(by_id.group(1)))
        if row is not None and not (
            (row["scope"] == "room" and row["room_id"] in rooms)
            or (row["scope"] == "personal" and row["owner_id"] == req.user)
        ):
            row = None
    else:
        found = q.search_memories(conn, target, rooms=rooms, owner=req.user,
                                current_room=req.room, now_ms=now_ms, limit=1)
        analyzer = q.analyzer_of(conn)
        if found and analyzer.relevance(analyzer.analyze_query(target),
                                        found[0].content) >= FORGET_MIN_RELEVANCE:
            row = q.get_memory(conn, int(found[0].id[1:]))
    if row is None:
        return None
    for twin in q.twins(conn, row, req.user):
        q.forget_memory(conn, twin["id"], actor=req.user, now_ms=now_ms)
    q.forget_memory(conn, row["id"], actor=req.user, now_ms=now_ms)
    return memory_from_row(row)


async def _list_memories(svc: EmbeddedChatService, req: Request, history: str) -> Outcome:
    if history:
        return await _history(svc, req, history.strip())
    if svc.llm is not None:
        extracted = await svc.extract_memories(req.room)
        if not extracted:
            return "최근 대화에서 새로 기억할 내용을 찾지 못했습니다.", (), True
        lines = await _labelled(svc, req, extracted, korean=True)
        return "\n".join([f"최근 대화에서 기억 {len(extracted)}개를 저장했습니다:", *lines]), \
            extracted, True
    recent = await svc.db(repo.recent_room_memories, req.room, LIST_MEMORIES)
    if not recent:
        return "이 방에 저장된 기억이 없습니다. `/remember <내용>`으로 추가하세요.", (), True
    lines = await _labelled(svc, req, recent, korean=True)
    return "\n".join([f"이 방의 최근 기억 {len(recent)}개:", *lines]), (), True


async def _history(svc: EmbeddedChatService, req: Request, query: str) -> Outcome:
    """Every version of the best matching memories: value, since when, who, where."""
    korean = is_korean(query) or not query
    if not query:
        return "사용법: `/memory history <검색어>`", (), True
    found, _ = await svc.search_scoped(req.room, req.user, query, limit=3, only_asker=True)
    if not found:
        return (f"'{query}'에 맞는 기억이 없습니다." if korean
                else f"No memory matches '{query}'."), (), True
    chains = await svc.db(_chains, [int(m.id[1:]) for m in found])
    head = f"'{query}' 기억 이력:" if korean else f"History of '{query}':"
    lines = [head]
    for chain in chains:
        for version in chain:
            lines.append(svc.format_version(version, korean=korean))
    return "\n".join(lines), (), True


def _chains(conn: Any, ids: list[int], *, q: Queries = repo) -> list[list[MemoryRecord]]:
    seen: set[int] = set()
    out = []
    for memory_id in ids:
        rows = q.versions(conn, memory_id)
        if memory_id in seen or not rows:
            continue
        seen.update(r["id"] for r in rows)
        # forgotten and retracted versions are for admins only: never shown in a chat
        out.append([memory_from_row(r) for r in rows
                    if r["forgotten_at"] is None and r["deleted_at"] is None])
    return out


async def _summarize(svc: EmbeddedChatService, req: Request, hours: int) -> Outcome:
    return await summarize_with_reactions(svc.summarize_room, req.room, hours, req.react)


async def summarize_with_reactions(
    summarize_room: Callable[..., Awaitable[MemoryRecord | None]], room: RoomId, hours: int,
    react: ReactFn | None,
) -> tuple[str, tuple[MemoryRecord, ...], bool]:
    """Run a summary between an hourglass and a check mark reaction (the original's way).

    Shared by the embedded service and the remote adapter (which summarises its local store).
    """
    await _react(react, "hourglass_flowing_sand")
    memory = await summarize_room(room, hours=hours)
    await _react(react, "white_check_mark")
    if memory is None:
        return f"최근 {hours}시간 동안 이 방에 요약할 대화가 없습니다.", (), False
    return memory.content, (memory,), False


async def _react(react: ReactFn | None, emoji: str) -> None:
    """Best effort: a failing or slow reaction is logged and otherwise ignored."""
    if react is None:
        return
    with trio.move_on_after(REACT_TIMEOUT_S):
        try:
            await react(emoji)
        except (trio.ClosedResourceError, trio.BrokenResourceError, MchatActorsError) as exc:
            # a reaction is decoration; never let it fail the summary
            logger.warning("chat: reaction %s failed: %s", emoji, type(exc).__name__)
