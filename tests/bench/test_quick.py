"""``python -m bench run --quick SCENARIO ...``: every scenario runs end to end and produces its
figures.

Real processes (the fake Mattermost, the fixed-delay ChatService, mchat-actors, the serial
peer), real sockets. Checks that each scenario wrote its JSON with every figure filled in for
mchat-actors and that the terminal got progress lines and a table per scenario; the values are
the benchmark's business, not this test's. The scenarios run in separate tests (one run of
``bench run`` each, one of them with two scenarios in one run) so that ``make test``'s workers
share them out; together they are the whole of ``python -m bench run --quick``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.scenarios import ORDER

ROOT = Path(__file__).resolve().parents[2]

RUNS = [("answer",), ("backlog",), ("storm",), ("ingest",), ("noisy", "scale")]


def test_the_runs_cover_every_scenario_once() -> None:
    assert sorted(n for run in RUNS for n in run) == sorted(ORDER)


@pytest.mark.slow
@pytest.mark.serve(alone=True)  # its recovery windows are a few seconds (tests/conftest.py)
@pytest.mark.parametrize("names", RUNS, ids="+".join)
def test_quick_run_produces_every_scenarios_figures(tmp_path: Path, names: tuple[str, ...]) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--quick", "--out", str(out),
         "--workdir", str(tmp_path / "work"), *names],
        cwd=ROOT, capture_output=True, text=True, timeout=400, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert sorted(p.stem for p in out.glob("*.json")) == sorted(names)  # no other scenario ran
    for name in names:
        doc = json.loads((out / f"{name}.json").read_text())
        assert doc["scenario"] == name and doc["quick"] is True
        ours = doc["systems"]["mchat-actors"]
        assert "error" not in ours, ours
        for column in doc["columns"]:
            filled = [v[column["key"]] for v in ours.values()
                      if v.get(column["key"]) is not None]
            assert filled, f"{name}: no figure for {column['key']}"
        assert f"== {name} (quick)" in proc.stdout
    if "answer" in names:
        answer = json.loads((out / "answer.json").read_text())
        assert "error" not in answer["systems"]["serial"]
        ratio = answer["ratios"]["200ms"]["serial"]
        assert ratio["answers_per_s"] is not None and ratio["p99_ms"] is not None
    if "ingest" in names:
        ingest = json.loads((out / "ingest.json").read_text())
        assert ingest["systems"]["raw"]["max"]["highest_kept_up_per_s"] is not None
    assert " t=" in proc.stdout and "posted=" in proc.stdout  # progress while running
    tables = re.findall(r"^variant +system ", proc.stdout, re.MULTILINE)
    assert len(tables) == len(names)  # one table per scenario
