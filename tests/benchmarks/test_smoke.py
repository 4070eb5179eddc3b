"""Every benchmark still runs: `python -m benchmarks --smoke <name>` at a tiny size, exit 0.

Not a timed test (the figures of a smoke run mean nothing): it catches import rot and crashes,
which is how `make bench` broke unnoticed before.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.__main__ import bench_names
from runtime.paths import REPO_ROOT


def test_every_benchmark_module_is_found() -> None:
    assert {"bench_bus", "bench_ig", "bench_oracle", "bench_spine", "bench_stacks_synth"} <= set(bench_names())


#: Benchmarks whose smoke run is a whole spine (P(-1)..P12, about a minute): `make test-fast` skips them.
SPINE_BENCHMARKS = {"bench_spine"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SPINE_BENCHMARKS else n
                                  for n in bench_names()])
def test_benchmark_runs_once_at_a_tiny_size(name: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", name], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"== {name} (smoke)" in proc.stdout


def test_unknown_benchmark_name_is_refused() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "bench_nope"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "unknown benchmark(s): bench_nope" in proc.stderr
