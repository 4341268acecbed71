"""The checkpointer: copies the WAL back into the database file off the storage actor's path.

SQLite in WAL mode checkpoints by itself when a commit leaves the WAL over
``wal_autocheckpoint`` pages (1000 by default): that commit then copies the WAL into the
database and fsyncs both files (``synchronous=NORMAL`` syncs only at checkpoints), 3-5 ms on
this machine, inside whichever request happened to cross the line, a question among them
(docs/benchmarks.md, "Part 4", the storage hop's tail). So the storage actor's connection
checkpoints only as a safety net (``WRITER_AUTOCHECKPOINT_PAGES``: a WAL this checkpointer
could not keep short), and this actor runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its OWN
connection, in its own worker thread, once a second while there were commits. A passive
checkpoint never blocks the writer or the readers; the writer's next transaction restarts
the WAL from its start (one header sync, well under a millisecond here).

Durability is unchanged: a commit is in the WAL before it is acknowledged, whoever copies it
into the database file later.
"""

from __future__ import annotations

import logging
import sqlite3

import attrs
import trio

from .writer import Writer

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 1.0
# the storage actor's connection checkpoints by itself only past this many WAL pages (~40 MB)
WRITER_AUTOCHECKPOINT_PAGES = 10_000


@attrs.define
class CheckpointStats:
    checkpoints: int = 0
    frames_copied: int = 0
    busy: int = 0  # a checkpoint that could not copy everything (a reader on an old snapshot)
    errors: int = 0


@attrs.define(eq=False)
class Checkpointer:
    """Start ``run`` in a nursery beside the ``writer`` whose database ``conn`` opens."""

    conn: sqlite3.Connection
    writer: Writer
    interval_s: float = CHECKPOINT_INTERVAL_S
    stats: CheckpointStats = attrs.Factory(CheckpointStats)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        seen = self.writer.stats.commits
        while True:
            await trio.sleep(self.interval_s)
            if self.writer.stats.commits == seen:
                continue  # nothing new in the WAL
            seen = self.writer.stats.commits
            await self.checkpoint()

    async def checkpoint(self) -> None:
        """One passive checkpoint in a worker thread; an error is logged and counted."""
        try:
            busy, wal_frames, copied = await trio.to_thread.run_sync(self._passive)
        except sqlite3.Error as exc:
            self.stats.errors += 1
            log.warning("WAL checkpoint failed (the next one retries): %s", exc)
            return
        self.stats.checkpoints += 1
        self.stats.frames_copied += max(copied, 0)
        if busy or copied < wal_frames:
            self.stats.busy += 1

    def _passive(self) -> tuple[int, int, int]:
        row = self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])
