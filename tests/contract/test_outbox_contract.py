"""The outbox keeps the same promises on SQLite and PostgreSQL (``backend`` is
parametrized over both)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mchat_actors.outbox import FAILED, PENDING, SENT
from mchat_actors.repository import Repositories

from .helpers import Backend, reply

# --- outbox ---------------------------------------------------------------------------------

async def test_a_reply_enqueued_twice_is_one_row_with_one_pending_post_id(
        backend: Backend) -> None:
    b, outbox = backend, backend.repos.outbox
    first = await b.run(outbox.enqueue_replies, [reply("k:1")], max_chars=100, now=5.0)
    second = await b.run(outbox.enqueue_replies, [reply("k:1", message="다른 글")],
                         max_chars=100, now=9.0)
    assert first == second and len(first) == 1
    (row,) = await b.run(outbox.load_pending)
    assert (row.message, row.created_at, row.next_attempt_at) == ("답변입니다", 5.0, 5.0)
    # a key that only starts like another one is another reply
    near = await b.run(outbox.enqueue_replies, [reply("k:10"), reply("k:1#x"), reply("k")],
                       max_chars=100)
    assert len(set(near) | set(first)) == 4
    assert await b.run(outbox.enqueue_replies, [reply("k:1")], max_chars=100) == first
    long = await b.run(outbox.enqueue_replies, [reply("k:2", message="나" * 250)],
                       max_chars=100)
    assert len(long) == 3
    assert await b.run(outbox.enqueue_replies, [reply("k:2", message="나" * 250)],
                       max_chars=7) == long
    assert await b.scalar("SELECT count(*) FROM outbox") == 7


@pytest.mark.parametrize("chunks", [100, 201])
async def test_a_reply_of_many_chunks_is_found_whole_when_enqueued_again(
        backend: Backend, chunks: int) -> None:
    b, outbox = backend, backend.repos.outbox
    text = "".join(chr(0xAC00 + n) for n in range(chunks))  # one char a chunk, all different
    ids = await b.run(outbox.enqueue_replies, [reply("big", message=text)], max_chars=1)
    assert len(ids) == chunks
    assert await b.run(outbox.enqueue_replies, [reply("big", message=text)], max_chars=1) == ids
    rows = await b.run(outbox.load_pending, ids=ids)
    assert "".join(r.message for r in rows) == text
    assert [r.reply_key for r in rows] == [f"big#{n}" for n in range(chunks)]


async def test_admin_calls_on_outbox_rows(backend: Backend) -> None:
    """What the admin page and health call (``repository.OutboxRepo``): get_row,
    retry_failed, status_counts, summary, mark_delivered_elsewhere."""
    b, outbox = backend, backend.repos.outbox
    one, two = await b.run(outbox.enqueue_replies, [reply("r:1"), reply("r:2")],
                           max_chars=100)
    await b.run(outbox.mark_attempt, one, now=3.0)
    await b.run(outbox.mark_failed, one, error="403")
    assert not await b.run(outbox.retry_failed, two, now=4.0)  # not failed: nothing to do
    before = await b.run(outbox.get_row, one)
    assert await b.run(outbox.retry_failed, one, now=5.0)
    after = await b.run(outbox.get_row, one)
    assert (before.status, after.status, after.next_attempt_at) == (FAILED, PENDING, 5.0)
    assert (after.pending_post_id, after.attempts) == (before.pending_post_id, 1)
    assert await b.run(outbox.get_row, 10_000) is None
    assert await b.run(outbox.mark_delivered_elsewhere, "r:2",
                       how="webhook-response") == 1
    assert await b.run(outbox.mark_delivered_elsewhere, "r:2",
                       how="again") == 0
    assert await b.run(outbox.status_counts) == {
        PENDING: 1, SENT: 1, FAILED: 0}
    assert await b.run(outbox.summary, now=1e12) == {
        PENDING: 1, SENT: 1, FAILED: 0, "oldest_pending_age_s": 1e12 - after.created_at}
    await b.run(outbox.mark_sent, one, mm_post_id="mm", now=6.0)
    assert await b.run(outbox.oldest_pending_age_s, now=1e12) is None


async def test_pending_rows_come_in_enqueue_order_per_channel(backend: Backend) -> None:
    b, outbox = backend, backend.repos.outbox
    order = [("a", 0), ("b", 0), ("a", 1), ("a", 2), ("b", 1), ("c", 0), ("b", 2)]
    for channel, n in order:
        await b.run(outbox.enqueue_replies, [reply(f"{channel}:{n}", channel)], max_chars=100)
    ids = await b.run(outbox.enqueue_replies,
                      [reply("a:3", "a"), reply("c:1", "c", message="다" * 30)], max_chars=12)
    rows = await b.run(outbox.load_pending)
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    for channel in "abc":
        keys = [r.reply_key for r in rows if r.channel_id == channel]
        want = [f"{channel}:{n}" for c, n in order if c == channel]
        want += {"a": ["a:3"], "b": [], "c": ["c:1#0", "c:1#1", "c:1#2"]}[channel]
        assert keys == want
    subset = await b.run(outbox.load_pending, ids=[ids[-1], ids[0], ids[0], 10_000])
    assert [r.reply_key for r in subset] == ["a:3", "c:1#2"]
    assert await b.run(outbox.load_pending, ids=[]) == []


async def test_a_row_moves_pending_to_sent_or_failed_and_never_back(backend: Backend) -> None:
    b, outbox = backend, backend.repos.outbox
    one, two, three = await b.run(outbox.enqueue_replies,
                                  [reply("r:1"), reply("r:2"), reply("r:3")], max_chars=100)
    await b.run(outbox.mark_attempt, one, now=10.0)
    await b.run(outbox.mark_retry, one, next_attempt_at=20.0, error="503 " + "e" * 600)
    await b.run(outbox.mark_attempt, one, now=20.0)
    (row, *_) = await b.run(outbox.load_pending, ids=[one])
    assert (row.attempts, row.first_attempt_at, row.last_attempt_at) == (2, 10.0, 20.0)
    assert row.next_attempt_at == 20.0 and row.last_error is not None
    assert len(row.last_error) == 500
    await b.run(outbox.mark_sent, one, mm_post_id="mm1", now=21.0)
    await b.run(outbox.mark_failed, one, error="late 403")  # sent stays sent
    await b.run(outbox.mark_retry, one, next_attempt_at=99.0, error="late")
    await b.run(outbox.mark_failed, two, error="403 forbidden")
    await b.run(outbox.mark_retry, two, next_attempt_at=99.0, error="late")  # failed stays
    assert [r.id for r in await b.run(outbox.load_pending)] == [three]
    for row_id, want in ((one, (SENT, "mm1", "503 " + "e" * 496)),
                         (two, (FAILED, None, "403 forbidden"))):
        got = [await b.scalar(f"SELECT {column} FROM outbox WHERE id = {row_id}")
               for column in ("status", "mm_post_id", "last_error")]
        assert tuple(got) == want




@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sends=st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 5), st.integers(1, 30)),
                      min_size=1, max_size=15))
def test_pending_rows_of_a_channel_come_in_first_enqueue_order(
        raw: tuple[Repositories, Any], sends: list[tuple[str, int, int]]) -> None:
    """Replies enqueued in any interleaving of channels, some again (same key, any text):
    each key is one row set, and a channel's pending rows come in the order of each key's
    first enqueue, chunks in order."""
    repos, tx = raw
    run = uuid.uuid4().hex[:8]
    first_order: dict[str, list[str]] = {}
    for channel, n, size in sends:
        key = f"{run}:{channel}:{n}"
        repos.outbox.enqueue_replies(tx, [reply(key, f"{run}{channel}", "가" * size)],
                                     max_chars=10)
        if key not in first_order.setdefault(channel, []):
            first_order[channel].append(key)
    pending = [r for r in repos.outbox.load_pending(tx) if r.reply_key.startswith(run)]
    for channel, keys in first_order.items():
        got = [r.reply_key.split("#")[0] for r in pending if r.channel_id == f"{run}{channel}"]
        assert list(dict.fromkeys(got)) == keys
        for key in keys:
            chunk_keys = [r.reply_key for r in pending if r.reply_key.split("#")[0] == key]
            assert chunk_keys in ([key], [f"{key}#{i}" for i in range(len(chunk_keys))])
