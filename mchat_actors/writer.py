"""The storage actor: the one writer of a database, committing what is queued as one transaction.

Callers send a ``WriteRequest`` (a unit of work: a function of the connection) over a memory
channel and wait for its reply. The actor takes the first request, drains whatever else is
already queued (up to ``max_batch``), and runs the lot in its worker thread as ONE transaction
(group commit): ``BEGIN IMMEDIATE``, each request inside its own savepoint, one ``COMMIT``. A burst
of N requests costs one thread hop and one commit, not N.

Guarantees (tested under hypothesis in ``tests/test_writer.py``):

- A request is acknowledged (its caller gets its value) only after the ``COMMIT`` that holds its
  writes has returned. A request that raises is rolled back to its savepoint alone: the others of
  the batch still commit, and its caller gets its exception.
- When ``BEGIN`` or ``COMMIT`` fails, or a request's error aborts the whole transaction, every
  request of the batch gets the error: nothing unacknowledged is reported as done.
- Requests run in the order they were sent; one caller's requests keep their order.
- Cancellation: a request cancelled while still queued is skipped (never runs); one already
  running completes, and its caller's cancellation is delivered after it (as ``trio.to_thread``
  with ``abandon_on_cancel=False``: a started write always completes).
- A ``lazy`` request (a write nobody downstream waits for: the sender's "sent" mark, the
  record of the bot's own post coming back) does not start a batch at once when it is all
  that is queued: the actor waits up to ``linger_s`` for one more request and commits them
  together (the "sent" mark and its post's echo arrive within a few ms of each other). Any
  other request starts its batch at once and takes the lazy ones queued with it.

The unit of work sees a connection already inside a transaction: ``store.transaction`` nests as
a savepoint there, so the same repository functions run alone or in a batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import attrs
import outcome
import trio

T = TypeVar("T")

QUEUED = "queued"
RUNNING = "running"
ABANDONED = "abandoned"
DEFAULT_MAX_BATCH = 256
QUEUE_SIZE = 1024
DEFAULT_LINGER_S = 0.025


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``: the one way the runtime writes several rows at once.

    ``COMMIT`` sits inside the error handling: when it fails (SQLITE_BUSY, a deferred
    constraint), the transaction is rolled back and the error re-raised, so the connection is
    never left inside an open transaction for the next caller to commit by accident.
    """
    if conn.in_transaction:  # inside the storage actor's batch: a savepoint of it
        conn.execute("SAVEPOINT nested_transaction")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK TO nested_transaction")
                conn.execute("RELEASE nested_transaction")
            raise
        conn.execute("RELEASE nested_transaction")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class WriterClosed(RuntimeError):
    """The storage actor has stopped: the request was not run."""


@attrs.define(eq=False)
class _Reply(Generic[T]):
    """Where the actor puts a request's outcome (one per request, owned by its caller)."""

    done: trio.Event = attrs.Factory(trio.Event)
    state: str = QUEUED
    result: outcome.Outcome[T] | None = None


@attrs.frozen(eq=False)
class WriteRequest(Generic[T]):
    """One unit of work: ``work(conn)`` runs inside the batch's transaction."""

    work: Callable[[sqlite3.Connection], T]
    name: str
    reply: _Reply[T] = attrs.Factory(_Reply)
    lazy: bool = False


@attrs.define
class WriterStats:
    batches: int = 0
    requests: int = 0
    commits: int = 0
    failed_batches: int = 0
    largest_batch: int = 0
    lingered: int = 0  # lazy requests that found company while they waited


def commit_batch(conn: sqlite3.Connection, batch: list[WriteRequest[Any]]) -> bool:
    """Run ``batch`` as one transaction on ``conn`` (in the worker thread); fill each reply.

    Returns True when it committed, False when every request got the batch's error."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        for request in batch:
            conn.execute("SAVEPOINT write_request")
            try:
                value = request.work(conn)
            except Exception as exc:  # noqa: BLE001 - the request's error is its caller's
                if not conn.in_transaction:  # the error aborted the whole transaction
                    raise
                conn.execute("ROLLBACK TO write_request")
                conn.execute("RELEASE write_request")
                request.reply.result = outcome.Error(exc)
            else:
                conn.execute("RELEASE write_request")
                request.reply.result = outcome.Value(value)
        conn.execute("COMMIT")
        return True
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        for request in batch:  # nothing of this batch is committed: nobody hears "done"
            request.reply.result = outcome.Error(exc if isinstance(exc, Exception) else
                                                 WriterClosed(f"batch interrupted: {exc!r}"))
        if not isinstance(exc, Exception):
            raise
        return False


def _fail(batch: list[WriteRequest[Any]]) -> None:
    """Wake the callers of requests that were never run."""
    for request in batch:
        if not request.reply.done.is_set():
            if request.reply.result is None:
                request.reply.result = outcome.Error(WriterClosed("the storage actor stopped"))
            request.reply.done.set()


@attrs.define(eq=False)
class Writer:
    """The storage actor of one connection. Start ``run`` in a nursery; call ``submit``."""

    conn: sqlite3.Connection
    max_batch: int = DEFAULT_MAX_BATCH
    linger_s: float = DEFAULT_LINGER_S
    stats: WriterStats = attrs.Factory(WriterStats)
    _send: trio.MemorySendChannel[WriteRequest[Any]] = attrs.field(init=False)
    _recv: trio.MemoryReceiveChannel[WriteRequest[Any]] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._send, self._recv = trio.open_memory_channel[WriteRequest[Any]](QUEUE_SIZE)

    async def submit(self, work: Callable[[sqlite3.Connection], T], *, name: str = "",
                     lazy: bool = False) -> T:
        """Run ``work(conn)`` in the next batch; its value once committed, or its error.
        ``lazy``: alone, it waits up to ``linger_s`` for company (see the module's doc).

        Raises:
            WriterClosed: the actor has stopped.
            sqlite3.Error: the batch could not commit, or ``work`` failed.
        """
        request: WriteRequest[T] = WriteRequest(work, name or getattr(work, "__name__", "work"),
                                                lazy=lazy)
        reply = request.reply
        try:
            await self._send.send(request)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise WriterClosed("the storage actor has stopped") from None
        try:
            await reply.done.wait()
        except trio.Cancelled:
            if reply.state == QUEUED:
                reply.state = ABANDONED  # never run: the actor skips it
                raise
            with trio.CancelScope(shield=True):  # running: a started write completes
                await reply.done.wait()
            raise
        assert reply.result is not None
        return reply.result.unwrap()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve requests until cancelled; queued requests then fail with ``WriterClosed``."""
        task_status.started()
        batch: list[WriteRequest[Any]] = []
        try:
            async for first in self._recv:
                batch = [first]
                self._drain(batch)
                if self.linger_s > 0 and all(r.lazy for r in batch):
                    with trio.move_on_after(self.linger_s):
                        batch.append(await self._recv.receive())  # company: commit together
                        self.stats.lingered += 1
                    self._drain(batch)
                await self._run_batch([r for r in batch if r.reply.state != ABANDONED])
                batch = []
        finally:
            self._send.close()
            _fail(batch)  # taken from the queue, not run: stopped while it lingered
            self._fail_queued()
            self._recv.close()

    def _drain(self, batch: list[WriteRequest[Any]]) -> None:
        """Add what is queued now to ``batch`` (up to ``max_batch``)."""
        while len(batch) < self.max_batch:
            try:
                batch.append(self._recv.receive_nowait())
            except trio.WouldBlock:
                return

    async def _run_batch(self, batch: list[WriteRequest[Any]]) -> None:
        if not batch:
            return
        for request in batch:
            request.reply.state = RUNNING
        committed = False
        try:
            committed = await trio.to_thread.run_sync(commit_batch, self.conn, batch)
        finally:
            self.stats.batches += 1
            self.stats.requests += len(batch)
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            if committed:
                self.stats.commits += 1
            else:
                self.stats.failed_batches += 1
            for request in batch:
                if request.reply.result is None:
                    request.reply.result = outcome.Error(WriterClosed("batch not run"))
                request.reply.done.set()

    def _fail_queued(self) -> None:
        """Wake callers whose requests were queued when the actor stopped."""
        while True:
            try:
                request = self._recv.receive_nowait()
            except (trio.WouldBlock, trio.ClosedResourceError, trio.EndOfChannel):
                return
            request.reply.result = outcome.Error(WriterClosed("the storage actor has stopped"))
            request.reply.done.set()
