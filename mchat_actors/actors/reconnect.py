"""The reconnect supervisor: owns the connection's life, resume, backfill and polling fallback.

- WebSocket with header auth; after a drop it reconnects with exponential backoff and full
  jitter (``backoff_initial_s`` .. ``backoff_max_s``; the failure count resets once a connection
  has been up for ``stable_after_s``), asking to resume with ``connection_id`` +
  ``sequence_number``. When the server cannot resume (a hello with a new connection id) every
  channel is backfilled before any newer live event is read.
- ``MCHAT_MODE=auto``: after ``ws_failures_before_polling`` failed attempts in a row the bot
  polls every ``poll_interval_s`` and keeps trying the WebSocket between polls; the first good
  connection ends polling (its hello triggers a backfill, so nothing between is missed).
- ``MCHAT_MODE=polling``: polls only. ``MCHAT_MODE=websocket``: never polls.
- A socket that never authenticates is checked against ``users/me``: a 401 there is fatal
  (``MattermostAuthError``), anything else is retried.
- The sweeps run in this supervisor's nursery, never in the connection's: the verification
  sweep, and the backfill (``_backfill_worker``): a proven connection asks for it through a
  channel and waits for it while its reader keeps reading the socket; a connection that fails
  meanwhile cancels the backfill it asked for (it stays owed to the next connection).
"""

from __future__ import annotations

import logging
import random
import ssl
from typing import Protocol

import attrs
import outcome
import trio

from .._groups import collapse_groups
from ..config import MattermostConfig
from ..errors import MattermostAuthError, MattermostUnavailable, RateLimited
from ..mattermost.api import Identity
from ..messages import ConnectionState, InboundEvent
from ..ports import SweeperPort
from ..supervision import backoff_delay
from ..tls import client_ssl_context
from .connection import (
    ConnectionStats,
    NotAuthenticated,
    Release,
    ResumeState,
    run_connection,
)

logger = logging.getLogger(__name__)

VERIFY_EVERY_S = 60.0


class _Bucket(Protocol):
    async def acquire(self) -> None: ...


@attrs.define
class ReconnectStats:
    """Counters and the visible connection state of the supervisor (read by health/metrics);
    kept across restarts of the actor."""

    state: ConnectionState = ConnectionState(mode="connecting")
    attempts: int = 0
    failures_in_row: int = 0
    reconnects: int = 0
    last_error: str = ""
    connection: ConnectionStats = attrs.Factory(ConnectionStats)


@attrs.define
class ReconnectControl:
    """The supervisor's own control state, kept across its restarts by whoever restarts it
    (a restarted supervisor still resumes the old connection and still owes its backfill)."""

    resume: ResumeState = attrs.Factory(ResumeState)
    backfill_owed: bool = False  # a needed backfill has not completed yet


async def run(
    cfg: MattermostConfig,
    *,
    rest: Identity,
    sweeper: SweeperPort,
    events: trio.MemorySendChannel[InboundEvent],
    bot_user_id: str,
    stats: ReconnectStats,
    control: ReconnectControl | None = None,
    bucket: _Bucket | None = None,
    rng: random.Random | None = None,
    ssl_context: ssl.SSLContext | None = None,
    verify_every_s: float = VERIFY_EVERY_S,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep events flowing until cancelled. Raises only ``MattermostAuthError``.

    ``ssl_context``: the client context built once at start, used by every connect.
    """
    if ssl_context is None:
        ssl_context = client_ssl_context(cfg)
    control = control if control is not None else ReconnectControl()
    task_status.started()
    if cfg.mode == "polling":
        _set_state(stats, "polling")
        await sweeper.poll_forever(cfg.poll_interval_s)
        return
    backfills, requests = trio.open_memory_channel[_BackfillRequest](1)
    with collapse_groups():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_verify_forever, sweeper, stats, control, verify_every_s)
            nursery.start_soon(_backfill_worker, sweeper, requests)
            await _connect_forever(cfg, rest=rest, sweeper=sweeper, events=events,
                                   bot_user_id=bot_user_id, stats=stats, control=control,
                                   bucket=bucket, backfills=backfills,
                                   rng=rng, ssl_context=ssl_context)


@attrs.define(eq=False)
class _BackfillRequest:
    """A proven connection's request for a backfill; ``scope`` lets it cancel the sweep."""

    release: Release | None = None  # the connection's: a channel's posts are all emitted
    done: trio.Event = attrs.Factory(trio.Event)
    result: outcome.Outcome[int] | None = None
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)


async def _backfill_worker(sweeper: SweeperPort,
                           requests: trio.MemoryReceiveChannel[_BackfillRequest]) -> None:
    """Run each requested backfill sweep, one at a time, in the supervisor's nursery; its
    outcome (a count, or the sweep's error) goes back to the connection that asked."""
    async for request in requests:
        with request.scope:  # cancelled by a connection that no longer waits
            try:
                request.result = outcome.Value(await sweeper.sweep(
                    source="backfill", done=request.release))
            except Exception as exc:  # noqa: BLE001 - the sweep's error is its caller's
                request.result = outcome.Error(exc)
        request.done.set()


async def _backfill(backfills: trio.MemorySendChannel[_BackfillRequest],
                    release: Release | None = None) -> int:
    """Ask the worker for a backfill and wait for it; its error is raised here (the connection
    then fails and reconnects). Cancelled (the connection is gone): the sweep is cancelled.
    ``release(channel)``: called as each channel's backfill is done (its live events pass)."""
    request = _BackfillRequest(release)
    try:
        await backfills.send(request)
        await request.done.wait()
    except trio.Cancelled:
        request.scope.cancel()
        raise
    assert request.result is not None
    return request.result.unwrap()


async def _verify_forever(sweeper: SweeperPort, stats: ReconnectStats, control: ReconnectControl,
                          every_s: float) -> None:
    """While the WebSocket is up, sweep every ``every_s``: one channel-list request per team
    (plus one per channel with a post not handled yet). A socket that stays open but stops
    delivering events (seen with a server that forgot the connection) then delays posts by at
    most ``every_s``; it never loses them."""
    while True:
        await trio.sleep(every_s)
        if stats.state.mode != "websocket" or control.backfill_owed:
            continue
        try:
            found = await sweeper.sweep(source="verify")
        except (MattermostUnavailable, RateLimited) as exc:
            logger.warning("reconnect: verification sweep failed (%s)", exc)
            continue
        if found:
            logger.warning("reconnect: the verification sweep found %d posts the WebSocket "
                           "did not deliver (yet)", found)


async def _connect_forever(cfg: MattermostConfig, *, rest: Identity, sweeper: SweeperPort,
                           events: trio.MemorySendChannel[InboundEvent], bot_user_id: str,
                           stats: ReconnectStats, control: ReconnectControl,
                           bucket: _Bucket | None,
                           backfills: trio.MemorySendChannel[_BackfillRequest],
                           rng: random.Random | None,
                           ssl_context: ssl.SSLContext | None) -> None:
    resume = control.resume

    async def on_ready(is_new: bool, release: Release) -> None:
        """Backfill when the server could not resume, or when an earlier backfill failed."""
        if is_new:
            control.backfill_owed = True
        if control.backfill_owed:  # in the supervisor's nursery, not the connection's
            await _backfill(backfills, release)
            control.backfill_owed = False

    while True:
        polling = cfg.mode == "auto" and stats.failures_in_row >= cfg.ws_failures_before_polling
        delay = backoff_delay(stats.failures_in_row, initial_s=cfg.backoff_initial_s,
                              max_s=cfg.backoff_max_s, rng=rng)
        if polling:
            _set_state(stats, "polling")
            with trio.move_on_after(max(delay, cfg.poll_interval_s)):
                await sweeper.poll_forever(cfg.poll_interval_s)
        else:
            await trio.sleep(delay)
        if bucket is not None:
            await bucket.acquire()  # the server's limiter counts upgrade requests too
        stats.attempts += 1
        stats.connection.ready_at = stats.connection.live_at = None
        try:
            await run_connection(cfg, resume=resume, events=events,
                                 on_ready=on_ready, stats=stats.connection,
                                 bot_user_id=bot_user_id, ssl_context=ssl_context,
                                 task_status=_Ready(stats, resume))
        except NotAuthenticated as exc:
            await _check_token(rest)
            _failed(stats, exc, sweeper)
        except (MattermostUnavailable, RateLimited) as exc:
            up_since = stats.connection.ready_at
            if up_since is not None:
                stats.reconnects += 1
                if trio.current_time() - up_since >= cfg.stable_after_s:
                    stats.failures_in_row = 0  # a stable connection forgives past failures
            _failed(stats, exc, sweeper)


@attrs.define
class _Ready:
    """The connection's task_status: marks the supervisor connected once authenticated."""

    stats: ReconnectStats
    resume: ResumeState

    def started(self, value: object = None) -> None:
        if self.stats.state.mode != "websocket" or (
                self.stats.state.connection_id != self.resume.connection_id):
            _set_state(self.stats, "websocket", self.resume.connection_id)


async def _check_token(rest: Identity) -> None:
    """Raise ``MattermostAuthError`` when users/me rejects the token; else return."""
    try:
        await rest.get_me()
    except MattermostAuthError:
        logger.error("reconnect: the server rejects MCHAT_TOKEN (users/me answered 401)")
        raise
    except (MattermostUnavailable, RateLimited):
        return


def _failed(stats: ReconnectStats, exc: Exception, sweeper: SweeperPort) -> None:
    stats.failures_in_row += 1
    stats.last_error = str(exc)
    # everything up to the last frame read was delivered: posts after it may be missing
    sweeper.connection_lost(since_ms=stats.connection.last_frame_wall_ms)
    if stats.state.mode == "websocket":
        _set_state(stats, "connecting")
    logger.warning("reconnect: %s (failure %d in a row)", exc, stats.failures_in_row)


def _set_state(stats: ReconnectStats, mode: str, connection_id: str | None = None) -> None:
    stats.state = ConnectionState(mode=mode, connection_id=connection_id,
                                  since=trio.current_time())
