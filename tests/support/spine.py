"""The local spine brought to P8 through the operator CLI, for end-to-end tests of the planes after it:
the substrate, the run, its compute backend, and a phase context on the run (to call a phase that
the machine cannot reach yet, e.g. P10 before P9 is built)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner

from controller.cli.main import app
from controller.compute.factory import backend_for
from controller.compute.port import ComputeBackend
from controller.lifecycle import run_writer
from controller.phases.base import RunContext
from controller.runs import RunFolders
from controller.substrate.local import settings_for
from controller.substrate.state import SubstrateState, read_state, state_dir
from runtime.contracts.registry import Registry, load_registry
from runtime.db.postgres import connect
from runtime.decision.df.store import admitted_without_decision
from runtime.decision.dla.store import lineage_unresolved_total
from runtime.rtdl.events import TRAFFIC_CLASSES
from runtime.settings import Settings

runner = CliRunner()


@dataclass
class Spine:
    """A local substrate with a run that passed P1..P8."""

    registry: Registry
    substrate: SubstrateState
    settings: Settings
    folders: RunFolders
    run_id: str
    backend: ComputeBackend

    @property
    def dsn(self) -> str:
        """The runtime's database."""
        return str(self.substrate.db_dsn)

    def context(self, **options: Any) -> RunContext:
        """A phase context on the run, using the spine's backend (so its packs are the ones started here)."""
        ctx = RunContext(self.registry, self.run_id, self.folders, run_writer(self.registry, self.folders, self.run_id, self.settings),
                         self.settings, options)
        ctx.backend = self.backend
        return ctx


def spine_at_p8(bus: str, gate: int) -> Spine:
    """`fp dev-min-up --bus <bus>` then `fp dev-min-run --to P8 --gate <gate>`; fails the test otherwise."""
    up = runner.invoke(app, ["dev-min-up", "--bus", bus])
    assert up.exit_code == 0, up.output
    run = runner.invoke(app, ["dev-min-run", "--to", "P8", "--gate", str(gate)])
    assert run.exit_code == 0, run.output
    registry = load_registry("local_parity")
    substrate = read_state(state_dir(registry))
    assert substrate is not None and substrate.db_dsn
    folders = RunFolders.from_registry(registry)
    backend = backend_for(registry, runs_root=folders.root, environment=substrate.runtime_environment(registry))
    return Spine(registry, substrate, settings_for(substrate, registry), folders, folders.active_run_id(), backend)


def spine_down(spine: Spine, packs: tuple[str, ...]) -> None:
    """Stop the packs started over the run, then `fp dev-min-down`."""
    for pack in packs:
        spine.backend.stop_pack(pack)
    down = runner.invoke(app, ["dev-min-down"])
    assert down.exit_code == 0, down.output


#: The decision lane's pack, started over a run brought to P8 by `spine_at_p8`.
LANE = "rtdl_decision_lane"


def lane_settled(dsn: str, run_id: str) -> bool:
    """Every admitted traffic event decided, DLA's lineage complete (what P9 gates on)."""
    with connect(dsn) as conn:
        decided = conn.execute("SELECT count(*) FROM df_decisions WHERE platform_run_id = %s", (run_id,)).fetchone()
        return (not admitted_without_decision(conn, run_id, TRAFFIC_CLASSES) and bool(decided and decided[0])
                and lineage_unresolved_total(conn, run_id) == 0)


def wait_for_lane(spine: Spine, wait_s: float = 240.0) -> None:
    """Start the decision lane pack over the run and wait (bounded) until it settled."""
    assert spine.backend.start_pack(LANE, spine.run_id).running
    deadline = time.monotonic() + wait_s
    while not lane_settled(spine.dsn, spine.run_id) and time.monotonic() < deadline:
        time.sleep(2.0)
