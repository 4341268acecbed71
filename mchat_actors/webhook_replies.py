"""The outgoing-webhook hand-off: an HTTP request waits for its post's reply.

This is the ``ports.ReplyWaiters`` the handler is given.

The HTTP surface registers before it injects the post and waits under its deadline; the
handler, given this object at construction as its ``ReplyWaiters``, hands the reply over only
after the commit that records it.
"""

from __future__ import annotations

import attrs
import trio

CLAIM_GRACE_S = 5.0


@attrs.define
class WebhookReplies:
    """Lets the HTTP surface answer an outgoing webhook in its own response body.

    The HTTP surface calls ``expect(post_id)`` before it injects the post, then
    ``await wait(post_id)`` under its deadline. If the handler produces the reply while someone
    waits, the text is handed over and the outbox row is recorded as delivered (no REST post);
    if nobody waits any more, the reply goes through the outbox and the sender as usual.
    """

    _waiting: dict[str, trio.MemorySendChannel[str]] = attrs.Factory(dict)
    _inboxes: dict[str, trio.MemoryReceiveChannel[str]] = attrs.Factory(dict)
    _claimed: set[str] = attrs.Factory(set)

    def expect(self, post_id: str) -> None:
        send, recv = trio.open_memory_channel[str](1)
        self._waiting[post_id] = send
        self._inboxes[post_id] = recv

    async def wait(self, post_id: str, timeout_s: float) -> str | None:
        """The reply text if it is ready within ``timeout_s``; None when the post was handled
        without a reply, or on timeout (the reply, if any, is then deferred to the outbox)."""
        recv = self._inboxes.get(post_id)
        if recv is None:
            return None
        try:
            with trio.move_on_after(timeout_s):
                return await recv.receive() or None
            if post_id in self._claimed:  # the reply is being committed: it is ours
                with trio.move_on_after(CLAIM_GRACE_S):
                    return await recv.receive() or None
            return None
        finally:
            self._waiting.pop(post_id, None)
            self._inboxes.pop(post_id, None)
            self._claimed.discard(post_id)
            recv.close()

    def claim(self, post_id: str) -> bool:
        """Reserve the waiter for a reply about to be committed as delivered in the response;
        False when nobody waits (the reply then goes through the outbox). After a claim the
        waiter waits up to ``CLAIM_GRACE_S`` beyond its deadline for ``deliver``/``no_reply``."""
        if post_id not in self._waiting:
            return False
        self._claimed.add(post_id)
        return True

    def no_reply(self, post_id: str) -> None:
        """The post was handled and gets no reply: wake the waiter at once."""
        self.deliver(post_id, "")

    def deliver(self, post_id: str, text: str) -> bool:
        """Hand ``text`` to a waiter; False when nobody waits (the caller then uses the outbox)."""
        send = self._waiting.pop(post_id, None)
        self._claimed.discard(post_id)
        if send is None:
            return False
        try:
            send.send_nowait(text)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True
