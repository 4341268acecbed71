"""The admin API over the retry queue: list (no message text), retry now, discard (audited)."""

from __future__ import annotations

from mchat_actors import mapping, posts, retry_queue
from mchat_actors.messages import ChannelId, MattermostUserId, Post, PostCreated, PostId
from tests.http.conftest import ADMIN_TOKEN

API = "/api/v1/mchat"


def parked_post(n: int, channel: str = "c1") -> PostCreated:
    return PostCreated(post=Post(id=PostId(f"p{n}"), channel_id=ChannelId(channel),
                                 user_id=MattermostUserId("u1"), message=f"비밀 내용 {n}",
                                 create_at=1000 + n))


async def park(h, *events) -> list[int]:
    for e in events:
        await h.rt.store.run(retry_queue.park, e, attempts=4, error="ChatServiceError: down",
                             next_attempt_at=2e9, now=1.0)
    return [r["id"] for r in await h.rt.store.run(retry_queue.listing)]


async def test_routes_need_the_admin_token(harness):
    for method, path in (("GET", "/retry-queue"), ("POST", "/retry-queue/1/retry"),
                         ("POST", "/retry-queue/1/discard")):
        r = await harness.client.request(method, API + path)
        assert r.status_code == 401, path


async def test_listing_shows_parked_events_without_their_text(harness):
    await park(harness, parked_post(1), parked_post(2))
    r = await harness.client.get(API + "/retry-queue", headers=harness.admin())
    assert r.status_code == 200
    body = r.json()
    assert body["counts"] == {"pending": 2, "discarded": 0}
    assert [row["post_id"] for row in body["rows"]] == ["p1", "p2"]
    assert body["rows"][0]["last_error"] == "ChatServiceError: down"
    assert "비밀" not in r.text and ADMIN_TOKEN not in r.text


async def test_retry_now_makes_the_row_due_and_is_audited(harness):
    (first, _) = await park(harness, parked_post(1), parked_post(2))
    r = await harness.client.post(f"{API}/retry-queue/{first}/retry", headers=harness.admin())
    assert r.status_code == 200 and r.json() == {"id": first, "status": "requeued"}
    head = await harness.rt.store.run(retry_queue.head, "c1")
    assert head is not None and head.id == first and head.next_attempt_at < 2e9
    audit = (await harness.client.get(API + "/audit", headers=harness.admin())).json()
    assert audit["entries"][0]["action"] == "retry_queue.retry"
    r = await harness.client.post(f"{API}/retry-queue/999/retry", headers=harness.admin())
    assert r.status_code == 404


async def test_discard_records_the_post_without_moving_the_cursor(harness):
    """A discarded post is recorded (a backfill does not bring it back), the cursor stays
    before the posts still parked behind it, and a second discard is a conflict."""
    await harness.rt.store.run(mapping.insert_channel, channel_id="c1", team_id="t",
                               name="c1", display_name="C1", channel_type="O", room_id="r1")
    (first, second) = await park(harness, parked_post(1), parked_post(2))
    r = await harness.client.post(f"{API}/retry-queue/{first}/discard", headers=harness.admin())
    assert r.status_code == 200 and r.json()["status"] == "discarded"
    assert await harness.rt.store.run(posts.is_post_seen, "p1")
    row = await harness.rt.store.run(mapping.get_channel, "c1")
    assert row is not None and row["last_post_id"] is None
    head = await harness.rt.store.run(retry_queue.head, "c1")
    assert head is not None and head.id == second
    r = await harness.client.post(f"{API}/retry-queue/{first}/discard", headers=harness.admin())
    assert r.status_code == 409
    audit = (await harness.client.get(API + "/audit", headers=harness.admin())).json()
    assert audit["entries"][0]["action"] == "retry_queue.discard"
