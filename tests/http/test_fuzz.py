"""Property-based runs against the HTTP surface over a real socket: no input gives a 5xx.

The server runs in its own thread and trio run (``ServerThread``) because schemathesis and the
fuzz use synchronous clients; schemathesis' in-process ASGI runner would drive the app on
asyncio, while this app runs on trio.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import checks

from tests.http.conftest import ADMIN_TOKEN, SECRETS, WEBHOOK_TOKEN, ServerThread, make_config

FUZZ = settings(max_examples=15, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerThread(make_config(tmp_path_factory.mktemp("fuzz"), listen="127.0.0.1:0")) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    # a new connection per request: the server may close a kept-alive connection whose
    # request body the route did not read, which would race with the next request
    with httpx.Client(base_url=server.url, timeout=10,
                      limits=httpx.Limits(max_keepalive_connections=0)) as c:
        yield c


@pytest.fixture(scope="module")
def schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


def operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


def valid_run(op):
    """A Hypothesis test sending schema-valid cases of ``op`` with the default checks."""
    integration = op.path.startswith("/mchat/")
    excluded = []
    if op.path == "/mchat/webhook/outgoing":  # the deferred answer is an empty body
        excluded = [checks.content_type_conformance, checks.response_schema_conformance]

    @FUZZ
    @given(case=op.as_strategy(), real_token=st.booleans())
    def run(case, real_token):
        if real_token and isinstance(case.body, dict) and integration:
            case.body["token"] = WEBHOOK_TOKEN
        case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                               excluded_checks=excluded)

    return run


def invalid_run(op):
    """A Hypothesis test sending schema-violating cases of ``op``: no 5xx."""
    @FUZZ
    @given(case=op.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE))
    def run(case):
        case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                               checks=[checks.not_a_server_error])

    return run


@pytest.mark.slow
def test_schemathesis_valid_requests_conform_to_the_document(schema):
    """Schema-valid requests get documented statuses and bodies, never a 5xx."""
    ops = operations(schema)
    assert len(ops) == 19  # 16 + the retry queue (list, retry, discard)
    for op in ops:
        valid_run(op)()


@pytest.mark.slow
def test_schemathesis_invalid_requests_never_get_a_server_error(schema):
    """Schema-violating requests are refused with 4xx, never a 5xx."""
    for op in operations(schema):
        try:
            invalid_run(op)()
        except Unsatisfiable:  # no parameters and no body: nothing can be made invalid
            assert not op.body and not any(True for _ in op.iter_parameters())


# ------------------------------------------------------------------ hand-written fuzz
PATHS = ["/mchat/health", "/metrics", "/mchat/webhook/outgoing", "/mchat/slash",
         "/api/v1/mchat/mappings/channels", "/api/v1/mchat/mappings/channels/{}/sync",
         "/api/v1/mchat/mappings/users", "/api/v1/mchat/status", "/api/v1/mchat/outbox",
         "/api/v1/mchat/outbox/{}/retry", "/api/v1/mchat/audit", "/admin", "/admin/{}",
         "/openapi.json", "/{}"]
FIELDS = ["token", "team_id", "channel_id", "channel_name", "user_id", "user_name", "post_id",
          "text", "timestamp", "command", "response_url", "file_ids", "enabled", "channel_id"]
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(
    str.strip)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=4),
    max_leaves=10)
fields = st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=30) | st.integers(), max_size=8)


@st.composite
def requests(draw):
    path = draw(st.sampled_from(PATHS))
    if "{}" in path:
        path = path.replace("{}", quote(draw(st.text(max_size=12)) or "x", safe=""))
    headers = {}
    auth = draw(st.sampled_from([None, f"Bearer {ADMIN_TOKEN}", f"Token {WEBHOOK_TOKEN}",
                                 "Bearer wrong", "custom"]))
    if auth == "custom":
        auth = draw(header_text)
    if auth is not None:
        headers["Authorization"] = auth
    kind = draw(st.sampled_from(["none", "bytes", "json", "form"]))
    body = b""
    if kind == "bytes":
        body = draw(st.binary(max_size=200))
    elif kind == "json":
        body = json.dumps(draw(json_values)).encode()
    elif kind == "form":
        data = draw(fields)
        if draw(st.booleans()):
            data["token"] = WEBHOOK_TOKEN
        body = urlencode(data).encode()
    content_type = draw(st.sampled_from([None, "application/json", "text/plain",
                                         "application/x-www-form-urlencoded", "custom"]))
    if content_type == "custom":
        content_type = draw(header_text)
    if content_type is not None:
        headers["Content-Type"] = content_type
    if draw(st.booleans()):
        headers[draw(st.sampled_from(["X-Forwarded-For", "Accept", "X-Extra"]))] = draw(
            header_text)
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                                   "HEAD"]))
    query = draw(st.dictionaries(st.text(max_size=8), st.text(max_size=16), max_size=3))
    return method, path, query, headers, body


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(request=requests())
def test_random_requests_never_get_a_server_error(client, request):
    """Any route, method, body, headers and query: 2xx-4xx, JSON errors, no secrets."""
    method, path, query, headers, body = request
    r = client.request(method, path, params=query, headers=headers, content=body)
    assert r.status_code < 500, (request, r.status_code, r.text)
    if r.status_code >= 400 and method != "HEAD":
        assert set(r.json()) == {"error", "detail"}, r.text
    for secret in SECRETS:
        assert secret not in r.text
