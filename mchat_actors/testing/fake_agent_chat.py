"""The chat side of the AI Memory Agent twin: auth, users, chat rooms, members and messages.

Routes and rules from illing1230/ai-memory-agent at ``0d62821`` (each handler names its file):

- ``POST /api/v1/auth/login`` ``{"email", "password"}`` -> ``LoginResponse``; 401 for an unknown
  e-mail or a wrong password (a user without a password hash gets in with any password).
- ``POST /api/v1/auth/sso`` ``{"email", "name", "sso_provider", "sso_id"}`` -> ``LoginResponse``:
  the user is matched by e-mail (name kept) or created; the token is theirs.
- ``POST /api/v1/users``, ``GET /api/v1/users``: no authentication at all in the real router.
- Authenticated routes take ``Authorization: Bearer <token>``, or else ``X-User-ID`` (the real
  server's "development" fallback, accepted in every environment); neither: 401.
- ``POST /api/v1/chat-rooms`` (the caller becomes owner and member), ``GET /api/v1/chat-rooms``
  (the caller's rooms), ``POST|GET /api/v1/chat-rooms/{id}/members`` (adding needs owner or
  admin; an existing member is 403 "이미 대화방 멤버입니다"), ``DELETE .../members/{user}``.
- ``GET /api/v1/chat-rooms/{id}/messages?limit=50&offset=0``: oldest first (ORDER BY created_at
  ASC, then LIMIT/OFFSET from the start), members only.
- ``POST /api/v1/chat-rooms/{id}/messages`` ``{"content"}`` -> ``ChatResponse`` (src/chat/
  service.py send_message): a leading ``/word`` is a command (remember, forget, search, help,
  members, invite, memory), ``@ai`` among the ``@(\\w+)`` mentions asks for an answer, anything
  else is only stored. No idempotency key: the same body twice is two messages.

The LLM is replaced: an answer quotes the room's memories related to the question; ``/remember``
stores one ``chatroom`` memory (src/memory/pipeline.py save_manual); ``/forget`` deletes the
nearest memory of the room, however unrelated (the real one does too); ``/memory`` (extraction
by LLM) extracts nothing.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Header, HTTPException

from .fake_agent_schemas import (
    ChatResponse,
    ChatRoomCreate,
    ChatRoomMemberCreate,
    ChatRoomMemberResponse,
    ChatRoomResponse,
    LoginRequest,
    LoginResponse,
    MessageCreate,
    MessageOnly,
    MessageResponse,
    SSOLoginRequest,
    UserCreate,
    UserResponse,
)
from .fake_agent_state import AI_USER_ID, AgentWorld, Member, Message, Room, User, similarity

COMMAND = re.compile(r"^/(\w+)\s*(.*)", re.DOTALL)  # src/chat/service.py COMMAND_PATTERN
MENTION = re.compile(r"@(\w+)")  # src/chat/service.py _parse_mentions

HELP = """📖 **사용 가능한 커맨드**

**메모리 관리**
• `/remember <내용>` - 개인 + 대화방 메모리 저장
• `/memory` - 최근 대화에서 메모리 자동 추출
• `/forget <검색어>` - 메모리 삭제
• `/search <검색어>` - 메모리 검색

**대화방 관리**
• `/members` - 멤버 목록 보기
• `/invite <이메일>` - 멤버 초대 (관리자만)

**AI 호출**
• `@ai <질문>` - AI에게 질문

**기타**
• `/help` - 이 도움말 표시"""


def _login(world: AgentWorld, user: User) -> dict[str, Any]:
    return {"access_token": world.issue_token(user), "token_type": "bearer",
            "user": {"id": user.id, "name": user.name, "email": user.email,
                     "department_id": None, "role": user.role}}


def _user(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "email": user.email, "department_id": None,
            "created_at": user.created_at, "updated_at": user.created_at}


def _message(world: AgentWorld, msg: Message) -> dict[str, Any]:
    user = world.users.get(msg.user_id)
    return {"id": msg.id, "chat_room_id": msg.room_id, "user_id": msg.user_id,
            "user_name": user.name if user else None, "role": msg.role, "content": msg.content,
            "mentions": msg.mentions, "sources": None, "created_at": msg.created_at}


def _member(world: AgentWorld, member: Member) -> dict[str, Any]:
    user = world.users.get(member.user_id)
    return {"id": member.id, "chat_room_id": member.room_id, "user_id": member.user_id,
            "user_name": user.name if user else None, "user_email": user.email if user else None,
            "role": member.role, "joined_at": member.joined_at}


def _room(room: Room, role: str | None = None) -> dict[str, Any]:
    return {"id": room.id, "name": room.name, "room_type": room.room_type,
            "owner_id": room.owner_id, "context_sources": room.context_sources,
            "member_role": role, "created_at": room.created_at}


def chat_router(world: AgentWorld) -> APIRouter:
    router = APIRouter()

    def current_user(authorization: str | None, x_user_id: str | None) -> str:
        """src/shared/auth.py get_current_user_id: Bearer first, X-User-ID fallback, else 401."""
        if authorization and authorization.startswith("Bearer "):
            user = world.tokens.get(authorization[7:])
            if user is not None:
                return user
        if x_user_id:
            return x_user_id
        raise HTTPException(401, "인증이 필요합니다")

    def room_of(room_id: str) -> Room:
        room = world.rooms.get(room_id)
        if room is None:
            raise HTTPException(404, f"대화방 (ID: {room_id})을(를) 찾을 수 없습니다")
        return room

    def member_of(room_id: str, user: str, *, admin: bool = False) -> Member:
        member = world.member(room_id, user)
        if member is None:
            raise HTTPException(403, "대화방 멤버가 아닙니다")
        if admin and member.role not in ("owner", "admin"):
            raise HTTPException(403, "관리자 권한이 필요합니다")
        return member

    @router.post("/auth/login", response_model=LoginResponse)
    async def login(request: LoginRequest) -> dict[str, Any]:
        """src/auth/service.py login (ForbiddenException -> 401 in src/auth/router.py)."""
        user = world.user_by_email(request.email)
        if user is None or (user.password is not None and user.password != request.password):
            raise HTTPException(401, "이메일 또는 비밀번호가 올바르지 않습니다")
        return _login(world, user)

    @router.post("/auth/sso", response_model=LoginResponse)
    async def sso_login(request: SSOLoginRequest) -> dict[str, Any]:
        """src/auth/service.py sso_login: match by e-mail (name kept) or create; token."""
        user = world.user_by_email(request.email) or world.add_user(request.name, request.email)
        user.sso_provider, user.sso_id = request.sso_provider, request.sso_id
        return _login(world, user)

    @router.post("/users", response_model=UserResponse)
    async def create_user(data: UserCreate) -> dict[str, Any]:
        """src/user/router.py create_user (no auth); a used e-mail is 400."""
        if world.user_by_email(data.email) is not None:
            raise HTTPException(400, f"이미 사용 중인 이메일입니다: {data.email}")
        return _user(world.add_user(data.name, data.email))

    @router.get("/users", response_model=list[UserResponse])
    async def list_users() -> list[dict[str, Any]]:
        """src/user/router.py list_users (no auth)."""
        return [_user(u) for u in world.users.values()]

    @router.post("/chat-rooms", response_model=ChatRoomResponse)
    async def create_chat_room(data: ChatRoomCreate, authorization: str | None = Header(None),
                               x_user_id: str | None = Header(None, alias="X-User-ID"),
                               ) -> dict[str, Any]:
        """src/chat/service.py create_chat_room: the caller is owner and first member."""
        user = current_user(authorization, x_user_id)
        sources = (data.context_sources.model_dump() if data.context_sources else
                   {"memory": {"include_this_room": True, "other_chat_rooms": []},
                    "rag": {"collections": [], "filters": {}}})
        room = Room(id=world.new_id("room"), name=data.name, owner_id=user,
                    room_type=data.room_type, context_sources=sources,
                    created_at=world.clock())
        world.rooms[room.id] = room
        world.add_member(room.id, user, "owner")
        return _room(room)

    @router.get("/chat-rooms", response_model=list[ChatRoomResponse])
    async def list_chat_rooms(authorization: str | None = Header(None),
                              x_user_id: str | None = Header(None, alias="X-User-ID"),
                              ) -> list[dict[str, Any]]:
        """src/chat/repository.py get_user_rooms: rooms the caller is a member of."""
        user = current_user(authorization, x_user_id)
        return [_room(r) for r in world.user_rooms(user)]

    @router.post("/chat-rooms/{room_id}/members", response_model=ChatRoomMemberResponse)
    async def add_member(room_id: str, data: ChatRoomMemberCreate,
                         authorization: str | None = Header(None),
                         x_user_id: str | None = Header(None, alias="X-User-ID"),
                         ) -> dict[str, Any]:
        """src/chat/service.py add_member: owner/admin only; a member already: 403."""
        user = current_user(authorization, x_user_id)
        member_of(room_id, user, admin=True)
        if world.member(room_id, data.user_id) is not None:
            raise HTTPException(403, "이미 대화방 멤버입니다")
        return _member(world, world.add_member(room_id, data.user_id, data.role))

    @router.get("/chat-rooms/{room_id}/members", response_model=list[ChatRoomMemberResponse])
    async def list_members(room_id: str, authorization: str | None = Header(None),
                           x_user_id: str | None = Header(None, alias="X-User-ID"),
                           ) -> list[dict[str, Any]]:
        """src/chat/service.py list_members (members only)."""
        member_of(room_id, current_user(authorization, x_user_id))
        return [_member(world, m) for m in world.members if m.room_id == room_id]

    @router.delete("/chat-rooms/{room_id}/members/{target}", response_model=MessageOnly)
    async def remove_member(room_id: str, target: str, authorization: str | None = Header(None),
                            x_user_id: str | None = Header(None, alias="X-User-ID"),
                            ) -> dict[str, str]:
        """src/chat/service.py remove_member: self, or owner/admin; not a member: 404."""
        user = current_user(authorization, x_user_id)
        me = member_of(room_id, user, admin=target != user)
        them = world.member(room_id, target)
        if them is None:
            raise HTTPException(404, f"대화방 멤버 (ID: {target})을(를) 찾을 수 없습니다")
        if them.role == "owner" or (me.role == "admin" and them.role == "admin"
                                    and target != user):
            raise HTTPException(403, "owner는 강퇴할 수 없습니다")
        world.members.remove(them)
        return {"message": "멤버가 제거되었습니다"}

    @router.get("/chat-rooms/{room_id}/messages", response_model=list[MessageResponse])
    async def get_messages(room_id: str, limit: int = 50, offset: int = 0,
                           authorization: str | None = Header(None),
                           x_user_id: str | None = Header(None, alias="X-User-ID"),
                           ) -> list[dict[str, Any]]:
        """src/chat/repository.py list_messages: oldest first, LIMIT/OFFSET from the start."""
        user = current_user(authorization, x_user_id)
        room_of(room_id)
        member_of(room_id, user)
        rows = world.room_messages(room_id)[offset:offset + limit]
        return [_message(world, m) for m in rows]

    @router.post("/chat-rooms/{room_id}/messages", response_model=ChatResponse)
    async def send_message(room_id: str, data: MessageCreate,
                           authorization: str | None = Header(None),
                           x_user_id: str | None = Header(None, alias="X-User-ID"),
                           ) -> dict[str, Any]:
        """src/chat/service.py send_message (via src/chat/router.py)."""
        user = current_user(authorization, x_user_id)
        room = room_of(room_id)
        member_of(room_id, user)
        command = COMMAND.match(data.content.strip())
        if command is not None:
            msg = world.add_message(room.id, user, data.content, role="user")
            reply, memories = _command(world, room, user, command.group(1).lower(),
                                       command.group(2).strip())
            answer = world.add_message(room.id, AI_USER_ID, reply, role="assistant")
            return {"user_message": _message(world, msg),
                    "assistant_message": _message(world, answer),
                    "extracted_memories": memories}
        mentions = sorted(set(MENTION.findall(data.content.lower())))
        msg = world.add_message(room.id, user, data.content, role="user", mentions=mentions)
        result: dict[str, Any] = {"user_message": _message(world, msg),
                                  "assistant_message": None, "extracted_memories": []}
        if "ai" in mentions:
            if world.llm_fails:  # src/chat/router.py: any exception -> 500, message kept
                raise HTTPException(500, "LLM Provider 오류: unavailable")
            question = re.sub(r"@ai\s*", "", data.content, flags=re.IGNORECASE).strip()
            answer = world.add_message(room.id, AI_USER_ID, _answer(world, room, question),
                                       role="assistant")
            result["assistant_message"] = _message(world, answer)
        return result

    return router


def _room_hits(world: AgentWorld, room: Room, query: str) -> list[tuple[Any, float]]:
    return world.reranked(world.nearest(query, (m for m in world.memories.values()
                                                if m.chat_room_id == room.id)))


def _answer(world: AgentWorld, room: Room, question: str) -> str:
    """The LLM's stand-in: quote the room's memories that share words with the question."""
    related = [m.content for m, _ in _room_hits(world, room, question)
               if similarity(question, m.content) > 0]
    if not related:
        return "관련된 기억을 찾지 못했습니다."
    return "저장된 기억에 따르면:\n" + "\n".join(f"- {c}" for c in related)


def _command(world: AgentWorld, room: Room, user: str, name: str,
             args: str) -> tuple[str, list[dict[str, Any]]]:
    """src/chat/service.py _handle_command and the _cmd_* helpers."""
    if name == "remember":
        if not args:
            return ("❌ 저장할 내용을 입력하세요.\n\n"
                    "예: `/remember 김과장은 오전 회의를 선호한다`"), []
        memory = world.add_memory(args, owner_id=user, scope="chatroom", chat_room_id=room.id)
        return (f"✅ 메모리가 저장되었습니다!\n\n📝 {args}\n\n범위: 개인 + 대화방",
                [{"id": memory.id, "content": memory.content, "scope": memory.scope,
                  "chat_room_id": room.id, "owner_id": user}])
    if name == "forget":
        if not args:
            return "❌ 삭제할 메모리 검색어를 입력하세요.\n\n예: `/forget 김과장 회의`", []
        hits = world.nearest(args, (m for m in world.memories.values()
                                    if m.chat_room_id == room.id))
        if not hits:
            return f"🔍 '{args}'와 관련된 메모리를 찾을 수 없습니다.", []
        gone = world.memories.pop(hits[0][0].id)
        return f"🗑️ 메모리가 삭제되었습니다.\n\n삭제됨: {gone.content}", []
    if name == "search":
        if not args:
            return "❌ 검색어를 입력하세요.\n\n예: `/search 회의 선호`", []
        hits = _room_hits(world, room, args)
        if not hits:
            return f"🔍 '{args}'와 관련된 메모리를 찾을 수 없습니다.", []
        lines = [f"🔍 '{args}' 검색 결과 ({len(hits)}개)\n"]
        for i, (m, score) in enumerate(hits, 1):
            label = "이 대화방" if m.scope == "chatroom" else m.scope
            lines.append(f"{i}. {m.content}\n   _(유사도: {score:.0%}, 범위: {label})_\n")
        return "\n".join(lines), []
    if name == "help":
        return HELP, []
    if name == "memory":
        if len(world.room_messages(room.id)) < 2:
            return ("💬 대화가 부족합니다. 메모리를 추출하려면 최소 2개 이상의 메시지가 "
                    "필요합니다."), []
        return "ℹ️ 추출할 메모리가 없습니다.", []
    if name == "members":
        members = [m for m in world.members if m.room_id == room.id]
        return f"👥 대화방 멤버 ({len(members)}명)", []
    return f"❌ 알 수 없는 커맨드: /{name}\n\n/help 로 확인하세요.", []


__all__ = ["chat_router"]
