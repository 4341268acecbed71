"""The durable inbox of webhook-only mode: outgoing-webhook payloads kept until handled.

In bot mode a post that was accepted but not handled before a crash comes back with the next
backfill. Webhook-only mode cannot read a channel, and Mattermost never sends an outgoing
webhook twice, so the HTTP surface keeps each payload here (without its token) *before* it
answers 200; ``pending`` gives back the ones whose post is not in ``mchat_posts`` yet (the
handler marks a post there in the transaction that also writes its reply), and forgets the
handled ones. Replaying a payload twice is harmless: the handler drops a post id it has seen.
The table (``webhook_inbox``) is created with the others in ``store.py``.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlite_utils


def keep(db: sqlite_utils.Database, post_id: str, fields: dict[str, Any], encoding: str, *,
         now: float) -> None:
    """Keep a payload (its ``token`` is dropped); a second copy of a post id is ignored."""
    kept = {k: v for k, v in fields.items() if k != "token"}
    db.conn.execute(
        "INSERT INTO webhook_inbox (post_id, payload, received_at) VALUES (?, ?, ?) "
        "ON CONFLICT(post_id) DO NOTHING",
        (post_id, orjson.dumps({"fields": kept, "encoding": encoding}).decode(), now))


def pending(db: sqlite_utils.Database, *, received_before: float
            ) -> list[tuple[dict[str, Any], str]]:
    """(fields, encoding) of the payloads not handled yet and received before the given time,
    oldest first; the handled ones are deleted."""
    db.conn.execute("DELETE FROM webhook_inbox WHERE post_id IN (SELECT post_id FROM mchat_posts)")
    rows = db.conn.execute(
        "SELECT payload FROM webhook_inbox WHERE received_at < ? ORDER BY received_at, post_id",
        (received_before,)).fetchall()
    out = []
    for (raw,) in rows:
        data = orjson.loads(raw)
        out.append((data["fields"], data["encoding"]))
    return out
