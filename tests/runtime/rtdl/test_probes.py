"""P4's ingest probe is counted by every RTDL handler and never enters state (so digests are equal
across runs and buses)."""

from __future__ import annotations

from runtime.contracts.probes import is_ingest_probe
from runtime.db.postgres import Database
from runtime.ig.summaries import smoke_event
from runtime.rtdl import store as progress
from runtime.rtdl.store import state_digest
from tests.runtime.rtdl.envelopes import engine_run
from tests.runtime.rtdl.feeding import feed
from tests.support.events import random_run_id


def test_the_ingest_probe_is_counted_and_leaves_state_as_the_scenario_alone_makes_it(db: Database) -> None:
    records = [(cls, env) for cls, env in engine_run()][:300]
    with_probe, without = random_run_id(), random_run_id()
    probe = smoke_event(with_probe, "0" * 32)
    assert is_ingest_probe(probe)
    feed(db, with_probe, [(c, {**e, "platform_run_id": with_probe}) for c, e in records[:150]]
         + [("context_arrival_events", probe)] + [(c, {**e, "platform_run_id": with_probe}) for c, e in records[150:]])
    feed(db, without, [(c, {**e, "platform_run_id": without}) for c, e in records])
    with db.connection() as conn:
        assert state_digest(conn, with_probe) == state_digest(conn, without)
        skipped = {c: progress.counter_totals(conn, with_probe, c).get("ingest_probes_skipped", 0) for c in ("ieg", "csfb")}
    assert skipped == {"ieg": 1, "csfb": 1}
