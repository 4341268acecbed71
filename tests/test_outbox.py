from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mchat_actors import outbox
from mchat_actors.messages import ChannelId, PostId, SendReply
from mchat_actors.store import connect, migrate


@pytest.fixture
def db(tmp_path):
    database = connect(tmp_path / "o.db")
    migrate(database)
    yield database
    database.conn.close()


def memory_db():
    database = connect(":memory:")
    migrate(database)
    return database


def reply(key="p1:0", message="hello", channel="c1", root="r1"):
    return SendReply(channel_id=ChannelId(channel), message=message, reply_key=key,
                     root_id=PostId(root) if root else None, trigger_post_id=PostId("p1"))


def test_enqueue_stores_a_pending_row_with_a_pending_post_id(db):
    """A reply becomes one pending row carrying its own 32-hex pending_post_id."""
    (row_id,) = outbox.enqueue_replies(db, [reply()], max_chars=100, now=1000.0)
    row = outbox.get_row(db, row_id)
    assert row is not None
    assert (row.reply_key, row.channel_id, row.root_id, row.message) == ("p1:0", "c1", "r1",
                                                                          "hello")
    assert row.status == outbox.PENDING and row.attempts == 0
    assert len(row.pending_post_id) == 32 and int(row.pending_post_id, 16) >= 0
    assert row.created_at == row.next_attempt_at == 1000.0


def test_enqueue_is_idempotent_by_reply_key(db):
    """Enqueueing the same reply twice gives one row and the same ids."""
    first = outbox.enqueue_replies(db, [reply()], max_chars=100)
    second = outbox.enqueue_replies(db, [reply(), reply()], max_chars=100)
    assert second == first * 2
    assert outbox.status_counts(db)[outbox.PENDING] == 1


def test_long_reply_becomes_ordered_chunk_rows(db):
    """A reply over max_chars becomes key#0.. rows, in order, each with its own pending id."""
    text = "\n\n".join(f"paragraph {i} " + "x" * 30 for i in range(6))
    ids = outbox.enqueue_replies(db, [reply(message=text)], max_chars=60)
    rows = [outbox.get_row(db, i) for i in ids]
    assert [r.reply_key for r in rows] == [f"p1:0#{n}" for n in range(len(rows))]
    assert ids == sorted(ids) and len(rows) > 1
    assert "".join(r.message for r in rows) == text
    assert len({r.pending_post_id for r in rows}) == len(rows)
    assert outbox.enqueue_replies(db, [reply(message=text)], max_chars=60) == ids


def test_a_key_that_only_shares_a_prefix_is_a_different_reply(db):
    """Reply "p1:0" does not hide reply "p1:0x" or chunks of "p1:01"."""
    a = outbox.enqueue_replies(db, [reply(key="p1:0")], max_chars=100)
    b = outbox.enqueue_replies(db, [reply(key="p1:0x")], max_chars=100)
    c = outbox.enqueue_replies(db, [reply(key="p1:01", message="y" * 30)], max_chars=20)
    assert len(set(a) | set(b) | set(c)) == 4


def test_enqueue_joins_the_callers_transaction(db):
    """Inside a caller's transaction, a rollback also removes the enqueued rows."""
    db.conn.execute("BEGIN")
    outbox.enqueue_replies(db, [reply()], max_chars=100)
    db.conn.execute("ROLLBACK")
    assert outbox.status_counts(db)[outbox.PENDING] == 0
    db.conn.execute("BEGIN")
    outbox.enqueue_replies(db, [reply()], max_chars=100)
    db.conn.execute("COMMIT")
    assert outbox.status_counts(db)[outbox.PENDING] == 1


def test_load_pending_is_fifo_and_filters_by_ids(db):
    """load_pending returns pending rows in id order, optionally only the given ids."""
    ids = outbox.enqueue_replies(db, [reply(key=f"k{i}", channel=f"c{i % 2}") for i in range(5)],
                                 max_chars=100)
    outbox.mark_sent(db, ids[1], mm_post_id="m1", now=5.0)
    assert [r.id for r in outbox.load_pending(db)] == [ids[0], *ids[2:]]
    assert [r.id for r in outbox.load_pending(db, ids=[ids[4], ids[1], ids[0]])] == [ids[0],
                                                                                   ids[4]]


def test_attempts_retries_and_sent_are_recorded(db):
    """mark_attempt counts and timestamps, mark_retry reschedules, mark_sent completes."""
    (row_id,) = outbox.enqueue_replies(db, [reply()], max_chars=100, now=0.0)
    outbox.mark_attempt(db, row_id, now=10.0)
    outbox.mark_retry(db, row_id, next_attempt_at=11.0, error="503")
    outbox.mark_attempt(db, row_id, now=11.0)
    row = outbox.get_row(db, row_id)
    assert (row.attempts, row.first_attempt_at, row.last_attempt_at) == (2, 10.0, 11.0)
    assert (row.next_attempt_at, row.last_error) == (11.0, "503")
    outbox.mark_sent(db, row_id, mm_post_id="post1", now=12.0)
    row = outbox.get_row(db, row_id)
    assert (row.status, row.mm_post_id, row.sent_at) == (outbox.SENT, "post1", 12.0)


def test_failed_rows_can_be_retried_by_an_admin(db):
    """A failed row keeps its error, and retry_failed makes it pending again, only once."""
    (row_id,) = outbox.enqueue_replies(db, [reply()], max_chars=100)
    outbox.mark_attempt(db, row_id, now=1.0)
    outbox.mark_failed(db, row_id, error="400 model.post.is_valid")
    assert outbox.load_pending(db) == []
    assert outbox.get_row(db, row_id).last_error == "400 model.post.is_valid"
    assert outbox.retry_failed(db, row_id, now=50.0) is True
    assert outbox.retry_failed(db, row_id, now=50.0) is False
    (row,) = outbox.load_pending(db)
    assert (row.next_attempt_at, row.attempts, row.first_attempt_at) == (50.0, 1, 1.0)


def test_counts_and_oldest_pending_age(db):
    """status_counts reports every status; the age is that of the oldest pending row."""
    assert outbox.status_counts(db) == {"pending": 0, "sent": 0, "failed": 0}
    assert outbox.oldest_pending_age_s(db, now=100.0) is None
    ids = outbox.enqueue_replies(db, [reply(key="a")], max_chars=100, now=10.0)
    outbox.enqueue_replies(db, [reply(key="b"), reply(key="c")], max_chars=100, now=40.0)
    outbox.mark_sent(db, ids[0], mm_post_id="m", now=41.0)
    outbox.enqueue_replies(db, [reply(key="d")], max_chars=100, now=45.0)
    (b_id,) = outbox.enqueue_replies(db, [reply(key="b")], max_chars=100)
    outbox.mark_failed(db, b_id, error="403")
    assert outbox.status_counts(db) == {"pending": 2, "sent": 1, "failed": 1}
    assert outbox.oldest_pending_age_s(db, now=100.0) == 60.0


@given(
    keys=st.lists(st.sampled_from(["a", "b", "a1", "c:0", "c:0#x"]), max_size=12),
    lengths=st.lists(st.integers(1, 90), min_size=12, max_size=12),
)
def test_enqueue_is_idempotent_for_any_sequence(keys, lengths):
    """Any sequence of (re)enqueues yields one set of rows per distinct reply key."""
    database = memory_db()
    replies = [reply(key=k, message="w " * n) for k, n in zip(keys, lengths, strict=False)]
    first_ids = {}
    for r in replies:
        ids = outbox.enqueue_replies(database, [r], max_chars=40)
        assert first_ids.setdefault(r.reply_key, ids) == ids
    total = sum(len(ids) for ids in first_ids.values())
    assert outbox.status_counts(database)[outbox.PENDING] == total
    database.conn.close()


def test_mark_delivered_elsewhere_marks_every_chunk_sent(db):
    """A reply answered in a webhook response is recorded sent (all chunks) and never loaded."""
    outbox.enqueue_replies(db, [reply(message="w " * 50)], max_chars=30)
    outbox.enqueue_replies(db, [reply(key="other")], max_chars=30)
    marked = outbox.mark_delivered_elsewhere(db, "p1:0", how="webhook-response", now=7.0)
    assert marked > 1
    assert [r.reply_key for r in outbox.load_pending(db)] == ["other"]
    assert outbox.mark_delivered_elsewhere(db, "p1:0", how="webhook-response") == 0


def test_summary_reports_counts_and_oldest_age(db):
    """summary() combines the status counts and the oldest pending age."""
    outbox.enqueue_replies(db, [reply()], max_chars=100, now=10.0)
    assert outbox.summary(db, now=25.0) == {"pending": 1, "sent": 0, "failed": 0,
                                            "oldest_pending_age_s": 15.0}
