"""Run every benchmark module (bench_*.py) in turn; each prints its own figures and baseline.

`python -m benchmarks [--smoke] [bench_name ...]`: `--smoke` runs each benchmark once at a tiny
size (`main(smoke=True)`), which `make test` does to catch import rot and crashes; its figures
mean nothing. Names restrict the run to those modules.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import benchmarks


def bench_names() -> list[str]:
    """Every benchmark module of the package, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    """Import and run each benchmark's `main()`; a failing benchmark makes the exit non-zero."""
    args = list(sys.argv[1:] if argv is None else argv)
    smoke = "--smoke" in args
    only = [a for a in args if a != "--smoke"]
    names = bench_names()
    unknown = sorted(set(only) - set(names))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        if only and name not in only:
            continue
        print(f"== {name}{' (smoke)' if smoke else ''}", flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        failed += int(bool(module.main(smoke=smoke)))
    if not names:
        print("no benchmarks yet")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
