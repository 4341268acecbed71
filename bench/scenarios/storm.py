"""storm: socket drops, wiped resume state, refused upgrades, SIGKILL + restart, under load.

Questions go round-robin over 6 channels at 4/s (ChatService 50 ms) for the whole storm while
the faults below hit at fixed times (the fake's control API; the SIGKILL is ours, followed by
starting the same command again on the same database). Afterwards the run waits for answers
(bounded), then counts questions never answered, answered twice, answered out of order, and
for each fault the time from the fault to the first answer to a question asked after it.
"""

from __future__ import annotations

import time
from pathlib import Path

import trio

from ..harness import Run, open_run
from ..load import outcome
from ..metrics import ms, pct
from . import Column, pace, question_text

NAME = "storm"
COLUMNS = [
    Column("questions", "questions"),
    Column("lost", "lost", target="0"),
    Column("duplicated", "duplicated", target="0"),
    Column("reordered", "reordered", target="0"),
    Column("recover_max_s", "worst recovery s"),
    Column("recover_kill_s", "recovery after SIGKILL s"),
    Column("p99_ms", "p99 ms"),
]
SYSTEMS_QUICK = ("mchat-actors",)
RATE_PER_S = 4.0
DELAY_S = 0.05

FULL = [(4.0, "drop"), (10.0, "drop-abrupt"), (16.0, "wipe-resume"),
        (22.0, "refuse-5s"), (32.0, "sigkill"), (44.0, "end")]
QUICK = [(0.8, "drop-abrupt"), (2.0, "wipe-resume"), (3.2, "refuse-1.5s"), (5.0, "sigkill"),
         (6.5, "end")]


async def inject(run: Run, kind: str) -> float:
    """Start the fault; return its duration in seconds (0 for an instant one)."""
    if kind == "drop":
        await run.fake.control("drop_websockets", {"abrupt": False})
    elif kind == "drop-abrupt":
        await run.fake.control("drop_websockets", {"abrupt": True})
    elif kind == "wipe-resume":
        await run.fake.control("forget_resume_state")
        await run.fake.control("drop_websockets", {"abrupt": True})
    elif kind.startswith("refuse-"):
        seconds = float(kind.removeprefix("refuse-").removesuffix("s"))
        await run.fake.control("refuse_websockets", {"seconds": seconds})
        await run.fake.control("drop_websockets", {"abrupt": True})
        return seconds
    elif kind == "sigkill":
        await run.restart_bot(kill=True)
    return 0.0


async def run_system(system: str, workdir: Path, quick: bool) -> dict[str, dict[str, object]]:
    schedule = QUICK if quick else FULL
    end_s = schedule[-1][0]
    faults: list[dict[str, object]] = []
    async with open_run(system, workdir, label="storm", delay_s=DELAY_S,
                        n_channels=3 if quick else 6) as run:
        await run.warm_up()
        channels = run.channels()
        started = time.time()

        async def ask(i: int) -> None:
            await run.users.post(channels[i % len(channels)], question_text(i), question=True)

        async def storm() -> None:
            for at, kind in schedule:
                await trio.sleep(max(0.0, started + at - time.time()))
                if kind == "end":
                    return
                t = time.time() - started
                faults.append({"kind": kind, "at_s": round(t, 2),
                               "seconds": await inject(run, kind)})

        async with trio.open_nursery() as nursery:
            nursery.start_soon(storm)
            await pace(ask, RATE_PER_S, end_s)
        await run.wait_replies(run.expected(), timeout_s=20.0 if quick else 60.0,
                               quiet_s=8.0 if quick else 20.0)
        result = await outcome(run.fake, since_ms=run.load_from_ms)
    recover: dict[str, float | None] = {}
    for f in faults:
        at = started + float(f["at_s"])  # type: ignore[arg-type]
        after = [a for a in result.answers if int(a.trigger["create_at"]) / 1000 >= at
                 and a.replies]
        first = min((int(a.replies[0]["create_at"]) / 1000 for a in after), default=None)
        f["recover_s"] = None if first is None else round(first - at, 2)
        recover[str(f["kind"])] = f["recover_s"]  # type: ignore[assignment]
    lat = [a.latency_s for a in result.answers if a.latency_s is not None]
    known = [v for v in recover.values() if v is not None]
    return {"storm": {
        "questions": len(result.answers), "lost": result.lost,
        "duplicated": result.duplicated, "reordered": result.reordered,
        "recover_max_s": max(known) if len(known) == len(recover) and known else None,
        "recover_kill_s": recover.get("sigkill"), "p99_ms": ms(pct(lat, .99)),
        "faults": faults,
        "series": {"replies": [
            [round(int(a.trigger["create_at"]) / 1000 - started, 3),
             round(int(a.replies[0]["create_at"]) / 1000 - started, 3)]
            for a in result.answers if a.replies],
            "unanswered": [round(int(a.trigger["create_at"]) / 1000 - started, 3)
                           for a in result.answers if not a.replies],
            "end_s": end_s},
    }}
