"""Outage drill of the RTDL core (issue 12 acceptance: "Postgres down for 10 s, the bus down for 10 s").

The run is streamed and committed to P7 first, so the rtdl_core workers (started here by pack, not
by P2) face the whole run as a backlog. As soon as they make a first position durable, the
substrate's own PostgreSQL server is stopped (by the pid the substrate recorded) and started again
on the same port and data folder FP_DRILL_OUTAGE_S seconds later; then the Tansu broker is frozen
(SIGSTOP by its recorded pid) for as long and resumed (SIGCONT). Tansu keeps its log in memory, so
a stop and restart would lose every topic: a frozen broker is the outage it can survive (and the
harder one for a client: nothing fails, nothing answers).

Proven: while each dependency is away every worker's last_health.json turns RED naming it
(`DB_UNAVAILABLE` / `BUS_UNAVAILABLE`, `dependencies.<db|bus>.state == DOWN`); a sampler never sees
a committed offset ahead of the durable position; afterwards every worker is GREEN again by
itself with the outage counted, P8 passes with no dead letters and the outages in caught_up.json,
and the live state (OFP, IEG, CSFB) equals the pure-domain pass over the run's records read back
from the bus, row for row. Sizes: FP_DRILL_RTDL_OUTAGE_GATE events per output (default 300;
`make drills`: 5000) and FP_DRILL_OUTAGE_S (default 10).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.compute.local_backend import pack_paths, read_pack_state, start_pack
from controller.substrate.processes import StartedProcess, is_running, stop_pid
from controller.substrate.servers import start_postgres
from controller.substrate.state import read_state, state_dir, write_state
from runtime.contracts.registry import Registry
from runtime.worker.run import component_dir
from tests.support.rtdl_drill import PACK, drill_context, live_against_pure, rtdl_sampler

runner = CliRunner()
GATE = int(os.environ.get("FP_DRILL_RTDL_OUTAGE_GATE", "300"))
OUTAGE_S = float(os.environ.get("FP_DRILL_OUTAGE_S", "10"))


def _recorded(registry: Registry, name: str) -> StartedProcess:
    state = read_state(state_dir(registry))
    assert state is not None
    [proc] = [p for p in state.processes if p.name == name]
    assert is_running(proc.pid, proc.argv), f"{name} (pid {proc.pid}) is not running"
    return proc


def postgres_outage(registry: Registry, seconds: float) -> tuple[float, float]:
    """Stop the substrate's PostgreSQL (its recorded pid), wait, start it on the same port and data
    folder and record the new pid. Returns (went down, came back) as time.monotonic()."""
    proc = _recorded(registry, "postgres")
    assert stop_pid(proc.pid, proc.argv)
    down = time.monotonic()
    time.sleep(seconds)
    workdir = Path(proc.log).parent.parent
    started = start_postgres(registry.text("LOCAL_BIND_HOST"), proc.port, workdir)
    back = time.monotonic()
    state = read_state(state_dir(registry))
    assert state is not None
    write_state(state_dir(registry), replace(state, processes=[started if p.name == "postgres" else p for p in state.processes]))
    return down, back


def bus_outage(registry: Registry, seconds: float) -> tuple[float, float]:
    """Freeze the substrate's Tansu broker (SIGSTOP to its recorded pid) for `seconds`, then resume it."""
    proc = _recorded(registry, "tansu")
    os.kill(proc.pid, signal.SIGSTOP)
    down = time.monotonic()
    try:
        time.sleep(seconds)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    return down, time.monotonic()


@dataclass
class HealthWatcher:
    """Reads every worker's local last_health.json every 0.2 s and keeps what changed."""

    root: Path
    run_id: str
    components: list[str]
    seen: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        last: dict[str, str] = {}
        while not stop.is_set():
            for component in self.components:
                path = self.root / self.run_id / component_dir(component) / "health" / "last_health.json"
                try:
                    text = path.read_text()
                    doc = json.loads(text)
                except (OSError, ValueError):
                    continue
                if last.get(component) != text:
                    last[component] = text
                    self.seen.append((time.monotonic(), component, doc))
            stop.wait(0.2)

    def wait_up(self, dependency: str, timeout_s: float) -> bool:
        """Wait (bounded) until every worker's latest document says `dependency` is up again, so the
        next outage meets workers that are back at work rather than still backing off from this one."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            latest: dict[str, dict[str, Any]] = {}
            for _, who, doc in list(self.seen):
                latest[who] = doc
            if set(latest) == set(self.components) and all(
                    d["dependencies"][dependency]["state"] != "DOWN" for d in latest.values()):
                return True
            time.sleep(0.2)
        return False

    def red_for(self, dependency: str, code: str, window: tuple[float, float]) -> dict[str, bool]:
        """Per component: whether a RED document naming `dependency` was seen within the window."""
        start, end = window
        return {c: any(t >= start and t <= end and who == c and doc["health_state"] == "RED"
                       and doc["dependencies"][dependency]["state"] == "DOWN" and any(code in r for r in doc["reasons"])
                       for t, who, doc in self.seen) for c in self.components}


def _worker_pids(root: Path, registry: Registry, run_id: str) -> dict[str, int]:
    state = read_pack_state(pack_paths(root, registry, PACK, run_id)) or {}
    return {p["name"]: int(p["pid"]) for p in state.get("processes", []) if p.get("pid")}


@pytest.mark.slow
def test_rtdl_workers_ride_out_postgres_and_bus_outages_red_while_down_green_after_nothing_lost(spine_workdir: Path) -> None:
    began = time.monotonic()
    up = runner.invoke(app, ["dev-min-up", "--bus", "kafka"])
    assert up.exit_code == 0, up.output
    to_p7 = runner.invoke(app, ["dev-min-run", "--to", "P7", "--gate", str(GATE)])
    assert to_p7.exit_code == 0, to_p7.output
    streamed = time.monotonic()
    registry, settings, root = drill_context()
    run_id = (root / "ACTIVE_RUN_ID").read_text().strip()
    components = list(registry.mapping("PACKS")[PACK])
    state = read_state(state_dir(registry))
    assert state is not None
    stop = threading.Event()
    sampler = rtdl_sampler(settings, registry, run_id)
    watcher = HealthWatcher(root, run_id, components)
    threads = [threading.Thread(target=sampler.run, args=(stop,)), threading.Thread(target=watcher.run, args=(stop,))]
    for t in threads:
        t.start()
    try:
        start_pack(registry, PACK, run_id, root, state.runtime_environment(registry))
        pids_before = _worker_pids(root, registry, run_id)
        assert sampler.flowing.wait(120), "no rtdl_core worker made a position durable"
        flowing_at = sampler.durable_total
        db_window = postgres_outage(registry, OUTAGE_S)
        assert watcher.wait_up("db", 120), "a worker did not get its database back within 120 s"
        bus_window = bus_outage(registry, OUTAGE_S)
        gated_from = time.monotonic()
        result = runner.invoke(app, ["dev-min-run", "--from", "P8", "--to", "P8"])
        gated = time.monotonic()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert result.exit_code == 0, result.output
    # Every worker turned RED naming the dependency while it was away (a few seconds' grace to notice).
    grace = 8.0
    assert all((red := watcher.red_for("db", "DB_UNAVAILABLE", (db_window[0], db_window[1] + grace))).values()), red
    assert all((red := watcher.red_for("bus", "BUS_UNAVAILABLE", (bus_window[0], bus_window[1] + grace))).values()), red
    # Records were still to do when the database went away (the outage met a flowing stream).
    assert sampler.durable_total > flowing_at
    assert sampler.samples > 0 and not sampler.violations, sampler.violations[:5]
    # GREEN again by itself, with the outages counted by the worker that lived through them.
    restarted = {c for c, pid in _worker_pids(root, registry, run_id).items() if pids_before.get(c) != pid}
    evidence = root / run_id / "evidence"
    caught_up = json.loads((evidence / "rtdl_core" / "caught_up.json").read_text())
    assert set(caught_up["health"].values()) == {"GREEN"}
    assert caught_up["dead_letters"]["total"] == 0
    for component in set(components) - restarted:
        outages = caught_up["dependency_outages"][component]
        assert outages["db"]["outages"] >= 1 and outages["db"]["unavailable_seconds"] > 0, (component, outages)
        assert outages["bus"]["outages"] >= 1 and outages["bus"]["unavailable_seconds"] > 0, (component, outages)
    # Nothing lost, nothing doubled: live state equals the pure domains over the run's records on the bus.
    report = live_against_pure(settings, registry, run_id)
    compared = time.monotonic()
    assert report["live_digest"] == report["pure_digest"] == caught_up["state_digest"], json.dumps(report["sections"])[:3000]
    print(f"outage drill: gate {GATE}, db down {db_window[1] - db_window[0]:.1f}s, bus frozen {bus_window[1] - bus_window[0]:.1f}s, "
          f"samples {sampler.samples} (missed {sampler.missed}), workers restarted {sorted(restarted) or 'none'}, "
          f"outages {json.dumps(caught_up['dependency_outages'])}; seconds: to P7 {streamed - began:.0f}, "
          f"outages {gated_from - streamed:.0f}, P8 {gated - gated_from:.0f}, read-back {compared - gated:.0f}")
