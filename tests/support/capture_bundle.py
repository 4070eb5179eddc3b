"""Capture a real evidence bundle (P(-1)..P7 at a tiny gate, then P12) for the validator's tests.

`python -m tests.support.capture_bundle DEST` brings the embedded substrate up in a scratch folder
(free loopback ports, like the `spine_workdir` fixture), runs `fp dev-min-run --to P7 --gate 3`,
tears down and copies the run's evidence folder to DEST. tests/runtime/evidence/fixtures/bundle_p7
was made this way; re-capture it when a producer changes what it writes.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from typer.testing import CliRunner

from controller.cli.main import app
from runtime.contracts.registry import load_registry
from tests.support.free_ports import free_port_registry

GATE = 3


def capture(dest: Path) -> Path:
    """Run the spine to P7 and P12 in a scratch folder and copy its evidence to `dest`."""
    scratch = Path(tempfile.mkdtemp(prefix="fp-capture-"))
    os.environ["FP_HANDLES_REGISTRY"] = str(free_port_registry(scratch))
    os.chdir(scratch)
    runner = CliRunner()
    try:
        for argv in (["dev-min-up", "--bus", "kinesis"], ["dev-min-run", "--to", "P7", "--gate", str(GATE)]):
            result = runner.invoke(app, argv)
            if result.exit_code != 0:
                raise SystemExit(f"{argv} failed:\n{result.output}")
    finally:
        runner.invoke(app, ["dev-min-down"])
    registry = load_registry("local_parity")
    root = scratch / registry.text("LOCAL_RUNS_ROOT")
    evidence = root / (root / "ACTIVE_RUN_ID").read_text().strip() / "evidence"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(evidence, dest)
    return dest


if __name__ == "__main__":
    print(capture(Path(sys.argv[1]).resolve()))
