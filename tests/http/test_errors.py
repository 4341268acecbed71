from __future__ import annotations

import logging

import pytest

from mchat_actors.http import status
from tests.http.conftest import WEBHOOK_TOKEN, make_config, open_harness

HOOK = "/mchat/webhook/outgoing"


async def test_bodies_over_the_limit_are_413(tmp_path):
    """A declared or streamed body over MCHAT_MAX_BODY_BYTES is 413 before any work."""
    async with open_harness(make_config(tmp_path, max_body_bytes=100)) as h:
        big = b"token=" + b"x" * 200
        r = await h.client.post(HOOK, content=big,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413
        assert r.json() == {"error": "content too large",
                            "detail": "the body may be at most 100 bytes"}

        async def chunks():
            for _ in range(10):
                yield b"x" * 30

        r = await h.client.post(HOOK, content=chunks(),
                                headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert r.json()["error"] == "content too large"
        r = await h.client.post("/api/v1/mchat/mappings/channels", content=chunks(),
                                headers={**h.admin(), "Content-Type": "application/json"})
        assert r.status_code == 413
        assert h.chat.calls == []
        r = await h.client.post(HOOK, json={"token": WEBHOOK_TOKEN})
        assert r.status_code == 400  # small bodies still get through


async def test_a_bad_content_length_is_400(harness):
    """A Content-Length that is not a number is a clear 400."""
    r = await harness.client.post(HOOK, content=b"{}", headers={"Content-Length": "lots",
                                                               "Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["detail"] == "invalid Content-Length"


async def test_unknown_routes_and_wrong_methods_are_json(harness):
    """404 and 405 are JSON errors too (405 keeps its Allow header)."""
    r = await harness.client.get("/nope")
    assert (r.status_code, r.json()) == (404, {"error": "not found", "detail": None})
    r = await harness.client.delete("/mchat/health")
    assert r.status_code == 405
    assert r.json()["error"] == "method not allowed"
    assert r.headers["allow"] == "GET"
    r = await harness.client.get(HOOK)
    assert r.status_code == 405
    r = await harness.client.put("/metrics")
    assert r.status_code == 405


async def test_an_unexpected_error_is_a_plain_500_and_counted(harness, monkeypatch, caplog):
    """A bug answers 500 JSON without internals; it is logged and shows in the metrics."""
    async def boom(s):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(status, "collect", boom)
    with caplog.at_level(logging.ERROR, logger="mchat_actors.http.errors"):
        r = await harness.client.get("/api/v1/mchat/status", headers=harness.admin())
    assert r.status_code == 500
    assert r.json() == {"error": "internal error", "detail": None}
    assert "internals" not in r.text and "Traceback" not in r.text
    assert "RuntimeError" in caplog.text
    metrics = (await harness.client.get("/metrics")).text
    assert "mchat_http_unexpected_errors_total 1.0" in metrics
    assert (await harness.client.get("/mchat/health")).status_code == 200


@pytest.mark.parametrize("path", ["/mchat/health", "/metrics", "/openapi.json", "/admin"])
async def test_read_only_routes_answer_get(harness, path):
    """The public read-only routes answer 200 without credentials."""
    assert (await harness.client.get(path)).status_code == 200
