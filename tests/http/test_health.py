from __future__ import annotations

import time

import trio

from mchat_actors import outbox
from mchat_actors.http.context import HealthRules
from mchat_actors.http.health import assess
from mchat_actors.messages import ChannelId, ConnectionState, SendReply


def facts(state="websocket", state_age_s=1.0, since_sweep_s=1.0, writable=True, oldest=None):
    return {"connection": {"state": state, "state_age_s": state_age_s,
                           "since_sweep_s": since_sweep_s},
            "database": {"writable": writable}, "outbox": {"oldest_pending_age_s": oldest}}


def test_assess_ready_when_everything_is_fine():
    """A live WebSocket, a writable DB and a fresh outbox give no reasons."""
    assert assess(facts(), HealthRules(), 2.0) == []


def test_assess_reports_every_failed_rule():
    """Each rule contributes its own reason."""
    rules = HealthRules()
    assert assess(facts(writable=False), rules, 2.0) == ["database is not writable"]
    assert assess(facts(state="connecting", state_age_s=30), rules, 2.0) == []
    assert "connection connecting" in assess(facts(state="connecting", state_age_s=61),
                                             rules, 2.0)[0]
    assert assess(facts(state="polling", since_sweep_s=29), rules, 2.0) == []
    assert "no sweep" in assess(facts(state="polling", since_sweep_s=31), rules, 2.0)[0]
    assert "no sweep" in assess(facts(state="polling", since_sweep_s=51), rules, 10.0)[0]
    assert assess(facts(state="polling", since_sweep_s=49), rules, 10.0) == []
    assert "outbox" in assess(facts(oldest=601), rules, 2.0)[0]
    assert len(assess(facts(state="stopped", state_age_s=99, writable=False, oldest=999),
                      rules, 2.0)) == 3


async def test_health_is_200_with_the_facts_at_start(harness):
    """A fresh start (still connecting) is ready and reports state, DB and outbox."""
    r = await harness.client.get("/mchat/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["connection"]["state"] == "connecting"
    assert body["connection"]["last_event_age_s"] is None
    assert body["database"] == {"writable": True, "backend": "sqlite",
                                "where": harness.rt.config.db_path}
    assert body["outbox"] == {"pending": 0, "failed": 0, "oldest_pending_age_s": None}


async def test_health_is_503_when_the_database_is_not_writable(harness, monkeypatch):
    """A store that refuses writes makes the service unavailable."""
    async def no() -> bool:
        return False

    monkeypatch.setattr(harness.rt.store, "is_writable", no)
    r = await harness.client.get("/mchat/health")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"
    assert r.json()["reasons"] == ["database is not writable"]


async def test_health_is_503_when_the_connection_is_down_too_long(harness):
    """Connecting for more than 60 s after start is not ready; a live socket is."""
    now = trio.current_time()
    harness.rt.started_at = now - 300
    harness.rt.reconnect_stats.state = ConnectionState(mode="connecting", since=now - 90)
    r = await harness.client.get("/mchat/health")
    assert r.status_code == 503
    assert "Mattermost connection connecting" in r.json()["reasons"][0]
    harness.rt.reconnect_stats.state = ConnectionState(mode="websocket", since=now)
    harness.rt.reconnect_stats.connection.last_event_at = now - 2
    r = await harness.client.get("/mchat/health")
    assert r.status_code == 200
    assert r.json()["connection"]["last_event_age_s"] >= 2


async def test_health_is_503_when_an_outbox_reply_is_stuck(harness):
    """A pending reply older than 10 minutes makes the service unavailable."""
    reply = SendReply(channel_id=ChannelId("c1"), message="hi", reply_key="p1:reply")
    await harness.rt.store.run(outbox.enqueue_replies, [reply], max_chars=100,
                               now=time.time() - 700)
    r = await harness.client.get("/mchat/health")
    assert r.status_code == 503
    assert r.json()["outbox"]["pending"] == 1
    assert r.json()["outbox"]["oldest_pending_age_s"] > 600
    assert "outbox" in r.json()["reasons"][0]


def test_assess_reports_an_event_stuck_in_the_retry_queue():
    rules = HealthRules()
    stuck = {**facts(), "retry_queue": {"pending": 3, "channels": 1,
                                        "oldest_pending_age_s": 601.0}}
    assert assess(stuck, rules, 2.0) == ["retry queue: an event has waited 601 s to be stored"]
    fresh = {**facts(), "retry_queue": {"pending": 3, "channels": 1,
                                        "oldest_pending_age_s": 5.0}}
    assert assess(fresh, rules, 2.0) == []


async def test_health_shows_the_retry_queue(harness):
    from mchat_actors import retry_queue
    from mchat_actors.messages import ChannelId, MattermostUserId, Post, PostCreated, PostId

    event = PostCreated(post=Post(id=PostId("p1"), channel_id=ChannelId("c1"),
                                  user_id=MattermostUserId("u1"), message="x"))
    await harness.rt.store.run(retry_queue.park, event, attempts=4, error="e",
                               next_attempt_at=2e9, now=1.0)
    r = await harness.client.get("/mchat/health")
    body = r.json()
    assert body["retry_queue"]["pending"] == 1 and body["retry_queue"]["channels"] == 1
    assert r.status_code == 503 and "retry queue" in " ".join(body["reasons"])
