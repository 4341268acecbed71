"""REST v4 handlers: users, teams, system ping and the old-format client config."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from .apperror import (
    AppError,
    invalid_body_param,
    invalid_param,
    permission_denied,
    user_not_found,
)
from .models import SERVER_VERSION
from .routing import Request, Response, Router, json_response

if TYPE_CHECKING:
    from .state import FakeState

PER_PAGE_DEFAULT = 60
PER_PAGE_MAX = 200


def page_args(request: Request) -> tuple[int, int]:
    """``page``/``per_page`` as the server parses them: bad values fall back to defaults,
    ``per_page`` is clamped to 200."""
    page = _int_or(request.arg("page"), 0)
    per_page = _int_or(request.arg("per_page"), PER_PAGE_DEFAULT)
    return page, min(per_page, PER_PAGE_MAX)


def _int_or(raw: str, default: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value >= 0 else default


@attrs.define(eq=False)
class UserHandlers:
    state: FakeState

    def register(self, router: Router) -> None:
        api = "/api/v4"
        router.add("GET", f"{api}/system/ping", self.ping, auth=False)
        router.add("GET", f"{api}/config/client", self.client_config, auth=False)
        router.add("GET", f"{api}/users", self.list_users)
        router.add("POST", f"{api}/users/ids", self.users_by_ids)
        router.add("POST", f"{api}/users/usernames", self.users_by_usernames)
        router.add("GET", f"{api}/users/{{user_id}}/teams", self.teams_of_user)
        router.add("GET", f"{api}/users/{{user_id}}/teams/members", self.team_members_of_user)
        router.add("GET", f"{api}/teams/{{team_id}}/members/{{user_id}}", self.team_member)
        router.add("GET", f"{api}/users/username/{{username}}", self.user_by_username)
        router.add("GET", f"{api}/users/email/{{email}}", self.user_by_email)
        router.add("GET", f"{api}/users/{{user_id}}", self.get_user)
        router.add("GET", f"{api}/teams/name/{{name}}", self.team_by_name)
        router.add("GET", f"{api}/teams/{{team_id}}", self.get_team)

    async def ping(self, request: Request) -> Response:
        return json_response({
            "status": "OK", "ActiveSearchBackend": "database", "AndroidLatestVersion": "",
            "AndroidMinVersion": "", "IosLatestVersion": "", "IosMinVersion": "",
        })

    async def client_config(self, request: Request) -> Response:
        if request.arg("format") != "old":
            raise AppError(501, "api.config.client.old_format.app_error",
                           "New format for the client configuration is not supported yet. "
                           "Please specify format=old in the query string.")
        return json_response({
            "Version": SERVER_VERSION, "BuildNumber": "0", "BuildHash": "fake",
            "SiteName": "Mattermost (fake)", "SiteURL": "", "MaxPostSize": "16383",
            "EnableBotAccountCreation": "true", "EnableUserAccessTokens": "true",
            "EnableOutgoingWebhooks": "true", "EnableIncomingWebhooks": "true",
            "EnableCommands": "true", "FeatureFlagCollapsedThreads": "true",
            "CollapsedThreads": "disabled", "DiagnosticsEnabled": "false",
        })

    async def get_user(self, request: Request) -> Response:
        user = self.state.users.get(request.params["user_id"])
        if user is None:
            raise user_not_found()
        return json_response(self.state.render_user(user))

    async def user_by_username(self, request: Request) -> Response:
        wanted = request.params["username"].lower()
        for user in self.state.users.values():
            if user.username.lower() == wanted:
                return json_response(self.state.render_user(user))
        raise user_not_found()

    async def user_by_email(self, request: Request) -> Response:
        email = request.params["email"].lower()
        for user in self.state.users.values():
            if user.email.lower() == email:
                return json_response(self.state.render_user(user))
        raise user_not_found()

    async def users_by_ids(self, request: Request) -> Response:
        ids = request.json("user_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise invalid_body_param("user_ids")
        since_raw = request.arg("since")
        try:
            since = int(since_raw) if since_raw else 0
        except ValueError:
            raise invalid_param("since") from None
        found = [self.state.users[i] for i in dict.fromkeys(ids) if i in self.state.users]
        return json_response([self.state.render_user(u) for u in found if u.create_at > since])

    async def list_users(self, request: Request) -> Response:
        """``GET /users`` with ``in_team``/``in_channel`` filters and paging, by username."""
        users = sorted(self.state.users.values(), key=lambda u: u.username)
        in_team, in_channel = request.arg("in_team"), request.arg("in_channel")
        if in_team:
            if not (self.state.is_team_member(in_team, request.caller.id)
                    or request.caller.is_admin):
                raise permission_denied()
            users = [u for u in users if self.state.is_team_member(in_team, u.id)]
        if in_channel:
            channel = self.state.readable_channel(request.caller, in_channel)
            users = [u for u in users if self.state.is_member(channel.id, u.id)]
        page, per_page = page_args(request)
        chunk = users[page * per_page:page * per_page + per_page]
        return json_response([self.state.render_user(u) for u in chunk])

    async def users_by_usernames(self, request: Request) -> Response:
        names = request.json("usernames")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise invalid_body_param("usernames")
        wanted = {n.lower() for n in names}
        return json_response([self.state.render_user(u) for u in self.state.users.values()
                              if u.username.lower() in wanted])

    async def teams_of_user(self, request: Request) -> Response:
        """``users/{user_id}/teams`` (``me`` too): another user's teams need manage_system."""
        user_id = self._self_or_admin(request)
        teams = self.state.teams_of(user_id)
        return json_response([self.state.render_team(t) for t in teams])

    async def team_members_of_user(self, request: Request) -> Response:
        user_id = self._self_or_admin(request)
        return json_response([self._render_team_member(t.id, user_id)
                              for t in self.state.teams_of(user_id)])

    async def team_member(self, request: Request) -> Response:
        team_id, user_id = request.params["team_id"], request.params["user_id"]
        if team_id not in self.state.teams:
            raise AppError(404, "app.team.get.find.app_error", "Unable to find the existing team.")
        if not (self.state.is_team_member(team_id, request.caller.id) or request.caller.is_admin):
            raise permission_denied()
        if not self.state.is_team_member(team_id, user_id):
            raise AppError(404, "app.team.get_member.missing.app_error",
                           "No team member found for that user ID and team ID.")
        return json_response(self._render_team_member(team_id, user_id))

    def _self_or_admin(self, request: Request) -> str:
        """The path's user id when it is the caller or the caller is a system admin (403 else:
        the real server checks ``manage_system``/``edit_other_users`` for another user)."""
        user_id = request.params["user_id"]
        if user_id != request.caller.id and not request.caller.is_admin:
            raise permission_denied()
        if user_id not in self.state.users:
            raise user_not_found()
        return user_id

    def _render_team_member(self, team_id: str, user_id: str) -> dict[str, object]:
        user = self.state.users[user_id]
        admin = user.is_admin
        return {"team_id": team_id, "user_id": user_id,
                "roles": "team_user team_admin" if admin else "team_user", "delete_at": 0,
                "scheme_guest": False, "scheme_user": True, "scheme_admin": admin,
                "explicit_roles": ""}

    async def get_team(self, request: Request) -> Response:
        team = self.state.teams.get(request.params["team_id"])
        if team is None:
            raise AppError(404, "app.team.get.find.app_error", "Unable to find the existing team.")
        if not (self.state.is_team_member(team.id, request.caller.id) or request.caller.is_admin):
            raise permission_denied()
        return json_response(self.state.render_team(team))

    async def team_by_name(self, request: Request) -> Response:
        name = request.params["name"]
        for team in self.state.teams.values():
            if team.name == name:
                return json_response(self.state.render_team(team))
        raise AppError(404, "app.team.get_by_name.missing.app_error",
                       "Unable to find the existing team.")
