"""The AI Memory Agent's chat API as the agent-chat backend uses it, with its authentication.

Routes (illing1230/ai-memory-agent@0d62821; src/auth/router.py, src/user/router.py,
src/chat/router.py), all under ``{CHAT_BACKEND_URL}/api/v1/``:

- the service account logs in with ``POST auth/login {"email", "password"}`` and gets a Bearer
  token; it creates the rooms (``POST chat-rooms``, so it owns them), adds and removes members
  (``POST|DELETE chat-rooms/{id}/members``; only an owner or admin may) and lists rooms.
- messages are posted *as the person who wrote them*. The server's tokens are signed with its
  own secret and name one user, so there is no way to mint them; ``CHAT_AGENT_USER_AUTH``:

  - ``sso`` (default): ``POST auth/sso {"email", "name", "sso_provider": "mchat", "sso_id"}``
    matches the user by e-mail (or creates them) and returns a Bearer token for them. This is
    the server's documented way for an SSO front end (Mchat is one) to log people in. Side
    effect: the server records ``sso_provider "mchat"`` on the matched user.
  - ``x-user-id``: the server's ``X-User-ID`` header (src/shared/auth.py, "development
    fallback", accepted in every environment at 0d62821); users are matched in ``GET users``
    by e-mail or created with ``POST users``. Only where the deployment allows it.

Tokens live in memory only (never in the database or a log) and are fetched again on a 401
(they expire after the server's ``jwt_access_token_expire_hours``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, final

from ..errors import ChatServiceError, ConfigError
from .agent_http import AgentHttp, HttpStatusError, Unauthorized

logger = logging.getLogger(__name__)

USER_AUTH_MODES = ("sso", "x-user-id")
SSO_PROVIDER = "mchat"
ALREADY_MEMBER = "이미 대화방 멤버입니다"  # src/chat/service.py add_member


@final
class AgentChatClient:
    """Calls of the chat API; ``user`` arguments are the agent's user ids."""

    def __init__(self, http: AgentHttp, *, service_email: str, service_password: str,
                 user_auth: str = "sso") -> None:
        if user_auth not in USER_AUTH_MODES:
            raise ConfigError([f"CHAT_AGENT_USER_AUTH must be one of {USER_AUTH_MODES}"])
        self._http = http
        self._email = service_email
        self._password = service_password
        self.user_auth = user_auth
        self._service_token: str | None = None
        self._tokens: dict[str, str] = {}  # agent user id -> Bearer token (sso mode)

    def __repr__(self) -> str:  # no password, no token
        return f"AgentChatClient({self._http!r}, user_auth={self.user_auth!r})"

    # -- authentication ----------------------------------------------------------------------

    async def _service_headers(self, *, fresh: bool = False) -> dict[str, str]:
        if self._service_token is None or fresh:
            answer = await self._http.request("POST", "auth/login", json={
                "email": self._email, "password": self._password})
            self._service_token = _token(answer)
        return {"Authorization": f"Bearer {self._service_token}"}

    async def as_service(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request as the service account (one fresh login on a 401)."""
        try:
            return await self._http.request(method, path, headers=await self._service_headers(),
                                            **kwargs)
        except Unauthorized:
            headers = await self._service_headers(fresh=True)
            return await self._http.request(method, path, headers=headers, **kwargs)

    async def user_login(self, *, name: str, email: str) -> str:
        """The agent's user id for ``email`` (matched, or created under ``name``)."""
        if self.user_auth == "sso":
            answer = await self._http.request("POST", "auth/sso", json={
                "email": email, "name": name, "sso_provider": SSO_PROVIDER, "sso_id": email})
            user = answer.get("user") if isinstance(answer, dict) else None
            if not isinstance(user, dict) or not isinstance(user.get("id"), str):
                raise ChatServiceError("the memory agent's sso login returned no user")
            self._tokens[user["id"]] = _token(answer)
            return str(user["id"])
        for _attempt in range(2):
            users = await self._http.request("GET", "users")
            for row in users if isinstance(users, list) else []:
                if isinstance(row, dict) and row.get("email") == email:
                    return str(row["id"])
            try:
                created = await self._http.request("POST", "users",
                                                   json={"name": name, "email": email})
            except HttpStatusError as exc:
                if exc.status == 400:  # created meanwhile (a race): list again
                    continue
                raise
            return str(created["id"])
        raise ChatServiceError("the memory agent neither lists nor creates the user")

    async def _user_headers(self, user: str, email: str, name: str) -> dict[str, str]:
        if self.user_auth == "x-user-id":
            return {"X-User-ID": user}
        if user not in self._tokens:
            await self.user_login(name=name, email=email)
        return {"Authorization": f"Bearer {self._tokens[user]}"}

    async def as_user(self, user: str, email: str, name: str, method: str, path: str,
                      **kwargs: Any) -> Any:
        """A request as one person (a new token once on a 401)."""
        headers = await self._user_headers(user, email, name)
        try:
            return await self._http.request(method, path, headers=headers, **kwargs)
        except Unauthorized:
            self._tokens.pop(user, None)
            headers = await self._user_headers(user, email, name)
            return await self._http.request(method, path, headers=headers, **kwargs)

    # -- rooms -------------------------------------------------------------------------------

    async def find_or_create_room(self, name: str) -> str:
        """The service account's room named ``name`` (unique: it carries our room id), or a new
        one; listing first makes a crash between create and our mapping harmless."""
        rooms = await self.as_service("GET", "chat-rooms")
        for room in rooms if isinstance(rooms, list) else []:
            if isinstance(room, dict) and room.get("name") == name:
                return str(room["id"])
        created = await self.as_service("POST", "chat-rooms",
                                        json={"name": name, "room_type": "personal"})
        return str(created["id"])

    async def add_member(self, room: str, user: str) -> None:
        """Idempotent: "already a member" (403 with that detail) is success."""
        try:
            await self.as_service("POST", f"chat-rooms/{room}/members",
                                  json={"user_id": user, "role": "member"})
        except HttpStatusError as exc:
            if exc.status == 403 and exc.detail == ALREADY_MEMBER:
                return
            raise

    async def remove_member(self, room: str, user: str) -> None:
        """Idempotent: not a member (404) is success."""
        try:
            await self.as_service("DELETE", f"chat-rooms/{room}/members/{user}")
        except HttpStatusError as exc:
            if exc.status != 404:
                raise

    async def messages(self, room: str, user: str, email: str, name: str,
                       page: int = 200) -> list[Mapping[str, Any]]:
        """All of a room's messages, oldest first (the server pages from the oldest)."""
        found: list[Mapping[str, Any]] = []
        while True:
            rows = await self.as_user(user, email, name, "GET", f"chat-rooms/{room}/messages",
                                      params={"limit": page, "offset": len(found)})
            batch = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
            found += batch
            if len(batch) < page:
                return found


def _token(answer: Any) -> str:
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise ChatServiceError("the memory agent's login returned no access token")
    return token


__all__ = ["ALREADY_MEMBER", "USER_AUTH_MODES", "AgentChatClient"]
