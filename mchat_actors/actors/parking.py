"""A serializer's failures: quick retries in place, parking, a parked lane's retries, a lost lease.

A transient failure (Mattermost, the ChatService or SQLite unavailable: ``TRANSIENT``) is
retried in place after each of ``RETRY_DELAYS_S``; then, or at once for any other error (a bug,
logged with its traceback), the event is parked in the durable retry queue (``retry_queue.py``)
and the lane is parked (``_handle_in_place`` returns False). A parked lane retries its head
with backoff (``_retry_parked``) and re-reads it at least every ``RECHECK_S`` (an admin may
retry or discard it meanwhile). Replicas: ``LeaseLost`` (the channel's lease was lost, its
writes refused) drops the event; the channel's owner reads it again.

The serializer itself (``dispatcher.py``) decides when these run; this is one piece of the
dispatcher actor, split out for size.
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING

import trio

from ..errors import (
    ChatServiceError,
    LeaseLost,
    MattermostAuthError,
    MattermostUnavailable,
    RateLimited,
    StoreUnavailable,
)
from ..messages import InboundEvent
from ..ratelimit import Priority
from ..retry_queue import ParkedEvent, backoff_s
from .lanes import _Lane

if TYPE_CHECKING:
    from .dispatcher import _Context

logger = logging.getLogger("mchat_actors.actors.dispatcher")  # its log lines stay the dispatcher's

TRANSIENT = (MattermostUnavailable, RateLimited, StoreUnavailable, ChatServiceError)
RETRY_DELAYS_S = (0.5, 1.0, 2.0)  # quick tries in place before the event is parked
RECHECK_S = 5.0  # a parked lane re-reads its head at least this often (admin retry/discard)


async def _handle_in_place(cid: str, event: InboundEvent, lane: _Lane,
                           ctx: _Context) -> bool:
    """Handle ``event``, retrying transient failures a few times; park it when that fails.
    Returns whether it was handled (False: it is parked)."""
    stats = ctx.stats
    for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
        try:
            await ctx.call(event, lane)
            return True
        except MattermostAuthError:
            raise
        except TRANSIENT as exc:
            if delay is None:
                await _park(cid, event, ctx, attempts=attempt + 1, error=_describe(exc))
                return False
            stats.retries += 1
            logger.warning("dispatcher: channel %s: %s; retrying in %g s", cid,
                           type(exc).__name__, delay)
            await trio.sleep(delay)
        except LeaseLost as exc:
            _lease_lost(cid, event, exc, ctx)
            return True  # dropped, nothing written: the channel's owner reads it again
        except Exception as exc:  # the serializer's error boundary: a bug is parked, not lost
            stats.errors += 1
            logger.exception("dispatcher: channel %s: failed to handle %s; parked", cid,
                             type(event).__name__)
            await _park(cid, event, ctx, attempts=attempt + 1, error=_describe(exc))
            return False
    raise AssertionError("unreachable")  # pragma: no cover


async def _park(cid: str, event: InboundEvent, ctx: _Context, *, attempts: int,
                error: str) -> None:
    """Make ``event`` durable in the retry queue; while the database refuses, keep trying (the
    event is not recorded as handled, so if the process dies meanwhile the backfill has it)."""
    next_at = ctx.wall() + (_parked_backoff(attempts) if attempts else 0.0)
    for delay in itertools.chain(RETRY_DELAYS_S, itertools.repeat(30.0)):
        try:
            if await ctx.queue.park(event, attempts=attempts, error=error,
                                    next_attempt_at=next_at):
                ctx.stats.parked += 1
                if attempts:
                    logger.warning("dispatcher: channel %s: parked %s after %d tries: %s", cid,
                                   type(event).__name__, attempts, error)
            return
        except StoreUnavailable as exc:
            logger.warning("dispatcher: channel %s: cannot park an event (%s); retrying in "
                           "%g s", cid, exc, delay)
            await trio.sleep(delay)


async def _retry_parked(cid: str, lane: _Lane, ctx: _Context) -> float:
    """Try the channel's due parked events in order. Unparks the lane when the queue is empty;
    else returns the seconds until its head is due."""
    stats = ctx.stats
    while True:
        try:
            parked = await ctx.queue.head(cid)
        except StoreUnavailable:
            return RECHECK_S
        if parked is None:
            lane.parked = False
            logger.info("dispatcher: channel %s: retry queue empty; back to live events", cid)
            return 0.0
        wait = parked.next_attempt_at - ctx.wall()
        if wait > 0:
            return wait
        error = await _try_parked(cid, parked, lane, ctx)
        if error is None:
            stats.parked_done += 1
            await ctx.queue.done(parked.id)
            continue
        stats.parked_failures += 1
        delay = _parked_backoff(parked.attempts + 1)
        await ctx.queue.failed(parked.id, error=error, next_attempt_at=ctx.wall() + delay)
        logger.warning("dispatcher: channel %s: parked %s failed again (try %d): %s; next in "
                       "%g s", cid, type(parked.event).__name__, parked.attempts + 1, error,
                       delay)
        return delay


async def _try_parked(cid: str, parked: ParkedEvent, lane: _Lane,
                      ctx: _Context) -> str | None:
    """One try of a parked event: None when handled, else the error's description."""
    if ctx.questions_in([parked.event]):
        lane.request_class.raise_to(Priority.QUESTION)
    try:
        await ctx.call(parked.event, lane)
    except MattermostAuthError:
        raise
    except TRANSIENT as exc:
        return _describe(exc)
    except LeaseLost as exc:
        _lease_lost(cid, parked.event, exc, ctx)
        return None  # dropped (see _handle_in_place)
    except Exception as exc:  # the serializer's error boundary (see _handle_in_place)
        ctx.stats.errors += 1
        logger.exception("dispatcher: channel %s: parked %s failed with a bug", cid,
                         type(parked.event).__name__)
        return _describe(exc)
    finally:
        lane.questions_done(0)
    return None


def _lease_lost(cid: str, event: InboundEvent, exc: LeaseLost, ctx: _Context) -> None:
    """Replicas: the channel's lease was lost while ``event`` was in its lane (this replica
    paused or cut off past its lease); its writes were refused (``pg.fence``)."""
    ctx.stats.lease_lost += 1
    logger.warning("dispatcher: channel %s: %s dropped, its lease is lost (%s); its owner "
                   "reads it again", cid, type(event).__name__, exc)


def _parked_backoff(attempts: int) -> float:
    """Backoff after ``attempts`` tries in all, the quick ones in place not counted."""
    return backoff_s(attempts - len(RETRY_DELAYS_S))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
