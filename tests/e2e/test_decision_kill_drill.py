"""Kill and replay drills of the decision lane (issue 13 acceptance), and the backtest on a live run.

Kill drill: the spine runs to P8 on the Kafka bus, then the rtdl_decision_lane pack decides the
whole traffic stream while DF, AL and DLA are SIGKILLed at random moments (only our own pack's
children, by pid) and the pack restarts them. Afterwards every admitted traffic event has exactly
one decision, every intent exactly one effect and one audited outcome, lineage_unresolved_total is
0, the audit chain verifies, every decision was taken GREEN on complete inputs (the lane is
healthy: a kill costs time, never features), the decisions are exactly those an uninterrupted DF
takes from the same events (the backtest below: the run's archive decided again, in one pass,
through the same code), and a sampler that ran the whole time never saw a committed offset ahead
of the durable position of its group. (An uninterrupted second spine run as the reference doubled
the drill's time for the same proof: a healthy run's decisions are a function of its events.)

Replay drill (on the drilled run): DF, AL and DLA re-read their topics under a second consumer
group (`run --replay-group r1`): byte-identical decision records and outbox bytes, no new effect
(every intent counted once more as a duplicate prevented), no new audit record.

Backtest (on the same run): the run's RTDL archive decided again with the live bundle reproduces
the live decisions exactly (same cores, same digest); a candidate with a lower REVIEW threshold
changes the expected ones.

Sizes: FP_DRILL_DECISION_KILLS kills per worker (default 3; `make drills`: 10) and
FP_DRILL_DECISION_GATE events per output (default 300; `make drills`: 5000, i.e. 20k events).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from controller.cli.main import app
from controller.compute.factory import backend_for
from controller.substrate.local import settings_for
from controller.substrate.state import read_state, state_dir
from runtime.components import consumer_group_id, replay_consumer_group_id
from runtime.contracts.registry import load_registry
from runtime.db.postgres import connect
from runtime.decision.bundle import DEFAULT_POLICY
from runtime.decision.df.store import group_positions
from runtime.rtdl.events import TRAFFIC_CLASSES
from runtime.rtdl.handler import topics_for
from tests.support.decision_lane import LaneState, chain_verifies, lane_state, wait_settled
from tests.support.drills import Killer, OffsetSampler, run_alongside, stop_all

runner = CliRunner()
KILLS = int(os.environ.get("FP_DRILL_DECISION_KILLS", "3"))
GATE = int(os.environ.get("FP_DRILL_DECISION_GATE", "300"))
PACK = "rtdl_decision_lane"
VICTIMS = ("df", "al", "dla")
WAIT_S = float(os.environ.get("FP_DRILL_DECISION_WAIT_S", "600"))


class Lane:
    """One run of the spine to P8 on the Kafka bus, and its decision lane pack."""

    def __init__(self) -> None:
        up = runner.invoke(app, ["dev-min-up", "--bus", "kafka"])
        assert up.exit_code == 0, up.output
        run = runner.invoke(app, ["dev-min-run", "--to", "P8", "--gate", str(GATE)])
        assert run.exit_code == 0, run.output
        self.registry = load_registry("local_parity")
        substrate = read_state(state_dir(self.registry))
        assert substrate is not None and substrate.db_dsn
        self.substrate = substrate
        self.settings = settings_for(substrate, self.registry)
        self.dsn = str(substrate.db_dsn)
        self.root = Path.cwd() / self.registry.text("LOCAL_RUNS_ROOT")
        self.run_id = (self.root / "ACTIVE_RUN_ID").read_text().strip()
        self.env = substrate.runtime_environment(self.registry)
        self.backend = backend_for(self.registry, runs_root=self.root, environment=self.env)

    def groups(self, replay: str | None = None) -> dict[str, list[str]]:
        """The lane workers' consumer groups (or their replay groups) -> their input topics."""
        rtdl = [self.registry.topic("FP_BUS_RTDL_V1").name]
        inputs = {"df": topics_for(self.settings, TRAFFIC_CLASSES), "al": rtdl, "dla": rtdl}
        return {(replay_consumer_group_id(self.registry, c, self.run_id, replay) if replay
                 else consumer_group_id(self.registry, c, self.run_id)): t for c, t in inputs.items()}

    def child(self, *argv: str) -> subprocess.Popen[bytes]:
        """`python -m runtime <argv>` for this run, as the pack supervisor starts its daemons."""
        env = {**os.environ, **self.env, self.registry.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY"): self.run_id,
               self.registry.text("ENVVAR_RUNS_ROOT"): str(self.root.resolve())}
        log = (self.root / self.run_id / f"drill-{'-'.join(argv[:2])}.log").open("ab")
        return subprocess.Popen([sys.executable, "-m", "runtime", *argv], env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def _outbox(dsn: str, run_id: str) -> dict[str, str]:
    """sha256 of every outbox row's bytes of the lane's components (record id -> digest)."""
    with connect(dsn) as conn:
        rows = conn.execute("SELECT component, record_id, value FROM worker_outbox WHERE platform_run_id = %s"
                            " AND component IN ('df', 'action_layer', 'decision_log_audit')", (run_id,)).fetchall()
    return {f"{c}/{r}": hashlib.sha256(bytes(v)).hexdigest() for c, r, v in rows}


def _decision_rows(dsn: str, run_id: str) -> dict[str, str]:
    """decision id -> the stored record's bytes (as text)."""
    with connect(dsn) as conn:
        rows = conn.execute("SELECT decision_id, record::text FROM df_decisions WHERE platform_run_id = %s", (run_id,)).fetchall()
    return {str(d): str(r) for d, r in rows}


def _assert_lane_whole(state: LaneState) -> None:
    assert state.undecided == [], state.undecided[:5]
    assert state.decisions == state.distinct_events > 0  # exactly one decision per admitted traffic event
    assert state.effects == state.intents == state.distinct_effect_intents  # one effect (outcome) per intent
    assert state.audit.get("decision") == state.decisions and state.audit.get("intent") == state.intents
    assert state.audit.get("outcome") == state.intents
    assert state.lineage_unresolved_total == 0


def _replay_drill(lane: Lane) -> dict[str, Any]:
    """DF, AL and DLA re-read everything under replay group r1; returns the figures."""
    before = (lane_state(lane.dsn, lane.run_id), _decision_rows(lane.dsn, lane.run_id), _outbox(lane.dsn, lane.run_id))
    live, replay = lane.groups(), lane.groups("r1")
    with connect(lane.dsn) as conn:
        target = {r: group_positions(conn, g) for g, r in zip(live, replay, strict=True)}
    started = time.monotonic()
    children = [lane.child(c, "run", "--replay-group", "r1") for c in VICTIMS]
    try:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with connect(lane.dsn) as conn:
                if all(group_positions(conn, g) == target[g] for g in replay):
                    break
            assert all(c.poll() is None for c in children), [c.returncode for c in children]
            time.sleep(1.0)
        seconds = time.monotonic() - started
    finally:
        for c in children:
            c.send_signal(signal.SIGTERM)
        for c in children:
            c.wait(timeout=60)
    with connect(lane.dsn) as conn:
        assert all(group_positions(conn, g) == target[g] for g in replay), "a replay group did not reach the end"
    after = (lane_state(lane.dsn, lane.run_id), _decision_rows(lane.dsn, lane.run_id), _outbox(lane.dsn, lane.run_id))
    assert after[1] == before[1]  # byte-identical decision records, none new
    assert after[2] == before[2]  # the outbox holds the same bytes: nothing new reached the bus
    assert after[0].effects == before[0].effects  # 0 new actions ...
    # ... each intent record on the bus counted once more: every intent, plus the copies a DF killed
    # between publishing its outbox and marking it published put on the bus (AL counted those
    # live; redeliveries within AL's own group are skipped by its positions, never counted)
    assert after[0].duplicates_prevented - before[0].duplicates_prevented == before[0].intents + before[0].duplicates_prevented
    assert after[0].audit == before[0].audit and after[0].lineage_unresolved_total == 0  # nothing new in the audit
    return {"replay_seconds": round(seconds, 1), "duplicates_prevented": after[0].duplicates_prevented}


def _backtest(lane: Lane, tmp: Path) -> dict[str, Any]:
    """The live bundle reproduces the live decisions; a lower REVIEW threshold changes the expected ones."""
    candidate = yaml.safe_load(DEFAULT_POLICY.read_text())
    candidate["version"] = int(candidate["version"]) + 1
    candidate["thresholds"]["REVIEW"] = round(float(candidate["thresholds"]["STEP_UP"]) + 0.01, 4)
    policy = tmp / "candidate.yaml"
    policy.write_text(yaml.safe_dump(candidate))
    docs = {}
    for name, path in (("live", DEFAULT_POLICY), ("candidate", policy)):
        out = tmp / f"backtest-{name}.json"
        child = lane.child("df", "backtest", "--policy", str(path), "--out", str(out))
        assert child.wait(timeout=WAIT_S) == 0, (lane.root / lane.run_id / "drill-df-backtest.log").read_text()[-3000:]
        docs[name] = json.loads(out.read_text())
    live = docs["live"]
    assert live["live_reproduced"]["exact"] and live["live_reproduced"]["identical"] == live["traffic_events"]
    assert live["live_reproduced"]["backtest_digest"] == live["live_reproduced"]["live_digest"]
    live_digest = live["live_reproduced"]["live_digest"]
    assert live["changed"]["changed"] == 0 and live["actions_taken"] == 0
    cand = docs["candidate"]["changed"]
    assert cand["changed"] > 0
    assert all(t.split("->")[1] == "REVIEW" and t.split("->")[0] in ("APPROVE", "STEP_UP") for t in cand["by_transition"])
    assert cand["outcomes_after"].get("DECLINE") == cand["outcomes_before"].get("DECLINE")
    q_live, q_cand = docs["candidate"]["quality"]["live"]["flow"], docs["candidate"]["quality"]["candidate"]["flow"]
    assert q_cand["flagged"] > q_live["flagged"] and q_cand["recall"] >= q_live["recall"]
    return {"transitions": cand["by_transition"], "flow_live": q_live, "flow_candidate": q_cand, "live_digest": live_digest}


@pytest.mark.slow
def test_sigkilled_df_al_dla_decide_act_and_audit_everything_once_as_an_uninterrupted_run(
        spine_workdir: Path, tmp_path: Path) -> None:
    # The killed run first: the lane's groups exist only for it, so every commit the sampler sees is this run's.
    lane = Lane()
    sampler = OffsetSampler(lane.settings, lane.groups())
    killer = Killer(lane.root, lane.registry, PACK, lane.run_id, sampler.flowing, victims=VICTIMS, kills=KILLS)
    stop, threads = run_alongside(killer, sampler)
    started = time.monotonic()
    try:
        assert lane.backend.start_pack(PACK, lane.run_id).running
        drilled = wait_settled(lane.dsn, lane.run_id, WAIT_S, also=lambda: killer.done)
        kills_at_settle = dict(killer.kills)
        time.sleep(3.0)  # the last restarted workers come up: nothing new may appear
        drilled = lane_state(lane.dsn, lane.run_id)
        ok, problems = chain_verifies(lane.dsn, lane.settings.bucket("S3_EVIDENCE_BUCKET"), lane.run_id)
    finally:
        stop_all(stop, threads)
        lane.backend.stop_pack(PACK)
    seconds = time.monotonic() - started
    assert killer.done, killer.kills
    _assert_lane_whole(drilled)
    assert ok, problems
    assert sampler.samples > 0 and not sampler.violations, sampler.violations[:5]
    # a healthy lane decides GREEN on complete inputs however often DF is killed
    assert (drilled.by_posture, drilled.degraded) == ({"GREEN": drilled.decisions}, 0), (drilled.by_posture, drilled.degraded)
    replay = _replay_drill(lane)
    backtest = _backtest(lane, tmp_path)  # the reference: the same events decided again in one uninterrupted pass
    assert backtest["live_digest"] == drilled.digest
    print(f"\ndecision kill drill: gate {GATE}, {drilled.decisions} decisions, {drilled.intents} intents, kills {kills_at_settle}"
          f" (by settle), {seconds:.0f}s; sampler {sampler.samples} samples; replay {replay}; backtest {backtest}")
