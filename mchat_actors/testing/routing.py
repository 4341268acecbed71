"""Table-driven routing for the fake server: :class:`Request`, :class:`Response`, :class:`Router`.

Register a route with ``router.add("POST", "/hooks/{hook_id}", handler, auth=False)``.
Templates use ``{name}`` for one path segment. The parameters ``user_id``, ``team_id``,
``channel_id`` and ``post_id`` must be valid 26-char ids (``user_id`` may also be ``me``,
replaced by the caller's id) or the request gets 400 ``api.context.invalid_url_param.app_error``,
as on the real server; other parameters are passed as they are. Handlers are
``async def handler(request: Request) -> Response`` and raise :class:`AppError` for errors.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

import attrs
import orjson
import trio

from .apperror import (
    AppError,
    invalid_body_param,
    invalid_url_param,
    route_not_found,
    session_expired,
)
from .models import FakeUser, is_valid_id


@attrs.frozen
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def json_response(obj: object, status: int = 200) -> Response:
    return Response(status, orjson.dumps(obj))


def status_ok() -> Response:
    return json_response({"status": "OK"})


@attrs.define(kw_only=True)
class Request:
    """One HTTP request as handlers see it."""

    method: str
    path: str
    query_string: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    client_ip: str
    request_id: str
    token: str | None = None
    user: FakeUser | None = None
    params: dict[str, str] = attrs.field(factory=dict)
    received_at: float = attrs.field(factory=trio.current_time)  # before any stall or latency
    _query: dict[str, list[str]] | None = None

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.query_string, keep_blank_values=True)
        return self._query

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    def json(self, name: str) -> object:
        """The body as JSON; 400 ``invalid_body_param(name)`` when it is not JSON."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise invalid_body_param(name) from None

    def json_object(self, name: str) -> dict[str, object]:
        body = self.json(name)
        if not isinstance(body, dict):
            raise invalid_body_param(name)
        return body

    @property
    def caller(self) -> FakeUser:
        """The authenticated user (routes with ``auth=True`` always have one)."""
        if self.user is None:
            raise session_expired()
        return self.user


Handler = Callable[[Request], Awaitable[Response]]
_ID_PARAMS = frozenset({"user_id", "team_id", "channel_id", "post_id"})


@attrs.frozen
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool


@attrs.define
class Router:
    routes: list[Route] = attrs.field(factory=list)

    def add(self, method: str, template: str, handler: Handler, *, auth: bool = True) -> None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        self.routes.append(Route(method, template, re.compile(f"^{regex}/?$"), handler, auth))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and its path parameters.

        Raises:
            AppError: 404 when no template matches, 405 when only the method is wrong.
        """
        path_matched = False
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            path_matched = True
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, found.groupdict()
        if path_matched:
            raise AppError(405, "api.context.405.app_error", "Method not allowed.")
        raise route_not_found()


def resolve_params(params: dict[str, str], user: FakeUser | None) -> dict[str, str]:
    """Check the id parameters and replace ``user_id=me``."""
    out = dict(params)
    for name, value in params.items():
        if name == "user_id" and value == "me" and user is not None:
            out[name] = user.id
        elif name in _ID_PARAMS and not is_valid_id(value):
            raise invalid_url_param(name)
    return out
