"""How long `fp stacks synth` takes for all stacks, against the bare cost of importing the bindings.

Each run is a fresh process (what an operator and `fp handles lint` pay). The baseline is a
process that only imports cdktn and the AWS provider modules the stacks use; the figure is a
full synth of core + demo + local_parity into a temporary directory. The issue's limit is 60 s.
`main(smoke=True)` (`python -m benchmarks --smoke`) runs the baseline's and the figure's imports
once in one process: it proves the benchmark's code still imports (tests/stacks synthesises every
stack already, so the smoke run does not pay a second synth).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

RUNS = 3
LIMIT_SECONDS = 60.0
_BASELINE = "import stacks.app"  # every binding module the stacks import, nothing synthesised
_FIGURE_IMPORTS = "import sys; from pathlib import Path; from stacks.synth import synth"
_FIGURE = f"{_FIGURE_IMPORTS}; synth(out_dir=Path(sys.argv[1]), sha='0' * 40, window_end_utc='bench')"


def _timed(code: str, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True)
    return time.perf_counter() - started


def main(smoke: bool = False) -> int:
    """Print medians of baseline and full synth; non-zero when synth breaks the 60 s limit."""
    if smoke:
        seconds = _timed(f"{_BASELINE}; {_FIGURE_IMPORTS}")
        print(f"smoke: baseline and figure imports load ({seconds:.1f} s)")
        return 0
    baseline, figure = [], []
    for _ in range(RUNS):
        baseline.append(_timed(_BASELINE))
        with tempfile.TemporaryDirectory() as out:
            figure.append(_timed(_FIGURE, out))
    b, f = statistics.median(baseline), statistics.median(figure)
    print(f"import bindings only (baseline): median {b:.2f} s  runs {[round(x, 2) for x in baseline]}")
    print(f"synth core+demo+local_parity:    median {f:.2f} s  runs {[round(x, 2) for x in figure]}")
    print(f"synth / baseline: {f / b:.2f}x; limit {LIMIT_SECONDS:.0f} s -> {'OK' if f < LIMIT_SECONDS else 'TOO SLOW'}")
    return 0 if f < LIMIT_SECONDS else 1
