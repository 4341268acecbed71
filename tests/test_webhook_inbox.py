"""webhook_inbox: payloads kept until their post is handled; tokens never stored."""

from __future__ import annotations

from mchat_actors import webhook_inbox
from mchat_actors.store import connect, migrate


def test_kept_until_handled_without_the_token(tmp_path):
    db = connect(tmp_path / "s.db")
    migrate(db)
    fields = {"token": "outgoing-secret", "post_id": "p1", "text": "@ai 질문", "timestamp": 5}
    webhook_inbox.keep(db, "p1", fields, "json", now=100.0)
    webhook_inbox.keep(db, "p1", {**fields, "text": "changed"}, "json", now=101.0)  # ignored
    webhook_inbox.keep(db, "p2", {"post_id": "p2", "text": "x"}, "form", now=200.0)
    raw = "".join(r[0] for r in db.conn.execute("SELECT payload FROM webhook_inbox"))
    assert "outgoing-secret" not in raw
    assert webhook_inbox.pending(db, received_before=150.0) == [
        ({"post_id": "p1", "text": "@ai 질문", "timestamp": 5}, "json")]
    db.conn.execute("INSERT INTO mchat_posts (post_id, channel_id, status, processed_at) "
                    "VALUES ('p1', 'c1', 'answered', 1)")
    assert webhook_inbox.pending(db, received_before=1e12) == [
        ({"post_id": "p2", "text": "x"}, "form")]
    assert [r[0] for r in db.conn.execute("SELECT post_id FROM webhook_inbox")] == ["p2"]
