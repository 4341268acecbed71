"""The backfill a proven connection asks for runs in the reconnect supervisor's nursery
(``reconnect._backfill_worker``), not in the connection's: its result or error goes back to the
connection, and a connection that goes away cancels the sweep it asked for."""

from __future__ import annotations

import attrs
import pytest
import trio

from mchat_actors.actors import reconnect
from mchat_actors.errors import MattermostUnavailable


@attrs.define
class Sweeper:
    fail: bool = False
    hang: bool = False
    ran_in: list[str] = attrs.Factory(list)
    cancelled: int = 0

    def connection_lost(self, *, since_ms: int | None = None) -> None:
        pass

    async def sweep(self, *, source: str, done: object = None) -> int:
        self.ran_in.append(trio.lowlevel.current_task().name)
        try:
            if self.hang:
                await trio.sleep_forever()
            await trio.sleep(1)
        except trio.Cancelled:
            self.cancelled += 1
            raise
        if self.fail:
            raise MattermostUnavailable("REST is down")
        return 3

    async def poll_forever(self, interval_s: float) -> None:
        await trio.sleep_forever()


async def test_the_backfill_runs_in_the_supervisor_and_its_error_reaches_the_connection(
        autojump_clock):
    sweeper = Sweeper()
    send, recv = trio.open_memory_channel[reconnect._BackfillRequest](1)
    async with trio.open_nursery() as supervisor:
        supervisor.start_soon(reconnect._backfill_worker, sweeper, recv)
        assert await reconnect._backfill(send) == 3
        sweeper.fail = True
        with pytest.raises(MattermostUnavailable):
            await reconnect._backfill(send)
        # a connection that fails while its backfill runs cancels it; the worker serves on
        sweeper.fail, sweeper.hang = False, True
        with trio.move_on_after(5):
            await reconnect._backfill(send)
        await trio.sleep(0.1)
        assert sweeper.cancelled == 1
        sweeper.hang = False
        assert await reconnect._backfill(send) == 3
        supervisor.cancel_scope.cancel()
    assert all(name.endswith("_backfill_worker") for name in sweeper.ran_in)
    assert len(sweeper.ran_in) == 4
