from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from mchat_actors.http.app import create_app
from tests.http.conftest import WEBHOOK_TOKEN

REQUIRED = (
    "mchat_webhook_requests", "mchat_webhook_latency_seconds", "mchat_webhook_errors",
    "mchat_messages_processed", "mchat_ai_responses", "mchat_memory_saved",
    "mchat_connection_state", "mchat_reconnects", "mchat_ws_resumes", "mchat_backfills",
    "mchat_ws_events", "mchat_mailbox_depth", "mchat_chat_latency_seconds",
    "mchat_outbox_depth", "mchat_outbox_oldest_pending_age_seconds", "mchat_rest_rate_limited",
    "mchat_ratelimit_waits", "mchat_ratelimit_wait_seconds",
)


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(fams: dict, name: str, **labels) -> float:
    for fam in fams.values():
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise KeyError((name, labels))


async def test_metrics_expose_every_required_family(harness):
    """The scrape is Prometheus text and holds every family the dashboard needs."""
    r = await harness.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    fams = families(r.text)
    for name in REQUIRED:
        assert name in fams, name
    assert sample(fams, "mchat_connection_state", state="connecting") == 1.0
    for cls in ("reply", "question", "background"):  # the bucket's classes (issue #12)
        assert sample(fams, "mchat_ratelimit_acquired_by_class_total", **{"class": cls}) >= 0


async def test_metrics_count_webhooks_messages_and_answers(harness):
    """After an answered webhook and a refused one the counters and histogram moved."""
    payload = {"token": WEBHOOK_TOKEN, "post_id": "p1", "channel_id": "c1", "user_id": "u1",
               "text": "@ai hi", "timestamp": 1_700_000_000_000}
    assert (await harness.client.post("/mchat/webhook/outgoing", json=payload)).status_code == 200
    bad = {**payload, "token": "nope"}
    assert (await harness.client.post("/mchat/webhook/outgoing", json=bad)).status_code == 401
    harness.rt.reconnect_stats.connection.events["posted"] += 3
    fams = families((await harness.client.get("/metrics")).text)
    assert sample(fams, "mchat_webhook_requests_total", endpoint="outgoing", status="200") == 1
    assert sample(fams, "mchat_webhook_errors_total", endpoint="outgoing",
                  reason="unauthorized") == 1
    assert sample(fams, "mchat_webhook_latency_seconds_count", endpoint="outgoing") == 2
    assert sample(fams, "mchat_messages_processed_total", status="answered") == 1
    assert sample(fams, "mchat_ai_responses_total") == 1
    assert sample(fams, "mchat_replies_total", path="webhook_response") == 1
    assert sample(fams, "mchat_chat_latency_seconds_count") == 1
    assert sample(fams, "mchat_ws_events_total", type="posted") == 3
    assert sample(fams, "mchat_outbox_depth", status="sent") == 1


async def test_each_app_has_its_own_registry(harness):
    """A second app on the same runtime starts from zero: nothing is module-level."""
    await harness.client.get("/mchat/health")
    other = create_app(harness.rt)
    assert other.state.surface.stats.responses == {}
    assert other.state.surface.metrics[0] is not harness.app.state.surface.metrics[0]
