"""`python -m bench [--small]`: run every benchmark in turn; each prints its own numbers."""

from __future__ import annotations

import subprocess
import sys

BENCHES = ["bench.bench_runtime", "bench.bench_sender", "bench.bench_chat", "bench.bench_fake"]


def main() -> int:
    extra = sys.argv[1:]
    failed = 0
    for module in BENCHES:
        print(f"\n=== {module} {' '.join(extra)}", flush=True)
        try:
            __import__(module)
        except ImportError as exc:
            print(f"(not available: {exc})")
            continue
        args = ["--quick" if (a == "--small" and module == "bench.bench_sender") else a
                for a in extra]
        failed |= subprocess.call([sys.executable, "-m", module, *args])
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
