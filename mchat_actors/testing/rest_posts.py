"""REST v4 handlers: posts, channel post lists, threads and reactions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from .apperror import (
    AppError,
    invalid_body_param,
    invalid_param,
    permission_denied,
    post_not_found,
)
from .models import is_valid_id
from .postlist import channel_posts, thread
from .rest_users import page_args
from .routing import Request, Response, Router, json_response, status_ok

if TYPE_CHECKING:
    from .app import FakeApp

MAX_IDS = 1000


@attrs.define(eq=False)
class PostHandlers:
    app: FakeApp

    def register(self, router: Router) -> None:
        api = "/api/v4"
        router.add("POST", f"{api}/posts", self.create_post)
        router.add("POST", f"{api}/posts/ids", self.posts_by_ids)
        router.add("POST", f"{api}/posts/ephemeral", self.create_ephemeral)
        router.add("GET", f"{api}/posts/{{post_id}}", self.get_post)
        router.add("DELETE", f"{api}/posts/{{post_id}}", self.delete_post)
        router.add("PUT", f"{api}/posts/{{post_id}}/patch", self.patch_post)
        router.add("GET", f"{api}/posts/{{post_id}}/thread", self.get_thread)
        router.add("GET", f"{api}/posts/{{post_id}}/reactions", self.get_reactions)
        router.add("GET", f"{api}/channels/{{channel_id}}/posts", self.channel_posts)
        router.add("POST", f"{api}/reactions", self.add_reaction)
        router.add("DELETE", f"{api}/users/{{user_id}}/posts/{{post_id}}/reactions/{{emoji_name}}",
                   self.remove_reaction)

    async def create_post(self, request: Request) -> Response:
        body = request.json_object("post")
        channel_id = body.get("channel_id", "")
        message = body.get("message", "")
        root_id = body.get("root_id", "") or ""
        props = body.get("props") or {}
        file_ids = body.get("file_ids") or []
        pending = body.get("pending_post_id", "") or ""
        post_type = body.get("type", "") or ""
        if not (isinstance(channel_id, str) and isinstance(message, str)
                and isinstance(root_id, str) and isinstance(props, dict)
                and isinstance(file_ids, list) and isinstance(pending, str)
                and isinstance(post_type, str)):
            raise invalid_body_param("post")
        post, _created = self.app.create_post(
            request.caller, channel_id, message, root_id=root_id, props=props,
            file_ids=[str(f) for f in file_ids], pending_post_id=pending, post_type=post_type,
            set_online=request.arg("set_online") != "false",
        )
        return json_response(post, 201)

    async def create_ephemeral(self, request: Request) -> Response:
        """``{"user_id", "post": {"channel_id", "message", "root_id"?}}`` -> 201 the post."""
        body = request.json_object("post")
        user_id, post = body.get("user_id"), body.get("post")
        if not isinstance(user_id, str) or not is_valid_id(user_id):
            raise invalid_body_param("user_id")
        if not isinstance(post, dict):
            raise invalid_body_param("post")
        channel_id, message = post.get("channel_id"), post.get("message", "")
        root_id = post.get("root_id", "") or ""
        if not (isinstance(channel_id, str) and isinstance(message, str)
                and isinstance(root_id, str)):
            raise invalid_body_param("post")
        created = self.app.create_ephemeral_post(request.caller, user_id, channel_id, message,
                                                 root_id)
        return json_response(created, 201)

    async def get_post(self, request: Request) -> Response:
        post = self._readable(request, request.params["post_id"])
        return json_response(self.app.state.render_post(post))

    async def posts_by_ids(self, request: Request) -> Response:
        ids = request.json("post_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise invalid_param("post_ids")
        if len(ids) > MAX_IDS:
            raise AppError(400, "api.post.posts_by_ids.invalid_body.request_error",
                           f"Number of post ids should not exceed {MAX_IDS}.")
        state = self.app.state
        out = []
        for post_id in dict.fromkeys(ids):
            post = state.posts.get(post_id)
            if post is None:
                continue
            channel = state.channels[str(post["channel_id"])]
            if state.can_read(request.caller, channel):
                out.append(state.render_post(post))
        return json_response(out)

    async def patch_post(self, request: Request) -> Response:
        patch = request.json_object("patch")
        return json_response(self.app.edit_post(request.caller, request.params["post_id"], patch))

    async def delete_post(self, request: Request) -> Response:
        self.app.delete_post(request.caller, request.params["post_id"])
        return status_ok()

    async def get_thread(self, request: Request) -> Response:
        post = self._readable(request, request.params["post_id"])
        return json_response(thread(self.app.state, str(post["id"])))

    async def channel_posts(self, request: Request) -> Response:
        since_raw = request.arg("since")
        try:
            since = int(since_raw) if since_raw else 0
        except ValueError:
            raise invalid_param("since") from None
        after, before = request.arg("after"), request.arg("before")
        for name, value in (("after", after), ("before", before)):
            if value and not is_valid_id(value):
                raise invalid_param(name)
        if request.arg("include_deleted") == "true" and not request.caller.is_admin:
            raise permission_denied()
        channel = self.app.state.readable_channel(request.caller, request.params["channel_id"])
        page, per_page = page_args(request)
        return json_response(channel_posts(
            self.app.state, channel.id, since=since, after=after, before=before, page=page,
            per_page=per_page, skip_threads=request.arg("skipFetchThreads") == "true",
        ))

    async def add_reaction(self, request: Request) -> Response:
        body = request.json_object("reaction")
        fields = [body.get(k) for k in ("user_id", "post_id", "emoji_name")]
        if not all(isinstance(f, str) and f for f in fields):
            raise invalid_body_param("reaction")
        user_id, post_id, emoji = (str(f) for f in fields)
        return json_response(self.app.add_reaction(request.caller, user_id, post_id, emoji))

    async def remove_reaction(self, request: Request) -> Response:
        p = request.params
        self.app.remove_reaction(request.caller, p["user_id"], p["post_id"], p["emoji_name"])
        return status_ok()

    async def get_reactions(self, request: Request) -> Response:
        post = self._readable(request, request.params["post_id"])
        reactions = self.app.state.reactions.get(str(post["id"]), {})
        return json_response([dict(r) for r in reactions.values()])

    def _readable(self, request: Request, post_id: str) -> dict[str, object]:
        state = self.app.state
        post = state.posts.get(post_id)
        if post is None or post["delete_at"]:
            raise post_not_found()
        if not state.can_read(request.caller, state.channels[str(post["channel_id"])]):
            raise permission_denied()
        return post
