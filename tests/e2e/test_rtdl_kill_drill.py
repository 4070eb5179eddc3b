"""Kill drill of the RTDL core (issue 12 acceptance).

While WSP streams and while P8 waits for the catch-up, every rtdl_core worker is SIGKILLed at
random moments (only our own pack's children, by pid) and its pack restarts it. Afterwards P8 must
pass with no dead letters and with the state digest of an uninterrupted run of the same seed and gate on the same
substrate (state digests leave run ids out), and a
sampler that ran the whole time must never have seen a committed offset ahead of the durable
position of its group. Sizes: FP_DRILL_RTDL_KILLS kills per worker (default 3; `make drills`: 20)
and FP_DRILL_RTDL_GATE events per output (default 300; `make drills`: 5000, i.e. 20k events).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.substrate.local import settings_for
from controller.substrate.state import read_state, state_dir
from runtime.components import consumer_group_id
from runtime.contracts.registry import Registry, load_registry
from runtime.settings import Settings
from tests.support.drills import Killer, OffsetSampler, run_alongside, stop_all

runner = CliRunner()
KILLS = int(os.environ.get("FP_DRILL_RTDL_KILLS", "3"))
GATE = int(os.environ.get("FP_DRILL_RTDL_GATE", "300"))
PACK = "rtdl_core"


def _ctx() -> tuple[Registry, Settings, Path]:
    registry = load_registry("local_parity")
    state = read_state(state_dir(registry))
    assert state is not None
    return registry, settings_for(state, registry), Path.cwd() / registry.text("LOCAL_RUNS_ROOT")


def _p8_digest(root: Path, run_id: str) -> dict[str, Any]:
    return dict(json.loads((root / run_id / "evidence" / "rtdl_core" / "caught_up.json").read_text()))


@pytest.mark.slow
def test_sigkilled_rtdl_workers_lose_nothing_double_nothing_and_never_commit_ahead(spine_workdir: Path) -> None:
    # The drill first, on topics that hold only this run's records (a later run's consumers commit
    # past the earlier run's records without a durable write, by design, which the sampler would flag).
    up = runner.invoke(app, ["dev-min-up", "--bus", "kafka"])
    assert up.exit_code == 0, up.output
    registry, settings, root = _ctx()
    run_id = (root / "ACTIVE_RUN_ID").read_text().strip()
    topics = sorted({registry.topic(s["topic"]).name for s in registry.mapping("EVENT_CLASS_MAP").values()})
    sampler = OffsetSampler(settings, {consumer_group_id(registry, c, run_id): topics for c in registry.mapping("PACKS")[PACK]})
    killer = Killer(root, registry, PACK, run_id, sampler.flowing, victims=registry.mapping("PACKS")[PACK], kills=KILLS)
    stop, threads = run_alongside(killer, sampler)
    try:
        result = runner.invoke(app, ["dev-min-run", "--to", "P8", "--gate", str(GATE)])
    finally:
        stop_all(stop, threads)
    assert result.exit_code == 0, result.output
    assert killer.done, killer.kills
    assert sampler.samples > 0 and not sampler.violations, sampler.violations[:5]
    # The reference: an uninterrupted run of the same seed, gate and bus on the same substrate.
    again = runner.invoke(app, ["dev-min-up", "--bus", "kafka"])
    assert again.exit_code == 0, again.output
    reference_run = (root / "ACTIVE_RUN_ID").read_text().strip()
    assert reference_run != run_id
    reference = runner.invoke(app, ["dev-min-run", "--to", "P8", "--gate", str(GATE)])
    assert reference.exit_code == 0, reference.output
    drilled, expected = _p8_digest(root, run_id), _p8_digest(root, reference_run)
    assert drilled["state_digest"] == expected["state_digest"]
    assert drilled["dead_letters"]["total"] == 0
