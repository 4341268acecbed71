"""Where the sweeper's read horizon starts on a database's first open (``actors.sweeper``).

Posts from 5 s before the PROCESS started on are owed, not from 5 s before the database was
first opened: between the two the interpreter imports its modules and loads its models, which
takes seconds on a loaded machine (the chaos soak lost the first posts made right after the
service was launched, when that took longer than the 5 s margin). The process's start comes
from ``/proc`` (Linux); elsewhere, or when it cannot be read, the open's own time is used.
"""

from __future__ import annotations

import os
import time

MARGIN_MS = 5_000


def first_horizon_ms(now_s: float | None = None) -> int:
    """The horizon a new database starts with: the process's start (or now), less 5 s."""
    now_ms = int((time.time() if now_s is None else now_s) * 1000)
    started = process_started_ms()
    return min(now_ms, started if started is not None else now_ms) - MARGIN_MS


def process_started_ms() -> int | None:
    """When this process started (wall ms), from ``/proc/self/stat`` and the boot time in
    ``/proc/stat``; None where those cannot be read."""
    try:
        with open("/proc/self/stat", "rb") as f:
            # the command name (field 2) may hold spaces and parentheses: split after it;
            # the start time is field 22, the 20th after the name
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/stat", "rb") as f:
            boot_s = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        return int((boot_s + ticks / os.sysconf("SC_CLK_TCK")) * 1000)
    except (OSError, ValueError, IndexError, StopIteration):
        return None
