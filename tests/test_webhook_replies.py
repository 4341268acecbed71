from __future__ import annotations

import trio

from mchat_actors.webhook_replies import WebhookReplies


async def test_waiter_gets_the_reply_text(autojump_clock):
    hub = WebhookReplies()
    hub.expect("p1")
    assert hub.deliver("p1", "answer")
    assert await hub.wait("p1", 4.5) == "answer"


async def test_no_reply_wakes_the_waiter_at_once(autojump_clock):
    """A post handled without a reply does not hold the webhook response for 4.5 s."""
    hub = WebhookReplies()
    hub.expect("p1")
    start = trio.current_time()
    async with trio.open_nursery() as n:
        n.start_soon(lambda: _later(hub))
        assert await hub.wait("p1", 4.5) is None
    assert trio.current_time() - start < 1.5


async def _later(hub: WebhookReplies) -> None:
    await trio.sleep(1)
    hub.no_reply("p1")


async def test_late_reply_is_not_taken_after_the_deadline(autojump_clock):
    """After the wait timed out, deliver() says False so the reply goes to the outbox."""
    hub = WebhookReplies()
    hub.expect("p1")
    assert await hub.wait("p1", 4.5) is None
    assert hub.deliver("p1", "late") is False

