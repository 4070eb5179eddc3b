"""`make demo`: the main job an operator runs first, end to end on the local substrate.

Brings the substrate up (P(-1), P0), runs the whole spine P1..P11 with Gate-200 (P11 closes the run:
Spine Green when every condition holds), tears down (P12, also after a failure), validates the
evidence bundle it wrote, prints the phase table, the closure and the report's path. Exit 0 only if
every step passed and the run closed SPINE_GREEN.

The demo's world is seed 42 at engine scale 2000 (DEMO_SCALE), the one the end-to-end suite runs:
its first 200 traffic events hold fraud flows, so the slice exercises every plane (cases and
labels included). At the scale a Gate-200 run gets by default (4000) they hold none (0 of 101
flows), no decision needs a human and P10 rightly fails with CASE_LABELS_NO_TRIGGERS
(docs/decisions.md, "Decision lane follows stream progress").
"""

from __future__ import annotations

import argparse
import sys

from controller.cli.common import console
from controller.cli.lifecycle import print_status
from controller.cli.options import registry_for, resolve_bus
from controller.cli.progress_view import progress_options
from controller.lifecycle import dev_min_down_local, dev_min_run_local, dev_min_up_local
from controller.phases.machine import Slice
from controller.status import closure
from controller.substrate.local import Ports
from runtime.errors import PlatformError
from runtime.evidence.bundle import validate_bundle
from runtime.store.local import FolderStore

#: The demo's engine scale: seed 42's world at 2000 (the engine's minimum, what the end-to-end
#: suite runs) has fraud flows among its first 200 traffic events; at 4000 it has none.
DEMO_SCALE = 2000


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--env", default=None, help="local_parity (the only environment the demo runs on)")
    parser.add_argument("--bus", default=None, help="kinesis or kafka")
    parser.add_argument("--to", default="P11", help="last phase of the run (default P11: the whole spine, closed by the reporter)")
    parser.add_argument("--gate", type=int, default=200, help="bounded gate: events per output")
    parser.add_argument("--seed", type=int, default=None, help="oracle world seed (default 42)")
    parser.add_argument("--scale", type=int, default=DEMO_SCALE,
                        help=f"oracle engine scale (default {DEMO_SCALE}: a world whose Gate-200 slice holds fraud flows)")
    args = parser.parse_args(argv)
    try:
        registry = registry_for(args.env)
        if registry.environment != "local_parity":
            raise PlatformError("the demo runs on the embedded local substrate", code="WRONG_ENV", next_step="use ENV=local_parity")
        with console.status("P0: substrate up..."):
            up = dev_min_up_local(registry, bus=resolve_bus(args.bus, registry), ports=Ports.from_registry(registry))
        console.print(f"P(-1) PACKAGING_READY, P0 SUBSTRATE_READY: PASS  run {up.platform_run_id}")
        try:
            run = dev_min_run_local(registry, Slice(to=args.to), gate=args.gate, bus=None,
                                    progress=lambda pid, name: console.print(f"{pid} {name} ..."),
                                    options={"seed": args.seed, "scale": args.scale, **progress_options(console)})
            console.print(f"P1..{args.to}: PASS  run {run.platform_run_id} (bounded run, Gate-{args.gate})")
        finally:
            down = dev_min_down_local(registry)
        console.print(f"P12 TEARDOWN: PASS  run {down.platform_run_id}")
        report = validate_bundle(FolderStore(down.evidence_dir), "", registry)
    except PlatformError as e:
        console.print(f"[red]demo failed[/] {e.operator_line()}", highlight=False)
        return 1
    if not report.ok:
        for violation in report.violations:
            console.print(f"[red]violation[/] {violation}", highlight=False)
        return 1
    console.print(f"evidence bundle valid ({len(report.files)} files): {down.evidence_dir}")
    console.print(f"check it yourself: fp evidence validate {down.evidence_dir}")
    print_status(registry, down.evidence_dir)  # ends on the closure (SPINE_GREEN or what is missing) and the report's path
    if args.to == "P11":
        closed = closure(registry, down.evidence_dir)
        if closed is None or closed.status != "SPINE_GREEN":
            console.print("[red]demo failed[/] the run did not close SPINE_GREEN (the closure above names each condition"
                          " not met) -> next step: fp report", highlight=False)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
