"""The WAL is copied back by the checkpointer, never inside the storage actor's commits."""

from __future__ import annotations

import sqlite3

import trio

from mchat_actors.store import open_store, set_state

BLOB = "x" * 12_000  # three to four pages a request


async def _write(store, n: int) -> None:
    for i in range(n):  # one request (one batch, one commit) at a time, as questions come
        await store.run(set_state, f"blob{i}", BLOB)


def _wal(path) -> tuple[int, int, int]:
    """(busy, WAL frames, frames checkpointed) as a passive checkpoint of a fresh connection
    sees them (it copies what is left, so call it last)."""
    conn = sqlite3.connect(str(path))
    try:
        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])
    finally:
        conn.close()


async def test_no_commit_checkpoints_the_wal(tmp_path):
    """Past SQLite's default 1 000 pages no commit checkpoints (which would fsync twice inside
    whichever request crossed the line): with the checkpointer held off, the WAL still holds
    every frame written, none was copied back and restarted."""
    path = tmp_path / "x.db"
    async with open_store(path, checkpoint_interval_s=3600) as store:
        await _write(store, 400)
        assert store.checkpointer is not None
        assert store.checkpointer.stats.checkpoints == 0
        _busy, frames, _copied = _wal(path)
        assert frames >= 1_200, frames  # SQLite's default would have restarted it below 1 000


async def test_checkpointer_copies_the_wal_back(tmp_path):
    """The checkpointer copies the WAL into the database on its own connection, and only when
    there were commits since its last run."""
    path = tmp_path / "x.db"
    async with open_store(path, checkpoint_interval_s=0.05) as store:
        checkpointer = store.checkpointer
        assert checkpointer is not None
        await trio.sleep(0.3)  # nothing written since the start: nothing to do
        idle = checkpointer.stats.checkpoints
        assert idle == 0
        await _write(store, 400)
        with trio.fail_after(10):
            while checkpointer.stats.checkpoints == idle:  # noqa: ASYNC110 - its counter
                await trio.sleep(0.02)
        await trio.sleep(0.3)  # the run that saw the last commit is over
        settled = checkpointer.stats.checkpoints
        await trio.sleep(0.3)  # no commits since: no further checkpoint
        assert checkpointer.stats.checkpoints == settled
        assert checkpointer.stats.frames_copied >= 1_000
        assert checkpointer.stats.errors == 0
        busy, frames, copied = _wal(path)
        assert busy == 0 and copied == frames  # nothing was left for this one to copy
        assert await store.get_state("blob399") == BLOB
