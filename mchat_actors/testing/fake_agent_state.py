"""The data of the AI Memory Agent twin (``fake_agent_api``): users, tokens, agent instances,
agent data, memories, chat rooms, members and messages, with the real server's rules.

Each rule names where it comes from in illing1230/ai-memory-agent at ``0d62821``. What the twin
replaces: the embedding model and Qdrant (``similarity`` below, character-bigram overlap, no
threshold: like a vector search, the nearest items come back even when they are unrelated) and
the LLM (answers quote the related memories; no extraction from conversation).
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import attrs

# src/agent/service.py: similarity 60 %, recency 40 %, recency decays to 0 over 30 days
SIMILARITY_ALPHA = 0.6
RECENCY_BETA = 0.4
RECENCY_DECAY_DAYS = 30
PER_SOURCE = 5  # every search_vectors(...) call in the real search_memories uses limit=5
AI_USER_ID = "ai-assistant"  # src/chat/service.py


def utcnow() -> datetime:
    """The server's clock: naive UTC, as ``datetime.utcnow()`` and SQLite CURRENT_TIMESTAMP."""
    return datetime.now(UTC).replace(tzinfo=None)


def similarity(query: str, content: str) -> float:
    """Stand-in for cosine similarity: share of the query's character bigrams in ``content``."""
    haystack = content.casefold()
    if query.strip() and query.strip().casefold() in haystack:
        return 1.0
    grams = {w[i : i + 2] for w in query.casefold().split() for i in range(max(1, len(w) - 1))}
    if not grams:
        return 0.0
    return sum(1 for g in grams if g in haystack) / len(grams)


@attrs.define
class User:
    id: str
    name: str
    email: str
    password: str | None = None  # None: the real login lets anyone in ("개발모드로 통과")
    role: str = "user"
    sso_provider: str | None = None
    sso_id: str | None = None
    created_at: datetime = attrs.Factory(utcnow)


@attrs.define
class Instance:
    id: str
    name: str
    owner_id: str
    api_key: str
    status: str = "active"


@attrs.define
class AgentData:
    id: str
    agent_instance_id: str
    data_type: str
    content: str
    external_user_id: str | None
    internal_user_id: str
    metadata: dict[str, Any] | None
    created_at: datetime


@attrs.define
class Memory:
    id: str
    content: str
    owner_id: str
    scope: str  # "agent" (Agent API) | "chatroom" (/remember) | "personal" | ...
    chat_room_id: str | None = None
    category: str | None = None
    importance: str = "medium"
    metadata: dict[str, Any] | None = None
    created_at: datetime = attrs.Factory(utcnow)
    superseded: bool = False


@attrs.define
class Room:
    id: str
    name: str
    owner_id: str
    room_type: str
    context_sources: dict[str, Any] | None
    created_at: datetime


@attrs.define
class Member:
    id: str
    room_id: str
    user_id: str
    role: str
    joined_at: datetime


@attrs.define
class Message:
    id: str
    room_id: str
    user_id: str
    role: str
    content: str
    mentions: list[str] | None
    created_at: datetime  # one-second resolution (SQLite CURRENT_TIMESTAMP)


@attrs.define
class AgentWorld:
    """Everything the twin stores; tests read and seed it directly."""

    clock: Callable[[], datetime] = utcnow
    users: dict[str, User] = attrs.Factory(dict)
    tokens: dict[str, str] = attrs.Factory(dict)  # access token -> user id
    instances: dict[str, Instance] = attrs.Factory(dict)
    data: list[AgentData] = attrs.Factory(list)
    memories: dict[str, Memory] = attrs.Factory(dict)
    mappings: dict[tuple[str, str], str] = attrs.Factory(dict)  # (instance, external) -> user
    rooms: dict[str, Room] = attrs.Factory(dict)
    members: list[Member] = attrs.Factory(list)
    messages: list[Message] = attrs.Factory(list)
    llm_fails: bool = False  # answers fail after the question is stored (the real 500 path)
    _ids: itertools.count[int] = attrs.Factory(lambda: itertools.count(1))

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):04d}"

    # -- users and tokens --------------------------------------------------------------------

    def add_user(self, name: str, email: str, *, password: str | None = None,
                 role: str = "user") -> User:
        user = User(id=self.new_id("user"), name=name, email=email, password=password, role=role)
        self.users[user.id] = user
        return user

    def user_by_email(self, email: str) -> User | None:
        # src/user/repository.py get_user_by_email: exact match on the column
        return next((u for u in self.users.values() if u.email == email), None)

    def issue_token(self, user: User) -> str:
        token = base64.urlsafe_b64encode(f"{user.id}|{self.new_id('t')}".encode()).decode()
        self.tokens[token] = user.id
        return token

    def expire_tokens(self) -> None:
        """Every issued token stops working (tokens expire after jwt_access_token_expire_hours)."""
        self.tokens.clear()

    # -- agent instances ---------------------------------------------------------------------

    def add_instance(self, *, owner: User, api_key: str, agent_id: str | None = None,
                     name: str = "mchat") -> Instance:
        inst = Instance(id=agent_id or self.new_id("agent"), name=name, owner_id=owner.id,
                        api_key=api_key)
        self.instances[inst.id] = inst
        return inst

    def instance_by_key(self, api_key: str) -> Instance | None:
        return next((i for i in self.instances.values() if i.api_key == api_key), None)

    def agent_memories(self, instance: Instance) -> list[Memory]:
        return [m for m in self.memories.values()
                if m.scope == "agent" and (m.metadata or {}).get("agent_instance_id")
                == instance.id]

    # -- rooms -------------------------------------------------------------------------------

    def member(self, room_id: str, user_id: str) -> Member | None:
        return next((m for m in self.members if m.room_id == room_id and m.user_id == user_id),
                    None)

    def add_member(self, room_id: str, user_id: str, role: str) -> Member:
        member = Member(id=self.new_id("mem"), room_id=room_id, user_id=user_id, role=role,
                        joined_at=self.clock())
        self.members.append(member)
        return member

    def user_rooms(self, user_id: str) -> list[Room]:
        ids = {m.room_id for m in self.members if m.user_id == user_id}
        return [r for r in self.rooms.values() if r.id in ids]

    def add_message(self, room_id: str, user_id: str, content: str, *, role: str,
                    mentions: list[str] | None = None) -> Message:
        msg = Message(id=self.new_id("msg"), room_id=room_id, user_id=user_id, role=role,
                      content=content, mentions=mentions or None,
                      created_at=self.clock().replace(microsecond=0))
        self.messages.append(msg)
        return msg

    def room_messages(self, room_id: str) -> list[Message]:
        # src/chat/repository.py list_messages: ORDER BY created_at ASC (stable for ties)
        return sorted((m for m in self.messages if m.room_id == room_id),
                      key=lambda m: m.created_at)

    # -- memories ----------------------------------------------------------------------------

    def add_memory(self, content: str, *, owner_id: str, scope: str,
                   chat_room_id: str | None = None, metadata: dict[str, Any] | None = None,
                   category: str | None = None, importance: str = "medium") -> Memory:
        memory = Memory(id=self.new_id("m"), content=content, owner_id=owner_id, scope=scope,
                        chat_room_id=chat_room_id, category=category, importance=importance,
                        metadata=metadata, created_at=self.clock())
        self.memories[memory.id] = memory
        return memory

    def nearest(self, query: str, candidates: Iterable[Memory],
                limit: int = PER_SOURCE) -> list[tuple[Memory, float]]:
        """The vector search: the ``limit`` nearest live candidates, no score threshold."""
        scored = [(m, similarity(query, m.content)) for m in candidates if not m.superseded]
        scored.sort(key=lambda pair: (-pair[1], -pair[0].created_at.timestamp()))
        return scored[:limit]

    def reranked(self, hits: Iterable[tuple[Memory, float]]) -> list[tuple[Memory, float]]:
        """src/agent/service.py: similarity 0.6 + recency 0.4, best first, deduplicated."""
        now = self.clock()
        best: dict[str, tuple[Memory, float]] = {}
        for memory, sim in hits:
            days = (now - memory.created_at).days
            recency = 0.0 if days >= RECENCY_DECAY_DAYS else max(
                0.0, 1.0 - days / RECENCY_DECAY_DAYS)
            score = sim * SIMILARITY_ALPHA + recency * RECENCY_BETA
            if memory.id not in best or best[memory.id][1] < score:
                best[memory.id] = (memory, score)
        return sorted(best.values(), key=lambda pair: -pair[1])


__all__ = [
    "AI_USER_ID",
    "PER_SOURCE",
    "AgentData",
    "AgentWorld",
    "Instance",
    "Member",
    "Memory",
    "Message",
    "Room",
    "User",
    "similarity",
    "utcnow",
]
