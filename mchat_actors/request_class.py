"""The classes of requests in one budget (``ratelimit.TokenBucket``): the order waiters are
served in, and a group of requests whose class can be raised while they wait (a channel's
lane). The bucket's own order and starvation guard: ``ratelimit``'s module docstring."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import attrs
import trio

if TYPE_CHECKING:
    from .ratelimit import TokenBucket


class Priority(enum.IntEnum):
    """A request's class in the shared budget (lower goes first)."""

    REPLY = 0  # writes: replies, reactions, joins
    QUESTION = 1  # reads a waiting question needs (its channel's mapping and earlier posts)
    BACKGROUND = 2  # backfill, sweeps, plain posts' mapping, membership re-checks, polls


QUESTION_RUN = 4  # question slots in a row before a waiting (older) background request
REPLY_RUN = 4  # reply slots in a row before a waiting (older) question or background request


@attrs.define(eq=False)
class _Waiter:
    priority: Priority
    seq: int  # arrival order
    wake: trio.Event = attrs.Factory(trio.Event)


@attrs.define(eq=False)
class RequestClass:
    """The class of a group of requests (a channel's lane) that can be raised while its
    requests wait: ``raise_to(Priority.QUESTION)`` when a question is queued behind a post
    whose mapping already waits in the background class moves that request up too, in its
    arrival order. ``reset()`` is for requests made from then on."""

    priority: Priority = Priority.BACKGROUND
    _waiting: dict[_Waiter, TokenBucket] = attrs.Factory(dict)
    _lent_to: list[RequestClass] = attrs.Factory(list)

    def raise_to(self, priority: Priority) -> None:
        if priority >= self.priority:
            return
        self.priority = priority
        for waiter, bucket in list(self._waiting.items()):
            bucket._promote(waiter, priority)
        for other in list(self._lent_to):
            other.raise_to(priority)

    @contextmanager
    def lending_to(self, holder: RequestClass | None) -> Iterator[None]:
        """While this class waits for something ``holder`` holds (a lock), ``holder`` is
        raised to this class, now and whenever this class is raised (priority inheritance)."""
        if holder is None or holder is self:
            yield
            return
        self._lent_to.append(holder)
        holder.raise_to(self.priority)
        try:
            yield
        finally:
            self._lent_to.remove(holder)

    def reset(self, priority: Priority = Priority.BACKGROUND) -> None:
        self.priority = priority
