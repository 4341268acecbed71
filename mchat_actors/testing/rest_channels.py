"""REST v4 handlers: channels and channel members."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from .apperror import (
    AppError,
    channel_not_found,
    invalid_body_param,
    permission_denied,
    user_not_found,
)
from .models import FakeChannel, is_valid_id
from .rest_users import page_args
from .routing import Request, Response, Router, json_response, status_ok

if TYPE_CHECKING:
    from .channels import ChannelOps
    from .state import FakeState


@attrs.define(eq=False)
class ChannelHandlers:
    ops: ChannelOps

    @property
    def state(self) -> FakeState:
        return self.ops.app.state

    def register(self, router: Router) -> None:
        api = "/api/v4"
        router.add("GET", f"{api}/users/{{user_id}}/teams/{{team_id}}/channels", self.my_channels)
        router.add("GET", f"{api}/teams/{{team_id}}/channels", self.public_channels)
        router.add("GET", f"{api}/teams/{{team_id}}/channels/name/{{name}}", self.channel_by_name)
        router.add("GET", f"{api}/teams/name/{{team_name}}/channels/name/{{name}}",
                   self.channel_by_team_and_name)
        router.add("POST", f"{api}/channels", self.create_channel)
        router.add("POST", f"{api}/channels/direct", self.create_direct)
        router.add("POST", f"{api}/channels/group", self.create_group)
        router.add("GET", f"{api}/channels/{{channel_id}}", self.get_channel)
        router.add("DELETE", f"{api}/channels/{{channel_id}}", self.delete_channel)
        router.add("GET", f"{api}/channels/{{channel_id}}/members", self.members)
        router.add("POST", f"{api}/channels/{{channel_id}}/members", self.add_member)
        router.add("GET", f"{api}/channels/{{channel_id}}/members/{{user_id}}", self.member)
        router.add("DELETE", f"{api}/channels/{{channel_id}}/members/{{user_id}}",
                   self.remove_member)

    async def my_channels(self, request: Request) -> Response:
        caller = request.caller
        if request.params["user_id"] != caller.id and not caller.is_admin:
            raise permission_denied()
        team_id = request.params["team_id"]
        if not self.state.is_team_member(team_id, request.params["user_id"]):
            raise permission_denied()
        include_deleted = request.arg("include_deleted") == "true"
        user_id = request.params["user_id"]
        out = [
            self.state.render_channel(c) for c in self.state.channels.values()
            if self.state.is_member(c.id, user_id)
            and (c.team_id == team_id or c.is_direct_or_group)
            and (include_deleted or not c.delete_at)
        ]
        return json_response(out)

    async def public_channels(self, request: Request) -> Response:
        team_id = request.params["team_id"]
        if not (self.state.is_team_member(team_id, request.caller.id) or request.caller.is_admin):
            raise permission_denied()
        page, per_page = page_args(request)
        public = sorted((c for c in self.state.channels.values()
                         if c.team_id == team_id and c.type == "O" and not c.delete_at),
                        key=lambda c: c.display_name.lower())
        chunk = public[page * per_page:page * per_page + per_page]
        return json_response([self.state.render_channel(c) for c in chunk])

    async def channel_by_team_and_name(self, request: Request) -> Response:
        team = next((t for t in self.state.teams.values()
                     if t.name == request.params["team_name"]), None)
        if team is None:
            raise AppError(404, "app.team.get_by_name.missing.app_error",
                           "Unable to find the existing team.")
        request.params["team_id"] = team.id
        return await self.channel_by_name(request)

    async def channel_by_name(self, request: Request) -> Response:
        team_id = request.params["team_id"]
        name = request.params["name"]
        include_deleted = request.arg("include_deleted") == "true"
        for channel in self.state.channels.values():
            if channel.team_id == team_id and channel.name == name and (
                include_deleted or not channel.delete_at
            ):
                if self.state.can_read(request.caller, channel):
                    return json_response(self.state.render_channel(channel))
                break
        raise AppError(404, "app.channel.get_by_name.missing.app_error", "Channel does not exist.")

    async def get_channel(self, request: Request) -> Response:
        channel = self.state.readable_channel(request.caller, request.params["channel_id"])
        return json_response(self.state.render_channel(channel))

    async def create_channel(self, request: Request) -> Response:
        body = request.json_object("channel")
        fields = {k: body.get(k, "") for k in ("team_id", "name", "display_name", "type",
                                               "purpose", "header")}
        if not all(isinstance(v, str) for v in fields.values()):
            raise invalid_body_param("channel")
        channel = self.ops.create_channel(
            request.caller, str(fields["team_id"]), str(fields["name"]),
            str(fields["display_name"]), str(fields["type"]), purpose=str(fields["purpose"]),
            header=str(fields["header"]),
        )
        return json_response(self.state.render_channel(channel), 201)

    async def create_direct(self, request: Request) -> Response:
        ids = request.json("user_ids")
        if (not isinstance(ids, list) or len(ids) != 2
                or not all(isinstance(i, str) and is_valid_id(i) for i in ids)):
            raise invalid_body_param("user_ids")
        users = [self.state.users.get(i) for i in ids]
        if users[0] is None or users[1] is None:
            raise user_not_found()
        channel, _created = self.ops.direct(request.caller, users[0], users[1])
        return json_response(self.state.render_channel(channel), 201)

    async def create_group(self, request: Request) -> Response:
        ids = request.json("user_ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise invalid_body_param("user_ids")
        users = [self.state.users.get(i) for i in ids]
        if any(u is None for u in users):
            raise user_not_found()
        channel, _created = self.ops.group(request.caller, [u for u in users if u is not None])
        return json_response(self.state.render_channel(channel), 201)

    async def delete_channel(self, request: Request) -> Response:
        channel = self._channel(request)
        self.ops.delete_channel(request.caller, channel)
        return status_ok()

    async def members(self, request: Request) -> Response:
        channel = self.state.readable_channel(request.caller, request.params["channel_id"])
        page, per_page = page_args(request)
        ids = self.state.member_ids(channel.id)[page * per_page:page * per_page + per_page]
        return json_response([self.state.render_member(channel.id, i) for i in ids])

    async def member(self, request: Request) -> Response:
        channel = self.state.readable_channel(request.caller, request.params["channel_id"])
        return json_response(self.state.render_member(channel.id, request.params["user_id"]))

    async def add_member(self, request: Request) -> Response:
        channel = self._channel(request)
        body = request.json_object("user_id")
        user_id = body.get("user_id")
        if not isinstance(user_id, str) or not is_valid_id(user_id):
            raise invalid_body_param("user_id")
        user = self.state.users.get(user_id)
        if user is None:
            raise user_not_found()
        return json_response(self.ops.add_member(request.caller, channel, user), 201)

    async def remove_member(self, request: Request) -> Response:
        channel = self._channel(request)
        user = self.state.users.get(request.params["user_id"])
        if user is None:
            raise user_not_found()
        self.ops.remove_member(request.caller, channel, user)
        return status_ok()

    def _channel(self, request: Request) -> FakeChannel:
        channel = self.state.channels.get(request.params["channel_id"])
        if channel is None:
            raise channel_not_found()
        return channel
