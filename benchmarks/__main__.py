"""Run every benchmark module (bench_*.py) in turn; each prints its own figures and baseline."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import benchmarks


def main() -> int:
    """Import and run each benchmark's `main()`; a failing benchmark makes the exit non-zero."""
    failed = 0
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    only = sys.argv[1:]
    for name in names:
        if only and name not in only:
            continue
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        failed += int(bool(module.main()))
    if not names:
        print("no benchmarks yet")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
