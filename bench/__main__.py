"""``python -m bench run [--quick] [SCENARIO ...]`` (the load simulation), ``python -m bench plot``
(its PNGs), ``python -m bench markdown`` (its tables for docs/benchmarks.md).

Without a sub-command, the older component benchmarks run in turn (``--small`` for short):
bench_runtime, bench_sender, bench_chat, bench_fake; each prints its own numbers.
"""

from __future__ import annotations

import subprocess
import sys

BENCHES = ["bench.bench_runtime", "bench.bench_sender", "bench.bench_chat", "bench.bench_fake"]


def components(extra: list[str]) -> int:
    failed = 0
    for module in BENCHES:
        print(f"\n=== {module} {' '.join(extra)}", flush=True)
        args = ["--quick" if (a == "--small" and module == "bench.bench_sender") else a
                for a in extra]
        failed |= subprocess.call([sys.executable, "-m", module, *args])
    return failed


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        from .runner import main as run_main

        return run_main(argv[1:])
    if argv[:1] == ["plot"]:
        from .plots import main as plot_main

        return plot_main(argv[1:])
    if argv[:1] == ["markdown"]:
        from .report import markdown_main

        return markdown_main(argv[1:])
    if argv[:1] == ["components"]:
        return components(argv[1:])
    if argv and not argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    return components(argv)


if __name__ == "__main__":
    raise SystemExit(main())
