"""The sender's queues: the order its outbox rows go in and, for replicas, which rows are its.

Per channel, rows are queued strictly in id order (``merge``); channels with work are served
round-robin, one post each (``next_due``). A sent or failed row leaves its queue (``pop_head``).

Replicas (``LeaseView``): only the rows of channels whose lease this replica holds are queued
(``holds``; their owner sends the rest). Before the first row of a channel whose lease was
gained since the outbox was last read for it, the outbox is read again (``inherit``), so the
rows the previous owner committed and did not send go first. A channel whose lease is lost has
its queue dropped (``drop``); its rows stay pending in the outbox for the new owner.

The queues themselves are the per-run ``send_queue._State``; ``SendOrder`` is made once per
``Sender`` and keeps the sender's ``pending``/``channels`` counters true.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import final

import trio

from ..outbox import OutboxRow
from ..repository import Repositories
from ..store import Store
from .send_queue import LeaseView, SenderCounters, SenderSettings, _Entry, _State


@final
class SendOrder:
    """The sender's queue bookkeeping; ``wall_clock`` is the sender's (it stamps the rows)."""

    def __init__(
        self,
        *,
        store: Store,
        repos: Repositories,
        settings: SenderSettings,
        stats: SenderCounters,
        wall_clock: Callable[[], float],
        leases: LeaseView | None,
    ) -> None:
        self._store = store
        self._repos = repos
        self._settings = settings
        self._stats = stats
        self._wall = wall_clock
        # replicas: only the rows of channels whose lease this replica holds (their owner
        # sends the rest); a lease gained anew has the outbox read again first (``inherit``)
        self._leases = leases

    def holds(self, channel: str) -> bool:
        """Whether this sender sends ``channel``'s rows (always without replicas)."""
        return self._leases is None or self._leases.lease_of(channel) is not None

    def merge(self, state: _State, rows: Sequence[OutboxRow]) -> None:
        """Queue rows not seen yet, keeping each channel's queue in id order."""
        now, wall = trio.current_time(), self._wall()
        for row in rows:
            if row.id in state.known or not self.holds(row.channel_id):
                continue
            state.known.add(row.id)
            # Capped, so a wall clock that jumped back cannot park a row for long.
            delay = min(max(0.0, row.next_attempt_at - wall), self._settings.retry_later_max_s)
            entry = _Entry(row=row, not_before=now + delay)
            queue = state.queues.get(row.channel_id)
            if queue is None:
                queue = state.queues[row.channel_id] = deque()
                state.turns.append(row.channel_id)
            at = len(queue)
            while at > 0 and queue[at - 1].row.id > row.id:
                at -= 1
            queue.insert(at, entry)
        self._count(state)

    async def inherit(self, state: _State, channel: str) -> bool:
        """Replicas: before the first row of a channel whose lease was gained since the
        outbox was last read for it, read the outbox again, so the rows the previous owner
        committed and did not send (lower ids) go before this replica's newer answers of the
        channel; True when it read. Before: they waited for the next rescan while newer
        answers went at once (issue #15: answers out of order after a hand-over)."""
        lease = None if self._leases is None else self._leases.lease_of(channel)
        if lease is None or state.inherited.get(lease[0]) == lease[1]:
            return False  # not held (``Sender._send_head`` drops it) or read since it was gained
        assert self._leases is not None
        held = self._leases.leases()  # before the read: a later gain reads again
        self.merge(state, await self._store.run(self._repos.outbox.load_pending))
        state.inherited = held
        return True

    @staticmethod
    def next_due(state: _State, now: float) -> str | None:
        """The next channel in round-robin order whose head is due (it moves to the back)."""
        for _ in range(len(state.turns)):
            channel = state.turns[0]
            state.turns.rotate(-1)
            if state.queues[channel][0].not_before <= now:
                return channel
        return None

    def pop_head(self, state: _State, channel: str) -> None:
        entry = state.queues[channel].popleft()
        state.known.discard(entry.row.id)
        if not state.queues[channel]:
            del state.queues[channel]
            state.turns.remove(channel)
        self._count(state)

    def drop(self, state: _State, channel: str) -> None:
        """Replicas: the channel's lease is lost; its rows are left to its owner."""
        while channel in state.queues:
            self.pop_head(state, channel)

    def _count(self, state: _State) -> None:
        self._stats.pending = len(state.known)
        self._stats.channels = len(state.queues)
