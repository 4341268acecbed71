"""``python -m bench plot [--results DIR]``: PNGs from the JSON of ``python -m bench run``.

- ``backlog-requests.png``: the bot's REST requests per second over time, per system, against
  the limit line (429s in red);
- ``answer-latency.png``: distribution (CDF) of post-to-reply latency per system and delay;
- ``storm-timeline.png``: per system, the faults as bands and every answer as a point
  (x: when it was posted, y: its latency), unanswered questions as red crosses.

Needs matplotlib (the ``bench`` extra). Each figure is skipped when its JSON is missing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .runner import RESULTS

COLORS = {"mchat-actors": "tab:blue", "serial": "tab:orange", "driver": "tab:green",
          "mmpy": "tab:purple", "raw": "tab:gray"}


def _load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _ok(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s: r for s, r in doc["systems"].items() if isinstance(r, dict) and "error" not in r}


def backlog_requests(doc: dict[str, Any], out: Path) -> Path:
    import matplotlib.pyplot as plt

    systems = _ok(doc)
    variants = sorted({v for r in systems.values() for v in r}, key=lambda v: v != "200ms")
    fig, axes = plt.subplots(len(systems), len(variants), squeeze=False, sharey=True,
                             figsize=(5.5 * len(variants), 2.2 * len(systems)))
    for row, (system, result) in enumerate(systems.items()):
        for col, variant in enumerate(variants):
            ax = axes[row][col]
            series = result.get(variant, {}).get("series", {})
            per_s = series.get("requests_per_s", [])
            limit = series.get("limit", 10)
            ax.step(range(len(per_s)), per_s, where="post", color=COLORS.get(system, "k"),
                    label="requests/s")
            too_many = series.get("http_429_per_s", [])
            if any(too_many):
                ax.bar(range(len(too_many)), too_many, color="tab:red", alpha=0.6,
                       label="429/s")
            ax.axhline(limit, color="k", linestyle="--", linewidth=1, label=f"limit {limit:g}")
            ax.set_title(f"{system}, ChatService {variant}", fontsize=9)
            ax.set_ylabel("req/s")
            ax.set_ylim(bottom=0)
            if row == len(systems) - 1:
                ax.set_xlabel("seconds since the first question")
            if row == 0 and col == 0:
                ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    path = out / "backlog-requests.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def answer_latency(doc: dict[str, Any], out: Path) -> Path:
    import matplotlib.pyplot as plt

    systems = _ok(doc)
    variants = sorted({v for r in systems.values() for v in r}, key=lambda v: v != "200ms")
    fig, axes = plt.subplots(1, len(variants), squeeze=False, figsize=(6 * len(variants), 3.6))
    for col, variant in enumerate(variants):
        ax = axes[0][col]
        for system, result in systems.items():
            lat = sorted(result.get(variant, {}).get("series", {}).get("latency_ms", []))
            if lat:
                ax.step(lat, [(i + 1) / len(lat) for i in range(len(lat))], where="post",
                        label=system, color=COLORS.get(system, "k"))
        ax.set_xscale("log")
        ax.set_xlabel("post-to-reply latency, ms (log)")
        ax.set_ylabel("share of answers")
        ax.set_title(f"answer: ChatService {variant}, questions at 5/s", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "answer-latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def storm_timeline(doc: dict[str, Any], out: Path) -> Path:
    import matplotlib.pyplot as plt

    systems = _ok(doc)
    fig, axes = plt.subplots(len(systems), 1, squeeze=False, sharex=True,
                             figsize=(10, 2.2 * len(systems)))
    for row, (system, result) in enumerate(systems.items()):
        ax = axes[row][0]
        storm = result.get("storm", {})
        series = storm.get("series", {})
        for fault in storm.get("faults", []):
            start = fault["at_s"]
            width = max(float(fault.get("seconds") or 0), 0.25)
            ax.axvspan(start, start + width, color="tab:red", alpha=0.25)
            ax.text(start, 1.0, fault["kind"], rotation=90, fontsize=6, va="top",
                    transform=ax.get_xaxis_transform())
        replies = series.get("replies", [])
        if replies:
            ax.scatter([q for q, _ in replies], [r - q for q, r in replies], s=6,
                       color=COLORS.get(system, "k"), label="answered")
        lost = series.get("unanswered", [])
        if lost:
            ax.scatter(lost, [0] * len(lost), marker="x", color="tab:red", s=18,
                       label=f"never answered ({len(lost)})")
        ax.set_ylabel("latency s")
        ax.set_title(f"{system}: lost {storm.get('lost')}, duplicated "
                     f"{storm.get('duplicated')}, reordered {storm.get('reordered')}",
                     fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1][0].set_xlabel("seconds since the storm began (question posted at x)")
    fig.tight_layout()
    path = out / "storm-timeline.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench plot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="folder of the JSON files; the PNGs go there too")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    made = []
    for name, draw in (("backlog", backlog_requests), ("answer", answer_latency),
                       ("storm", storm_timeline)):
        doc = _load(args.results, name)
        if doc is None:
            print(f"{name}.json not in {args.results}: its plot is skipped")
            continue
        made.append(draw(doc, args.results))
    for path in made:
        print(f"wrote {path}")
    return 0 if made else 1
