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
        router.add("POST", f"{api}/users/ids", self.users_by_ids)
        router.add("GET", f"{api}/users/me/teams", self.my_teams)
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

    async def my_teams(self, request: Request) -> Response:
        teams = self.state.teams_of(request.caller.id)
        return json_response([self.state.render_team(t) for t in teams])

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
