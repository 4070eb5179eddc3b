"""Degrade drill of the decision lane (issue 13 acceptance): OFP stopped mid-stream.

The rtdl_decision_lane pack runs while the spine streams on Kafka (dev-min-run to P8 as a child
process). Once WSP has begun streaming the traffic with DL GREEN (a healthy streaming run is
GREEN), our own OFP child (by the pid its pack's state.json names) is stopped with SIGSTOP - a
process that no longer reads, commits or writes health, which the pack's supervisor does not
restart. DL must be out of GREEN within BOUND_S;
the decisions taken meanwhile carry FEATURES_LATE (or the posture's mark) and none without
features is APPROVE. Then SIGCONT: OFP catches up, DL returns to GREEN by itself, P8 passes and
every admitted traffic event has exactly one decision.

Sizes: FP_DRILL_DEGRADE_GATE events per output (default 1500: a stream long enough to stop OFP
in), FP_DRILL_DEGRADE_STOP_S how long OFP stays stopped at most (default 180; resumed once DF
decided without features), FP_DRILL_DEGRADE_BOUND_S the bound on leaving GREEN (default 10: DL's
tick is 1 s; a store that has not applied what IG admitted 5 s ago is AMBER, a stopped worker's
health counts as unknown after 15 s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.compute.factory import backend_for
from controller.compute.local_backend import pack_paths, read_pack_state
from controller.substrate.local import settings_for
from controller.substrate.state import read_state, state_dir
from runtime.contracts.registry import load_registry
from runtime.db.postgres import connect
from runtime.decision.df.store import current_posture
from runtime.rtdl.events import TRAFFIC_CLASSES
from tests.support.decision_lane import wait_settled

runner = CliRunner()
GATE = int(os.environ.get("FP_DRILL_DEGRADE_GATE", "1500"))
STOP_S = float(os.environ.get("FP_DRILL_DEGRADE_STOP_S", "180"))
BOUND_S = float(os.environ.get("FP_DRILL_DEGRADE_BOUND_S", "10"))
PACK = "rtdl_decision_lane"


def _until(what: Any, timeout_s: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(every)
    return False


def _ofp_pid(root: Path, registry: Any, run_id: str) -> int | None:
    state = read_pack_state(pack_paths(root, registry, "rtdl_core", run_id))
    for p in (state or {}).get("processes", []):
        if p["name"] == "ofp" and p.get("pid") and p["status"] == "RUNNING":
            return int(p["pid"])
    return None


def _window_decisions(dsn: str, run_id: str, since: float, until: float) -> list[tuple[str, str, list[str], str | None]]:
    """(outcome, posture, degrade codes, posture mark) of the decisions taken between two epoch times."""
    with connect(dsn) as conn:
        rows = conn.execute("SELECT outcome, posture, degrade_codes, record->>'posture_mark' FROM df_decisions"
                            " WHERE platform_run_id = %s AND decided_at >= to_timestamp(%s) AND decided_at <= to_timestamp(%s)",
                            (run_id, since, until)).fetchall()
    return [(str(o), str(p), list(c), m) for o, p, c, m in rows]


@pytest.mark.slow
def test_a_stopped_ofp_takes_dl_out_of_green_within_seconds_degrades_decisions_and_dl_recovers_by_itself(
        spine_workdir: Path) -> None:
    up = runner.invoke(app, ["dev-min-up", "--bus", "kafka"])
    assert up.exit_code == 0, up.output
    registry = load_registry("local_parity")
    substrate = read_state(state_dir(registry))
    assert substrate is not None and substrate.db_dsn
    settings, dsn = settings_for(substrate, registry), str(substrate.db_dsn)
    root = Path.cwd() / registry.text("LOCAL_RUNS_ROOT")
    run_id = (root / "ACTIVE_RUN_ID").read_text().strip()
    backend = backend_for(registry, runs_root=root, environment=substrate.runtime_environment(registry))
    fp = Path(sys.executable).parent / "fp"
    spine = subprocess.Popen([str(fp), "dev-min-run", "--to", "P8", "--gate", str(GATE)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    ofp_pid = None
    stopped = False
    figures: dict[str, Any] = {}
    try:
        run_json = registry.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=run_id) + registry.text("EVIDENCE_RUN_JSON_KEY")
        assert _until(lambda: settings.bucket("S3_EVIDENCE_BUCKET").exists(run_json), 300), "P1 did not pin the run"
        assert backend.start_pack(PACK, run_id).running

        def posture() -> str | None:
            with connect(dsn) as conn:
                return current_posture(conn, run_id)

        def admitted_traffic() -> int:  # P4's ingest probe is one
            with connect(dsn) as conn:
                row = conn.execute("SELECT count(*) FROM ig_admissions WHERE platform_run_id = %s AND state = 'ADMITTED'"
                                   " AND event_class = ANY(%s::text[])", (run_id, list(TRAFFIC_CLASSES))).fetchone()
            return 0 if row is None else int(row[0])

        # DL judges the lane, then mid-stream: WSP has begun streaming traffic (P4's probe is one)
        # and the stores keep up with it, so the drill starts from GREEN
        assert _until(lambda: posture() is not None, 600, 0.2), "DL recorded no posture"
        assert _until(lambda: admitted_traffic() > 1, 600, 0.05), "no traffic was streamed"
        ofp_pid = _ofp_pid(root, registry, run_id)
        assert ofp_pid is not None
        figures["posture_at_stop"] = posture()
        assert figures["posture_at_stop"] == "GREEN", f"a healthy streaming run is not GREEN {figures}"
        os.kill(ofp_pid, signal.SIGSTOP)
        stopped, t_stop, e_stop = True, time.monotonic(), time.time()
        figures["traffic_admitted_at_stop"] = admitted_traffic()
        assert figures["traffic_admitted_at_stop"] < GATE, "the traffic stream was over before OFP was stopped"
        assert _until(lambda: posture() != "GREEN", BOUND_S + 30), "DL stayed GREEN with OFP stopped"
        figures["non_green_after_s"] = round(time.monotonic() - t_stop, 1)
        figures["posture_while_stopped"] = posture()
        _until(lambda: any("FEATURES_LATE" in c for _, _, c, _ in _window_decisions(dsn, run_id, e_stop, time.time())),
               max(0.0, STOP_S - (time.monotonic() - t_stop)), 0.5)
        os.kill(ofp_pid, signal.SIGCONT)
        stopped, t_cont, e_cont = False, time.monotonic(), time.time()
        assert _until(lambda: posture() == "GREEN", 180, 0.5), f"DL did not return to GREEN (posture {posture()})"
        figures["back_to_green_s"] = round(time.monotonic() - t_cont, 1)
        out, _ = spine.communicate(timeout=900)
        assert spine.returncode == 0, out.decode()[-3000:]
        state = wait_settled(dsn, run_id, 300)
        window = _window_decisions(dsn, run_id, e_stop, e_cont + 2.0)  # + DF's last wait-out before it saw OFP again
        with connect(dsn) as conn:
            figures["decided_at"] = [str(x) for x in conn.execute(
                "SELECT min(decided_at), max(decided_at), count(*) FROM df_decisions WHERE platform_run_id = %s",
                (run_id,)).fetchone()]
        figures["stop_cont_epoch"] = (e_stop, e_cont)
        health = root / run_id / "decision_fabric" / "health" / "last_health.json"
        figures["df_counters"] = json.loads(health.read_text()).get("counters") if health.is_file() else None
    finally:
        if stopped and ofp_pid is not None:
            os.kill(ofp_pid, signal.SIGCONT)
        if spine.poll() is None:
            spine.terminate()
            spine.wait(timeout=60)
        backend.stop_pack(PACK)
    assert figures["non_green_after_s"] <= BOUND_S, figures
    assert window, f"no decision was taken while OFP was stopped {figures}"
    late = [w for w in window if "FEATURES_LATE" in w[2]]
    assert late and all(o != "APPROVE" for o, _, _, _ in late)  # no APPROVE without features
    # a decision under a posture other than GREEN says so (the posture's mark); one on complete
    # inputs under GREEN (an event OFP had read before it stopped) is a normal decision
    assert all(m for _, p, _, m in window if p != "GREEN"), [w for w in window if w[1] != "GREEN" and not w[3]][:5]
    assert not state.undecided and state.decisions == state.distinct_events and state.lineage_unresolved_total == 0
    print(f"\ndecision degrade drill: gate {GATE}, {figures}, {len(window)} decisions while OFP was stopped, "
          f"{len(late)} FEATURES_LATE; {state.decisions} decisions in all, degraded {state.degraded}")
