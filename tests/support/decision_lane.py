"""The decision lane's durable state of one run, as the drills check it (from the P9 store reads)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from runtime.db.postgres import connect
from runtime.decision.al.store import action_counts
from runtime.decision.df.store import admitted_without_decision, decision_counts, run_decision_digest
from runtime.decision.dla.store import lineage_unresolved_total, record_counts, verify_stored_chain
from runtime.rtdl.events import TRAFFIC_CLASSES
from runtime.store.port import ObjectStore


@dataclass
class LaneState:
    """What the P9 gate will check, read from the lane's tables."""

    undecided: list[tuple[str, str]]
    decisions: int
    distinct_events: int
    intents: int
    effects: int
    distinct_effect_intents: int
    duplicates_prevented: int
    audit: dict[str, int]
    lineage_unresolved_total: int
    digest: str
    by_outcome: dict[str, int]
    by_posture: dict[str, int]
    degraded: int

    @property
    def settled(self) -> bool:
        """Every admitted traffic event decided, every intent acted on and audited, no lineage break."""
        return (not self.undecided and self.decisions > 0 and self.effects == self.intents == self.distinct_effect_intents
                and self.audit.get("outcome", 0) == self.intents and self.audit.get("decision", 0) == self.decisions
                and self.lineage_unresolved_total == 0)


def lane_state(dsn: str, run_id: str) -> LaneState:
    """The run's decisions, effects, audit records and lineage now."""
    with connect(dsn) as conn:
        undecided = admitted_without_decision(conn, run_id, TRAFFIC_CLASSES)
        counts = decision_counts(conn, run_id)
        decided, distinct = conn.execute("SELECT count(*), count(DISTINCT (event_class, event_id)) FROM df_decisions"
                                         " WHERE platform_run_id = %s", (run_id,)).fetchone()
        intents = conn.execute("SELECT coalesce(sum(jsonb_array_length(record->'actions')), 0) FROM df_decisions"
                               " WHERE platform_run_id = %s", (run_id,)).fetchone()[0]
        effects, keys = conn.execute("SELECT count(*), count(DISTINCT intent_id) FROM al_effects WHERE platform_run_id = %s",
                                     (run_id,)).fetchone()
        actions = action_counts(conn, run_id)
        return LaneState(undecided, int(decided), int(distinct), int(intents), int(effects), int(keys),
                         actions.duplicates_prevented, record_counts(conn, run_id), lineage_unresolved_total(conn, run_id),
                         run_decision_digest(conn, run_id), dict(counts.by_outcome), dict(counts.by_posture), counts.degraded)


def wait_settled(dsn: str, run_id: str, timeout_s: float, *, also: Any = None) -> LaneState:
    """Poll `lane_state` until it is settled (and `also()` is true), or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = lane_state(dsn, run_id)
        if (state.settled and (also is None or also())) or time.monotonic() > deadline:
            return state
        time.sleep(1.0)


def chain_verifies(dsn: str, store: ObjectStore, run_id: str) -> tuple[bool, tuple[Any, ...]]:
    """`verify_stored_chain` of the run's audit: (ok, problems)."""
    with connect(dsn) as conn:
        verdict = verify_stored_chain(conn, store, run_id)
    return verdict.ok, tuple(verdict.problems)
