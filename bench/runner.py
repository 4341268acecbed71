"""``python -m bench run [--quick] [--systems a,b] [--out DIR] [SCENARIO ...]``.

Runs each named scenario (all of ``scenarios.ORDER`` by default; ``NAMED`` ones only when
named) against
mchat-actors and every peer, one after the other, each in fresh processes; prints a table per
scenario and writes ``<out>/<scenario>.json`` (default ``bench/results``, or
``bench/results/quick`` with ``--quick``). A system that cannot run here (a peer not installed)
or fails is reported as such in the table and the JSON, never silently left out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import trio

from . import report
from .procs import ROOT, SYSTEMS, BenchError, available
from .scenarios import NAMED, ORDER, load

RESULTS = ROOT / "bench" / "results"


def machine() -> dict[str, object]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load_avg = os.getloadavg() if hasattr(os, "getloadavg") else ()
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu": cpu, "cores": os.cpu_count(), "load_avg_at_start": [round(x, 2) for x in
                                                                       load_avg]}


def systems_for(module: object, requested: list[str] | None, quick: bool) -> list[str]:
    """The scenario's systems that were asked for (by default: all; ``SYSTEMS_QUICK`` in quick).

    Systems that are not bots (the ingest scenario's ``raw`` decoder) always run.
    """
    own = list(getattr(module, "SYSTEMS", SYSTEMS))
    if requested is None:
        requested = list(getattr(module, "SYSTEMS_QUICK", ("mchat-actors",))) if quick else own
    return [s for s in own if s in requested or s not in SYSTEMS]


async def run_scenario(name: str, *, quick: bool, systems: list[str] | None, workdir: Path,
                       out_dir: Path) -> dict[str, object]:
    module = load(name)
    print(f"\n== {name}{' (quick)' if quick else ''}: "
          f"{(module.__doc__ or '').strip().splitlines()[0]}", flush=True)
    started = time.time()
    at_start = machine()  # the load average before the scenario's own processes
    results: dict[str, object] = {}
    for system in systems_for(module, systems, quick):
        why = available(system)
        if why:
            print(f"  {system}: skipped: {why}", flush=True)
            results[system] = {"error": f"not run: {why}"}
            continue
        print(f"  {system} ...", flush=True)
        t0 = time.time()
        try:
            results[system] = await module.run_system(system, workdir / name, quick)
        except (BenchError, OSError, ValueError, KeyError, ExceptionGroup) as exc:
            print(f"  {system}: FAILED: {exc}", flush=True)
            traceback.print_exc(file=sys.stdout)
            results[system] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"  {system} done in {time.time() - t0:.1f} s", flush=True)
    doc = {
        "scenario": name, "quick": quick,
        "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1), "machine": at_start,
        "command": "python -m bench run" + (" --quick" if quick else "")
                   + (f" --systems {','.join(systems)}" if systems else "") + f" {name}",
        "columns": [{"key": c.key, "header": c.header, "target": c.target, "ratio": c.ratio}
                    for c in module.COLUMNS],
        "systems": results,
    }
    doc["ratios"] = report.ratios(doc)
    await trio.Path(out_dir).mkdir(parents=True, exist_ok=True)
    await trio.Path(out_dir / f"{name}.json").write_text(
        json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(report.table(doc), flush=True)
    return doc


async def run(names: list[str], *, quick: bool, systems: list[str] | None, out_dir: Path,
              workdir: Path | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="mchat-bench-") as tmp:
        failed = 0
        for name in names:
            doc = await run_scenario(name, quick=quick, systems=systems,
                                     workdir=workdir or Path(tmp), out_dir=out_dir)
            failed += sum(1 for r in doc["systems"].values()  # type: ignore[union-attr]
                          if isinstance(r, dict) and (str(r.get("error", "")).startswith(
                              ("BenchError", "OSError", "ValueError", "KeyError"))
                              or any(isinstance(v, dict) and "failed" in v
                                     for v in r.values())))
    print(f"\nresults in {out_dir}", flush=True)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"any of {', '.join(ORDER + NAMED)} (default: all but "
                             f"{', '.join(NAMED)}, which run only when named)")
    parser.add_argument("--quick", action="store_true", help="short form of every scenario")
    parser.add_argument("--systems", default=None,
                        help="comma-separated, from " + ", ".join(SYSTEMS) + " (default: all; "
                             "with --quick mchat-actors, and serial in the answer scenario)")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the processes' logs and databases here (default: a temporary "
                             "folder, removed)")
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in ORDER + NAMED]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; "
                     f"choose from {', '.join(ORDER + NAMED)}")
    systems = None if args.systems is None else [
        s.strip() for s in args.systems.split(",") if s.strip()]
    bad = [s for s in systems or () if s not in SYSTEMS]
    if bad:
        parser.error(f"unknown system(s) {', '.join(bad)}; choose from {', '.join(SYSTEMS)}")
    out_dir = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    logging.basicConfig(level=logging.WARNING)
    # SIGTERM stops a run like Ctrl-C: every started process is stopped on the way out
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return trio.run(lambda: run(args.scenarios or list(ORDER), quick=args.quick,
                                systems=systems, out_dir=out_dir, workdir=args.workdir))
