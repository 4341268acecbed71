"""Terminal tables and the mchat-actors / peer ratios of a scenario's results document."""

from __future__ import annotations

from typing import Any

OURS = "mchat-actors"


def _variants(doc: dict[str, Any]) -> list[str]:
    seen: list[str] = []
    for result in doc["systems"].values():
        if isinstance(result, dict) and "error" not in result:
            seen.extend(v for v in result if v not in seen)
    return sorted(seen, key=lambda v: v == "max")  # a summary row goes last


def ratios(doc: dict[str, Any]) -> dict[str, dict[str, dict[str, float | None]]]:
    """variant -> peer -> figure -> mchat-actors' figure / the peer's, for ratio columns."""
    ours = doc["systems"].get(OURS)
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    if not isinstance(ours, dict) or "error" in ours or not any(
            c["ratio"] for c in doc["columns"]):
        return out
    for variant in _variants(doc):
        for peer, result in doc["systems"].items():
            if peer == OURS or not isinstance(result, dict) or variant not in result:
                continue
            mine, theirs = ours.get(variant, {}), result[variant]
            row: dict[str, float | None] = {}
            for col in doc["columns"]:
                if col["ratio"]:
                    a, b = mine.get(col["key"]), theirs.get(col["key"])
                    ok = isinstance(a, int | float) and isinstance(b, int | float) and b
                    row[col["key"]] = round(a / b, 2) if ok else None  # type: ignore[operator]
            if any(v is not None for v in row.values()):
                out.setdefault(variant, {})[peer] = row
    return out


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(doc: dict[str, Any]) -> str:
    """One row per (variant, system), then the ratio rows; targets in the header line."""
    cols = doc["columns"]
    header = ["variant", "system", *[c["header"] for c in cols]]
    rows: list[list[str]] = []
    for variant in _variants(doc):
        for system, result in doc["systems"].items():
            if isinstance(result, dict) and variant in result:
                figures = result[variant]
                rows.append([variant, system, *[_cell(figures.get(c["key"])) for c in cols]])
        for peer, row in doc.get("ratios", {}).get(variant, {}).items():
            rows.append([variant, f"ratio vs {peer}",
                         *[_cell(row.get(c["key"])) if c["ratio"] else "" for c in cols]])
    for system, result in doc["systems"].items():
        if isinstance(result, dict) and "error" in result:
            rows.append(["", system, result["error"][:100]])
    widths = [max(len(r[i]) if i < len(r) else 0 for r in [header, *rows])
              for i in range(len(header))]
    lines = ["  ".join(h.rjust(w) if i > 1 else h.ljust(w)
                       for i, (h, w) in enumerate(zip(header, widths, strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        if len(r) < len(header):
            lines.append(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}")
            continue
        lines.append("  ".join(c.rjust(w) if i > 1 else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    targets = [f"{c['header']}: {c['target']}" for c in cols if c.get("target")]
    if targets:
        lines.append("targets: " + "; ".join(targets))
    return "\n".join(lines)


def markdown(doc: dict[str, Any]) -> str:
    """The same table in Markdown, for docs/benchmarks.md."""
    cols = doc["columns"]
    out = ["| variant | system | " + " | ".join(c["header"] for c in cols) + " |",
           "|---|---|" + "---|" * len(cols)]
    for variant in _variants(doc):
        for system, result in doc["systems"].items():
            if isinstance(result, dict) and variant in result:
                f = result[variant]
                out.append(f"| {variant} | {system} | "
                           + " | ".join(_cell(f.get(c["key"])) for c in cols) + " |")
        for peer, row in doc.get("ratios", {}).get(variant, {}).items():
            out.append(f"| {variant} | **ratio vs {peer}** | " + " | ".join(
                _cell(row.get(c["key"])) if c["ratio"] else "" for c in cols) + " |")
    targets = [f"{c['header']} {c['target']}" for c in cols if c.get("target")]
    for system, result in doc["systems"].items():
        if isinstance(result, dict) and "error" in result:
            out.append(f"\n{system}: {result['error']}")
    if targets:
        out.append("\nTargets: " + "; ".join(targets) + ".")
    return "\n".join(out)


def markdown_main(argv: list[str]) -> int:
    """``python -m bench markdown [DIR]``: every scenario's table in Markdown, with its run."""
    import json
    from pathlib import Path

    from .runner import RESULTS
    from .scenarios import NAMED, ORDER

    folder = Path(argv[0]) if argv else RESULTS
    found = 0
    for name in ORDER + NAMED:
        path = folder / f"{name}.json"
        if not path.exists():
            continue
        found += 1
        doc = json.loads(path.read_text())
        doc["ratios"] = ratios(doc)
        m = doc["machine"]
        print(f"### {name}\n\n`{doc['command']}`, {doc['started']}, {doc['seconds']} s "
              f"(load average at start {m.get('load_avg_at_start')})\n")
        print(markdown(doc) + "\n")
    return 0 if found else 1
