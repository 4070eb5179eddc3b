"""P9 evidence: the decision lane committed its whole chain for the run, read from durable state only.

The job (`python -m runtime decision committed`, run where the database lives: a local process,
an ECS task in dev_min) waits, bounded, until DF decided every traffic event IG admitted for the
run (`admitted_without_decision` empty), AL executed one effect per intent the decisions asked
for, DLA logged every decision, intent and outcome with `lineage_unresolved_total == 0`, the four
workers (DL, DF, AL, DLA) report GREEN and no worker dead-lettered a record. Then it verifies the
stored audit chain, checks every decision carries the policy digest P1 pinned in `run.json`, and
writes `decision_lane/decision_summary.json`, `action_summary.json` and `audit_summary.json`.
Nothing is written when the chain is not committed: the error names what broke and the next step.

At full cap one look at the whole lane reads every row of the run (seconds to tens of seconds), so
the job looks cheaply first: while DF has not read every admitted traffic record (its durable
positions against the run's last admitted offsets, a few index probes) the lane cannot be
committed, and the wait reports DF's lag instead. The whole look starts once DF has read them all
(and is then paced at CLOSING_LOOK_DUTY: AL and DLA trail DF by seconds), and its most costly
part, the lineage walk, only once every count adds up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.components import consumer_group_id
from runtime.errors import PermanentError, PlatformError
from runtime.evidence.gate_wait import CLOSING_LOOK_DUTY, LOOK_DUTY, StallBound
from runtime.evidence.writer import EvidenceWriter, WrittenEvidence, run_bundle
from runtime.pacing import pause_after
from runtime.rtdl.events import TRAFFIC_CLASSES
from runtime.settings import Settings

#: The lane's members (registry PACKS rtdl_decision_lane): DL is a daemon without a consumer group.
LANE = ("dl", "df", "al", "dla")
#: The stream workers among them, whose dead letters count.
WORKERS = ("df", "al", "dla")
OUTCOMES = ("APPROVE", "STEP_UP", "REVIEW", "DECLINE")
POSTURES = ("GREEN", "AMBER", "RED")
DEGRADE_REASONS = ("FEATURES_LATE", "GRAPH_LATE", "CONTEXT_MISSING")

Progress = Callable[[str], None]


class DecisionChainNotCommitted(PlatformError):
    """The lane did not decide, act on and log every admitted traffic event of the run within the wait."""

    code = "DECISION_CHAIN_NOT_COMMITTED"
    next_step = ("read the rtdl_decision_lane pack logs and `fp status` (component health), "
                 "then rerun P9 (--from P9)")


class AuditChainBroken(PermanentError):
    """The stored audit chain does not verify (an edited, removed or reordered batch object)."""

    code = "AUDIT_CHAIN_BROKEN"
    next_step = "run `python -m runtime decision verify --platform-run-id <run>` for every problem; the run's audit is not trustworthy"


class PolicyPinMismatch(PermanentError):
    """A decision of the run carries another policy digest than the one P1 pinned in run.json."""

    code = "POLICY_DRIFT"
    next_step = "start a fresh run: the decisions of this run were taken under more than one policy bundle"


@dataclass
class LaneObservation:
    """What the durable state says about the lane at one moment."""

    admitted: int
    undecided: list[tuple[str, str]]
    decisions: int
    intents_expected: int
    executed: int
    logged: dict[str, int]
    lineage_unresolved: int | None
    health: dict[str, dict[str, Any] | None]
    dead_letters: dict[str, int]
    reasons: list[str] = field(default_factory=list)

    def mark(self) -> tuple[int, ...]:
        """What the lane has done so far, for the gate's stall bound."""
        return (self.decisions, len(self.undecided), self.executed, *(self.logged.get(k, 0) for k in sorted(self.logged)))

    def counts_add_up(self) -> bool:
        """Every admitted traffic event decided, every intent executed, every record logged."""
        return (self.admitted > 0 and not self.undecided and self.executed == self.intents_expected
                and self.logged.get("decision", 0) == self.decisions and self.logged.get("intent", 0) == self.intents_expected
                and self.logged.get("outcome", 0) == self.executed)

    def judge(self) -> bool:
        """Committed: every admitted traffic event decided, every intent executed and every record
        logged without a lineage break, the four workers GREEN, no dead letter. `reasons` say why not."""
        reasons = []
        if self.admitted == 0:
            reasons.append("IG admitted no traffic event for the run (nothing to decide)")
        if self.undecided:
            sample = ", ".join(f"{c}/{e}" for c, e in self.undecided[:3])
            reasons.append(f"df: {len(self.undecided)} admitted traffic event(s) without a decision (e.g. {sample})")
        if self.executed != self.intents_expected:
            reasons.append(f"al: {self.executed} effect(s) executed for {self.intents_expected} intent(s) the decisions asked for")
        want = {"decision": self.decisions, "intent": self.intents_expected, "outcome": self.executed}
        missing = {k: (self.logged.get(k, 0), n) for k, n in want.items() if self.logged.get(k, 0) != n}
        if missing:
            reasons.append("dla: logged " + ", ".join(f"{got} {k}(s) of {n}" for k, (got, n) in missing.items()))
        if self.lineage_unresolved is None:
            reasons.append("dla: lineage not walked yet (the counts above do not add up)")
        elif self.lineage_unresolved:
            reasons.append(f"dla: lineage_unresolved_total {self.lineage_unresolved}")
        for component in LANE:
            doc = self.health.get(component)
            state = doc.get("health_state") if doc else "MISSING"
            if state != "GREEN":
                why = "; ".join(doc.get("reasons", [])) if doc else "no last_health.json"
                reasons.append(f"{component}: health {state} ({why})"[:300])
        for component, n in self.dead_letters.items():
            if n:
                reasons.append(f"{component}: {n} dead letter(s) (worker_dead_letters)")
        self.reasons = reasons
        return not reasons


def intents_expected(conn: Any, platform_run_id: str) -> int:
    """The intents the run's decisions asked for (one per action type of each decision)."""
    row = conn.execute("SELECT coalesce(sum(jsonb_array_length(record -> 'actions')), 0) FROM df_decisions"
                       " WHERE platform_run_id = %s", (platform_run_id,)).fetchone()
    return int(row[0])


def admitted_traffic(conn: Any, platform_run_id: str) -> int:
    """Traffic events IG admitted for the run."""
    row = conn.execute("SELECT count(*) FROM ig_admissions WHERE platform_run_id = %s AND state = 'ADMITTED'"
                       " AND event_class = ANY(%s::text[])", (platform_run_id, list(TRAFFIC_CLASSES))).fetchone()
    return int(row[0])


def dead_letters(conn: Any, groups: dict[str, str]) -> dict[str, int]:
    """Dead letters per worker of the lane (its run-scoped consumer group)."""
    out = {}
    for component, group in groups.items():
        row = conn.execute("SELECT count(*) FROM worker_dead_letters WHERE consumer_group = %s", (group,)).fetchone()
        out[component] = int(row[0]) if row else 0
    return out


def observe(settings: Settings, conn: Any, platform_run_id: str, groups: dict[str, str]) -> LaneObservation:
    """The lane's durable state and health, now; the lineage walk only when the counts add up."""
    from runtime.decision.al.store import action_counts
    from runtime.decision.df.store import admitted_without_decision
    from runtime.decision.dla.store import lineage_unresolved_total, record_counts
    from runtime.rtdl.caught_up import read_health

    decisions = conn.execute("SELECT count(*) FROM df_decisions WHERE platform_run_id = %s", (platform_run_id,)).fetchone()
    seen = LaneObservation(
        admitted=admitted_traffic(conn, platform_run_id),
        undecided=admitted_without_decision(conn, platform_run_id, TRAFFIC_CLASSES),
        decisions=int(decisions[0]), intents_expected=intents_expected(conn, platform_run_id),
        executed=action_counts(conn, platform_run_id).executed, logged=record_counts(conn, platform_run_id),
        lineage_unresolved=None,
        health={c: read_health(settings, platform_run_id, c) for c in LANE},
        dead_letters=dead_letters(conn, groups))
    if seen.counts_add_up():
        seen.lineage_unresolved = lineage_unresolved_total(conn, platform_run_id)
    return seen


def df_lag(conn: Any, platform_run_id: str, inputs: dict[str, list[str]]) -> dict[tuple[str, str, str], int]:
    """The partitions where DF (`inputs`: its group -> its traffic topics) has not read every
    traffic record IG admitted for the run, with how far behind it is there."""
    from runtime.worker.store import admission_lags

    return {k: n for k, n in admission_lags(conn, platform_run_id, inputs).items() if n > 0}


def df_inputs(settings: Settings, platform_run_id: str, group: str) -> dict[str, list[str]]:
    """DF's group -> its input topics (from DF's own handler); empty (no cheap look, the whole
    look says what is wrong) when this build cannot build DF."""
    from runtime.worker.run import build_handler

    try:
        return {group: list(build_handler("df", settings, platform_run_id).input_topics())}
    except PlatformError:
        return {}


def pinned_policy(writer: EvidenceWriter, platform_run_id: str) -> dict[str, Any]:
    """The policy bundle (id, version, digest) P1 pinned in run.json."""
    run = writer.read("EVIDENCE_RUN_JSON_KEY")
    if run is None:
        raise DecisionChainNotCommitted(f"run {platform_run_id} has no run.json", code="RUN_UNKNOWN",
                                        next_step="pass the platform_run_id P1 pinned (`fp status` shows the active run)")
    policy = (run.get("config") or {}).get("policy")
    if not policy or not policy.get("digest"):
        raise DecisionChainNotCommitted(f"run {platform_run_id}: run.json pins no policy bundle", code="POLICY_NOT_PINNED",
                                        next_step="start a fresh run: P1 pins the shipped policy bundle's digest in run.json")
    return {"policy_id": policy.get("policy_id"), "version": policy.get("version"), "digest": policy["digest"]}


def write_committed(settings: Settings, platform_run_id: str, *, wait_s: float = 600.0, poll_s: float = 2.0,
                    progress: Progress = print, sleep: Callable[[float], None] = time.sleep) -> list[WrittenEvidence]:
    """Wait until the lane committed the run's chain (failing once it stood still for `wait_s`, with
    progress), then write the three P9 files."""
    from runtime.db.postgres import Database

    registry = settings.registry
    writer = EvidenceWriter(registry, platform_run_id, [run_bundle(settings, platform_run_id)])
    policy = pinned_policy(writer, platform_run_id)
    if not settings.db_dsn:
        raise PlatformError("P9 reads the lane's tables from PostgreSQL but no DSN is set", code="DB_DSN_MISSING",
                            next_step="set FP_DB_DSN")
    groups = {c: consumer_group_id(registry, c, platform_run_id) for c in WORKERS}
    inputs = df_inputs(settings, platform_run_id, groups["df"])
    bound = StallBound(wait_s)
    with Database(settings.db_dsn, name="decision committed", max_size=1) as db:
        while True:
            began = time.monotonic()
            with db.connection() as conn:  # the connection goes back to the pool before any pause
                lag = df_lag(conn, platform_run_id, inputs) if inputs else {}
                left = bound.left(("df_lag", *sorted(lag.items()))) if lag else 0.0
                seen = observe(settings, conn, platform_run_id, groups) if left <= 0 else None
            if seen is None:
                behind = f"{sum(lag.values())} admitted traffic record(s)" if settings.bus == "kafka" else "admitted traffic"
                progress(f"P9 waiting ({left:.0f}s left without progress): df has not read {behind} on {len(lag)} partition(s)")
                sleep(min(pause_after(time.monotonic() - began, poll_s, LOOK_DUTY), left))
                continue
            if seen.judge():
                break
            left = 0.0 if lag else bound.left(seen.mark())
            if left <= 0:
                raise DecisionChainNotCommitted(f"not committed, {bound.describe()}: " + "; ".join(seen.reasons)[:1500])
            progress(f"P9 waiting ({left:.0f}s left without progress): " + "; ".join(seen.reasons)[:300])
            duty = CLOSING_LOOK_DUTY if inputs else LOOK_DUTY  # with the cheap look, DF has read everything
            sleep(min(pause_after(time.monotonic() - began, poll_s, duty), left))
        with db.transaction() as conn:
            documents = summaries(settings, conn, platform_run_id, policy, seen)
    return [writer.write(key, {**writer.base_fields("P9", sources), **doc}) for key, sources, doc in documents]


def summaries(settings: Settings, conn: Any, platform_run_id: str, policy: dict[str, Any],
              seen: LaneObservation) -> list[tuple[str, list[str], dict[str, Any]]]:
    """The three P9 documents from one consistent read (fails closed on a broken chain or another policy)."""
    from runtime.decision.al.store import action_counts
    from runtime.decision.df.store import decision_counts, decision_latency, run_decision_digest
    from runtime.decision.dl.store import posture_history
    from runtime.decision.dla.store import batch_rows, lineage_breaks, record_counts, verify_stored_chain

    digests = [str(r[0]) for r in conn.execute("SELECT DISTINCT policy_digest FROM df_decisions WHERE platform_run_id = %s"
                                                " ORDER BY 1", (platform_run_id,)).fetchall()]
    if digests != [policy["digest"]]:
        raise PolicyPinMismatch(f"run {platform_run_id}: decisions carry policy digest(s) {', '.join(digests) or 'none'};"
                                f" run.json pins {policy['digest']}")
    verdict = verify_stored_chain(conn, settings.bucket("S3_EVIDENCE_BUCKET"), platform_run_id)
    if not verdict.ok:
        codes = sorted({str(p["code"]) for p in verdict.problems})
        raise AuditChainBroken(f"run {platform_run_id}: the audit chain does not verify ({', '.join(codes)}; "
                               f"{len(verdict.problems)} problem(s))")
    counts = decision_counts(conn, platform_run_id)
    latency = decision_latency(conn, platform_run_id)
    actions = action_counts(conn, platform_run_id)
    logged = record_counts(conn, platform_run_id)
    rows = batch_rows(conn, platform_run_id)
    breaks: dict[str, int] = {}
    for b in lineage_breaks(conn, platform_run_id, final=True):
        breaks[b["break"]] = breaks.get(b["break"], 0) + 1
    decision = {
        "counts": {"admitted_traffic_events": seen.admitted, "decisions": counts.total, "degraded": counts.degraded,
                   "dead_letters": seen.dead_letters.get("df", 0),
                   "by_outcome": {**dict.fromkeys(OUTCOMES, 0), **counts.by_outcome},
                   "by_reason": counts.by_reason,
                   "by_posture": {**dict.fromkeys(POSTURES, 0), **counts.by_posture},
                   "by_degrade_reason": {**dict.fromkeys(DEGRADE_REASONS, 0), **counts.by_degrade_reason}},
        "policy": policy,
        "latency_ms": {"admission_to_decision_p50": latency["p50_ms"], "admission_to_decision_p99": latency["p99_ms"],
                       "admission_to_decision_max": latency["max_ms"], "samples": latency["measured"]},
        "decision_digest": run_decision_digest(conn, platform_run_id),
        "all_admitted_decided": not seen.undecided and counts.total == seen.admitted,
        "health": {c: (seen.health.get(c) or {}).get("health_state", "MISSING") for c in LANE},
        "posture_at_close": (seen.health.get("dl") or {}).get("posture"),
        "posture_history": [{"seq": e.seq, "at_utc": e.at_utc, "posture": e.posture, "reasons": list(e.reasons)}
                            for e in posture_history(conn, platform_run_id)],
    }
    action = {
        "counts": {"intents": seen.intents_expected, "outcomes": actions.executed,
                   "duplicates_prevented": actions.duplicates_prevented, "refused": seen.dead_letters.get("al", 0),
                   "by_action_type": actions.by_action_type},
        "intake_equals_outcomes": seen.intents_expected == actions.executed,
    }
    audit = {
        "counts": {"records": sum(logged.values()), "decisions": logged.get("decision", 0),
                   "intents": logged.get("intent", 0), "outcomes": logged.get("outcome", 0), "batches": len(rows),
                   "dead_letters": seen.dead_letters.get("dla", 0)},
        "lineage_unresolved_total": sum(breaks.values()),
        "lineage_breaks": breaks,
        "slices": [r.object_key for r in rows],
        "chain": {"head_sha256": rows[-1].sha256 if rows else None, "verified": verdict.ok,
                  "problems": [dict(p) for p in verdict.problems]},
    }
    return [
        ("DECISION_LANE_EVIDENCE_PATH_PATTERN", ["DECISION_LANE_EVIDENCE_PATH_PATTERN", "PACKS", "COMPONENT_HEALTH_PATH_PATTERN",
                                                 "EVIDENCE_RUN_JSON_KEY"], decision),
        ("ACTION_SUMMARY_PATH_PATTERN", ["ACTION_SUMMARY_PATH_PATTERN", "ACTION_IDEMPOTENCY_KEY_FIELDS"], action),
        ("DLA_EVIDENCE_PATH_PATTERN", ["DLA_EVIDENCE_PATH_PATTERN", "DLA_AUDIT_PREFIX_PATTERN"], audit),
    ]


def encoded(document: dict[str, Any]) -> str:
    """A document as the operator reads it (sorted, indented JSON)."""
    return json.dumps(document, indent=2, sort_keys=True, default=str)
