"""The request and response models of the real AI Memory Agent, for its twin (``fake_agent_api``).

Copied field for field from illing1230/ai-memory-agent at commit
``0d62821c`` (HEAD when issue #16 was written); each class names the file it comes from. The twin
serves them through FastAPI exactly as the real server does, so status codes (422 for a bad body
or a missing ``X-API-Key`` header), JSON shapes and datetime formats (naive ISO 8601, UTC, the
server's ``datetime.utcnow()`` and SQLite ``CURRENT_TIMESTAMP``) are the real ones.

Only the models the bridge talks to are here; the real files hold more (agent types, shares,
statistics), which no client of ours calls.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

REAL_COMMIT = "0d62821"

# -- src/agent/schemas.py ------------------------------------------------------------------------


class AgentDataCreate(BaseModel):
    """``POST /api/v1/agents/{agent_id}/data`` body (src/agent/schemas.py AgentDataBase)."""

    data_type: Literal["memory", "message", "log"]
    content: str
    external_user_id: str | None = None
    metadata: dict[str, Any] | None = None


class AgentDataResponse(AgentDataCreate):
    """One ``agent_data`` row (src/agent/schemas.py AgentDataResponse).

    ``id`` is the agent_data id, not the id of the memory a ``memory`` item becomes.
    """

    model_config = ConfigDict(from_attributes=True)
    id: str
    agent_instance_id: str
    internal_user_id: str
    created_at: datetime


class AgentDataListResponse(BaseModel):
    """``GET /api/v1/agents/{agent_id}/data`` (src/agent/schemas.py AgentDataListResponse)."""

    data: list[AgentDataResponse]
    total: int


class AgentMemoryCreate(BaseModel):
    """``POST /api/v1/agents/{agent_id}/memories`` body (src/agent/schemas.py, Phase 2-3)."""

    content: str
    metadata: dict[str, Any] | None = None


class AgentMemoryContextSources(BaseModel):
    """Which sources a search looks in (src/agent/schemas.py). All off by default: a search
    without ``context_sources`` (or with every switch off) finds nothing."""

    include_agent: bool = False
    include_document: bool = False
    chat_rooms: list[str] = []
    agent_instances: list[str] = []


class AgentMemorySearchRequest(BaseModel):
    """``POST /api/v1/agents/{agent_id}/memories/search`` body (src/agent/schemas.py)."""

    query: str
    context_sources: AgentMemoryContextSources | None = None
    limit: int = Field(default=10, ge=1, le=50)
    external_user_id: str | None = None


class AgentMemorySearchResult(BaseModel):
    """One search hit (src/agent/schemas.py); ``memory_id`` is what DELETE takes."""

    memory_id: str
    content: str
    scope: str
    category: str | None = None
    importance: str = "medium"
    score: float
    created_at: datetime
    metadata: dict[str, Any] | None = None


class AgentMemorySearchResponse(BaseModel):
    """(src/agent/schemas.py AgentMemorySearchResponse)"""

    results: list[AgentMemorySearchResult]
    total: int
    query: str


class MessageOnly(BaseModel):
    """``{"message": ...}``: what DELETE endpoints return (src/agent/router.py,
    src/chat/router.py; no response_model there)."""

    message: str


# -- src/auth/schemas.py -------------------------------------------------------------------------


class LoginRequest(BaseModel):
    """``POST /api/v1/auth/login`` body (src/auth/schemas.py)."""

    email: str
    password: str


class SSOLoginRequest(BaseModel):
    """``POST /api/v1/auth/sso`` body (src/auth/schemas.py): the user is matched by e-mail or
    created, and a Bearer token for them is returned."""

    email: str
    name: str
    sso_provider: str
    sso_id: str
    department_id: str | None = None


class UserInfo(BaseModel):
    """(src/auth/schemas.py UserInfo)"""

    id: str
    name: str
    email: str
    department_id: str | None = None
    role: str = "user"


class LoginResponse(BaseModel):
    """(src/auth/schemas.py LoginResponse)"""

    access_token: str
    token_type: str = "bearer"
    user: UserInfo


# -- src/user/schemas.py -------------------------------------------------------------------------


class UserCreate(BaseModel):
    """``POST /api/v1/users`` body (src/user/schemas.py UserCreate)."""

    name: str
    email: str
    department_id: str | None = None


class UserResponse(BaseModel):
    """(src/user/schemas.py UserResponse)"""

    id: str
    name: str
    email: str
    department_id: str | None = None
    created_at: datetime
    updated_at: datetime


# -- src/chat/schemas.py -------------------------------------------------------------------------


class MemorySources(BaseModel):
    """(src/chat/schemas.py MemorySources)"""

    include_this_room: bool = True
    other_chat_rooms: list[str] = []
    agent_instances: list[str] = []
    include_agent: bool = False
    include_document: bool = False


class ContextSources(BaseModel):
    """(src/chat/schemas.py ContextSources)"""

    memory: MemorySources = MemorySources()
    rag: dict[str, Any] = {"collections": [], "filters": {}}


class ChatRoomCreate(BaseModel):
    """``POST /api/v1/chat-rooms`` body (src/chat/schemas.py ChatRoomCreate)."""

    name: str
    room_type: Literal["personal", "project", "department"] = "personal"
    project_id: str | None = None
    department_id: str | None = None
    context_sources: ContextSources | None = None


class ChatRoomResponse(BaseModel):
    """(src/chat/schemas.py ChatRoomResponse)"""

    id: str
    name: str
    room_type: Literal["personal", "project", "department"] = "personal"
    owner_id: str
    project_id: str | None = None
    department_id: str | None = None
    context_sources: ContextSources | None = None
    member_role: str | None = None
    share_role: str | None = None
    created_at: datetime


class ChatRoomMemberCreate(BaseModel):
    """``POST /api/v1/chat-rooms/{room_id}/members`` body (src/chat/schemas.py)."""

    user_id: str
    role: Literal["admin", "member"] = "member"


class ChatRoomMemberResponse(BaseModel):
    """(src/chat/schemas.py ChatRoomMemberResponse)"""

    id: str
    chat_room_id: str
    user_id: str
    user_name: str | None = None
    user_email: str | None = None
    role: Literal["owner", "admin", "member"]
    joined_at: datetime


class MessageCreate(BaseModel):
    """``POST /api/v1/chat-rooms/{room_id}/messages`` body (src/chat/schemas.py). There is no
    idempotency key: the same body sent twice is two messages (and two answers)."""

    content: str
    mentions: list[str] | None = None


class MessageResponse(BaseModel):
    """(src/chat/schemas.py MessageResponse); ``created_at`` has one-second resolution."""

    id: str
    chat_room_id: str
    user_id: str
    user_name: str | None = None
    role: Literal["user", "assistant"]
    content: str
    mentions: list[str] | None = None
    sources: dict[str, Any] | None = None
    created_at: datetime


class ChatResponse(BaseModel):
    """(src/chat/schemas.py ChatResponse): what a message post returns."""

    user_message: MessageResponse
    assistant_message: MessageResponse | None = None
    extracted_memories: list[dict[str, Any]] = []


__all__ = [
    "REAL_COMMIT",
    "AgentDataCreate",
    "AgentDataListResponse",
    "AgentDataResponse",
    "AgentMemoryContextSources",
    "AgentMemoryCreate",
    "AgentMemorySearchRequest",
    "AgentMemorySearchResponse",
    "AgentMemorySearchResult",
    "ChatResponse",
    "ChatRoomCreate",
    "ChatRoomMemberCreate",
    "ChatRoomMemberResponse",
    "ChatRoomResponse",
    "ContextSources",
    "LoginRequest",
    "LoginResponse",
    "MemorySources",
    "MessageCreate",
    "MessageOnly",
    "MessageResponse",
    "SSOLoginRequest",
    "UserCreate",
    "UserInfo",
    "UserResponse",
]
