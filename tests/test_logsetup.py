"""Log formats (text, JSON via structlog) and redaction of every line."""

from __future__ import annotations

import io
import json
import logging
import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mchat_actors import logsetup


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def emit(fmt: str, secrets: list[str], fn) -> str:
    buf = io.StringIO()
    logsetup.configure("DEBUG", fmt, stream=buf)
    logsetup.add_secrets(secrets)
    fn(logging.getLogger("mchat_actors.t"))
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_known_secrets_are_masked_in_messages_args_and_tracebacks(restore_root, fmt):
    secret = 'tok"en\\with-odd-chars-77'

    def log(logger: logging.Logger) -> None:
        logger.info("connecting with %s", secret)
        try:
            raise RuntimeError(f"server said {secret}")
        except RuntimeError:
            logger.exception("failed")

    out = emit(fmt, [secret], log)
    assert "odd-chars-77" not in out and "[redacted]" in out
    if fmt == "json":
        assert all(json.loads(line) for line in out.splitlines())


@pytest.mark.parametrize("line", [
    "Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123",
    "headers {'X-API-Key': 'k-1234567890abcdef'}",
    "url=https://user:hunter2@proxy.corp:3128/",
    '{"api_key": "AKIA1234567890ZZ"}',
    "key sk-proj-abcdefghijklmnop",
    "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijklmnopqrstuv",
    "password=correct-horse-battery",
])
def test_credential_shapes_are_masked(line):
    out = logsetup.Redactor()(line)
    assert "[redacted]" in out
    for fragment in ("abcdefghijklmnopqrstuvwxyz0123", "k-1234567890abcdef", "hunter2",
                     "AKIA1234567890ZZ", "sk-proj-abc", "eyJzdWIiOiIxMjM0In0",
                     "correct-horse"):
        assert fragment not in out


def test_ordinary_lines_are_left_alone():
    for line in ("reconnect: websocket closed (failure 1 in a row)",
                 "mattermost: GET /users/me: the token was rejected (401 api.context)",
                 "token bucket: 10 req/s", "handler: post abcdefghijklmnopqrstuvwxyz answered"):
        assert logsetup.Redactor()(line) == line


def test_json_lines_carry_the_structured_fields(restore_root):
    out = emit("json", [], lambda lg: lg.info("handler: post p1 answered", extra=logsetup.fields(
        channel_id="c1", user_id="u1", post_id="p1", action="answered", latency_s=0.25,
        memory_count=3)))
    record = json.loads(out)
    assert record["message"] == "handler: post p1 answered"
    assert record["level"] == "info" and record["logger"] == "mchat_actors.t"
    assert record["timestamp"].endswith("Z")
    assert (record["mchat_channel_id"], record["mchat_user_id"], record["action"],
            record["latency_ms"], record["memory_count"]) == ("c1", "u1", "answered", 250.0, 3)


def test_text_is_the_human_default(restore_root):
    out = emit("text", [], lambda lg: lg.warning("hello %d", 5))
    assert out.rstrip().endswith("WARNING mchat_actors.t: hello 5")


@given(st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=8, max_size=40),
       st.text(max_size=60), st.sampled_from(["text", "json"]))
def test_a_registered_secret_never_survives(secret, noise, fmt):
    assume(secret not in logsetup.REDACTED)
    root = logging.getLogger()
    saved = list(root.handlers)
    try:
        out = emit(fmt, [secret], lambda lg: lg.error("%s %s %r", noise, secret, {"k": secret}))
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved:
            root.addHandler(h)
    assert secret not in out
