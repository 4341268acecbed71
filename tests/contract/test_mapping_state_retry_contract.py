"""Mapping, state, the retry queue and the webhook inbox: the same promises on SQLite and
PostgreSQL (``backend`` is parametrized over both)."""

from __future__ import annotations

from mchat_actors.messages import (
    ChannelId,
    MattermostUserId,
    MemberJoined,
    PostCreated,
)

from .helpers import Backend, map_channel, post

# --- mapping and state ----------------------------------------------------------------------

async def test_mapping_inserts_are_idempotent_and_keep_the_first_row(backend: Backend) -> None:
    b, mapping = backend, backend.repos.mapping
    assert await b.run(mapping.get_channel, "c") is None
    first = await map_channel(b, "c", name="town-square")
    again = await map_channel(b, "c", name="renamed")
    assert again == first and first["mchat_channel_name"] == "town-square"
    assert first["sync_enabled"] is True and first["agent_room_id"] == "room-c"
    assert await b.run(mapping.set_channel_sync, "c", False)
    assert not await b.run(mapping.set_channel_sync, "nope", False)
    assert (await b.run(mapping.get_channel, "c"))["sync_enabled"] is False
    await map_channel(b, "a")
    assert [r["mchat_channel_id"] for r in await b.run(mapping.list_channels)] == ["c", "a"]
    assert await b.run(mapping.get_user, "u") is None
    user = await b.run(mapping.insert_user, user_id="u", username="kim", email=None,
                       agent_user_id="agent-1", matched_by="created")
    other = await b.run(mapping.insert_user, user_id="u", username="lee", email="l@x",
                        agent_user_id="agent-2", matched_by="email")
    assert other == user and user["agent_user_id"] == "agent-1"
    assert await b.scalar("SELECT count(*) FROM mchat_user_mapping") == 1
    await b.run(mapping.insert_user, user_id="v", username="lee", email="l@x",
                agent_user_id="agent-2", matched_by="email")
    assert [(r["mchat_user_id"], r["mchat_username"], r["mchat_email"])
            for r in await b.run(mapping.list_users)] == [("u", "kim", None), ("v", "lee", "l@x")]


async def test_audit_rows_keep_who_what_and_from_where(backend: Backend) -> None:
    b, state = backend, backend.repos.state
    await b.run(state.audit, actor="admin", action="outbox.retry", target="7",
                detail="channel c", remote_addr="10.0.0.9")
    await b.run(state.audit, actor="admin", action="mapping.channel.sync", target="c")
    assert await b.scalar("SELECT count(*) FROM audit_log") == 2
    assert await b.scalar("SELECT remote_addr FROM audit_log WHERE action = 'outbox.retry'"
                          " AND target = '7' AND detail = 'channel c'") == "10.0.0.9"


async def test_state_values_are_set_and_replaced(backend: Backend) -> None:
    b, state = backend, backend.repos.state
    assert await b.run(state.get_state, "sweep_horizon_ms") is not None  # made by migrate
    assert await b.run(state.get_state, "k") is None
    await b.run(state.set_state, "k", "1")
    await b.run(state.set_state, "k", "2")
    assert await b.run(state.get_state, "k") == "2"


# --- retry queue and webhook inbox ---------------------------------------------------------

async def test_parked_events_wait_in_channel_order_and_park_once(backend: Backend) -> None:
    b, q, rows = backend, backend.queue, backend.retry_rows
    await map_channel(b)
    assert await q.park(PostCreated(post=post(1)), attempts=1, error="503",
                        next_attempt_at=5.0)
    assert not await q.park(PostCreated(post=post(1, update_at=3)), attempts=1, error="again",
                            next_attempt_at=6.0)  # the same post: parked once
    assert await q.park(PostCreated(post=post(2, "d")), attempts=1, error="x",
                        next_attempt_at=1.0)
    assert await q.park(PostCreated(post=post(3)), attempts=1, error="x", next_attempt_at=1.0)
    assert await q.channels() == ["c", "d"]
    head = await q.head("c")
    assert head.event == PostCreated(post=post(1))
    assert (head.attempts, head.last_error) == (1, "503")
    await q.failed(head.id, error="still 503", next_attempt_at=9.0)
    again = await q.head("c")
    assert (again.id, again.attempts, again.next_attempt_at) == (head.id, 2, 9.0)
    await q.done(head.id)
    assert (await q.head("c")).event.post.id == "p3"
    assert await b.run(rows.counts) == {"pending": 2, "discarded": 0}
    joined = MemberJoined(channel_id=ChannelId("c"), user_id=MattermostUserId("u"))
    assert await q.park(joined, attempts=1, error="x", next_attempt_at=1.0)
    assert [r["kind"] for r in await b.run(rows.listing)] == [
        "PostCreated", "MemberJoined", "PostCreated"]


async def test_admin_discard_records_the_post_without_moving_the_cursor(
        backend: Backend) -> None:
    b, q, rows = backend, backend.queue, backend.retry_rows
    await map_channel(b)
    await q.park(PostCreated(post=post(1, create_at=500)), attempts=3, error="x",
                 next_attempt_at=1.0)
    await q.park(PostCreated(post=post(2, "d")), attempts=1, error="x", next_attempt_at=1.0)
    row_id = (await q.head("c")).id
    assert await b.run(rows.retry_now, row_id, remote_addr="10.0.0.1", now=2.0) == "requeued"
    assert (await q.head("c")).next_attempt_at == 2.0
    assert await b.run(rows.discard, row_id, remote_addr="10.0.0.1") == "discarded"
    assert await b.run(rows.discard, row_id, remote_addr="10.0.0.1") == "already discarded"
    assert await b.run(rows.retry_now, 10_000, remote_addr="x") == "not_found"
    assert await q.head("c") is None
    assert (await q.head("d")).event.post.id == "p2"  # another row: untouched
    assert await b.run(b.repos.posts.is_post_seen, "p1")
    assert await b.run(b.repos.posts.channel_cursor, "c") is None
    assert await b.scalar("SELECT count(*) FROM audit_log WHERE remote_addr = '10.0.0.1'") == 2


async def test_webhook_payloads_are_kept_until_handled_without_the_token(
        backend: Backend) -> None:
    b, inbox = backend, backend.inbox
    fields = {"token": "outgoing-secret", "post_id": "p1", "text": "@ai 질문", "timestamp": 5}
    await b.run(inbox.keep, "p1", fields, "json", now=100.0)
    await b.run(inbox.keep, "p1", {**fields, "text": "changed"}, "json", now=101.0)
    await b.run(inbox.keep, "p2", {"post_id": "p2", "text": "x"}, "form", now=200.0)
    assert await b.scalar("SELECT count(*) FROM webhook_inbox"
                          " WHERE payload LIKE '%outgoing-secret%'") == 0
    assert await b.run(inbox.pending, received_before=150.0) == [
        ({"post_id": "p1", "text": "@ai 질문", "timestamp": 5}, "json")]
    await b.run(b.repos.posts.record_post, post(1), status="answered", source="webhook")
    assert await b.run(inbox.pending, received_before=1e12) == [
        ({"post_id": "p2", "text": "x"}, "form")]
    assert await b.scalar("SELECT count(*) FROM webhook_inbox") == 1
