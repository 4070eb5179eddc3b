"""CaseTrigger as a stream handler: decisions (FP_BUS_RTDL_V1) joined with DLA's audit records of
them (FP_BUS_AUDIT_V1) -> case triggers on FP_BUS_CASE_TRIGGERS_V1, once per trigger id.

A `decision_response` is read as the case domain's decision record: its payload plus, from its
`provenance`, the traffic event's eb_ref and IG receipt id. The trigger is dated at the decision
envelope's ts_utc (the platform's logical time, which DF takes from the decided event), never at
provenance.decided_at_utc (a wall clock that differs between buses and replays), so the same run
gives the same timelines and case_digest on either bus. Its reasons are the rule reason codes, then the degrade reason
codes, then the outcome floor (POSTURE_RED, DEGRADED_INPUTS), so a decision held for a missing
input routes to the `degraded` queue. A decision the policy says needs a human is held until
DLA's audit record of it arrives (either may come first): only a decision the lane recorded, with
the very content DLA hashed, becomes a trigger, and the trigger carries the audit record's id as
evidence. A decision whose content differs from what DLA recorded is `CASE_TRIGGER_DECISION_UNKNOWN`
(the lane never recorded this decision); malformed records are `CASE_TRIGGER_DECISION_INVALID`;
either is dead-lettered and nothing is held. Intents, outcomes and audit records of intents and
outcomes are ignored and counted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from runtime.case.trigger.domain import (
    CaseTrigger,
    DecisionRecordInvalid,
    DecisionUnknown,
    TriggerPolicy,
    read_decision,
    trigger_for,
)
from runtime.case.trigger.store import AuditRef, Candidate, hold_audit_refs, hold_candidates, ready, record_triggers
from runtime.contracts.canonical import canonical_digest
from runtime.decision.lane import AUDIT_RECORD, DECISION_RESPONSE, lane_envelope, lane_output
from runtime.settings import Settings
from runtime.worker.handler import StreamHandler
from runtime.worker.records import InputRecord, OutputRecord

#: Event class of what CaseTrigger publishes (payload: schemas/events/payloads/case_trigger.schema.json).
CASE_TRIGGER = "case_trigger"
_HEX32 = re.compile(r"[0-9a-f]{32}", re.ASCII)


def decision_fields(payload: Mapping[str, Any], envelope_ts_utc: str) -> dict[str, Any]:
    """A decision_response payload as the case domain reads it (references only, no signal values)."""
    provenance = payload.get("provenance")
    if not isinstance(provenance, Mapping):
        raise DecisionRecordInvalid(f"decision {payload.get('decision_id')!r} has no provenance object")
    reasons = payload.get("reasons")
    if not isinstance(reasons, list):
        raise DecisionRecordInvalid(f"decision {payload.get('decision_id')!r}: reasons is not a list")
    degrade = payload.get("degrade_reasons") or []
    if not isinstance(degrade, list):
        raise DecisionRecordInvalid(f"decision {payload.get('decision_id')!r}: degrade_reasons is not a list")
    codes = [r.get("code") if isinstance(r, Mapping) else r for r in [*reasons, *degrade]]
    if payload.get("outcome_floor"):
        codes.append(payload["outcome_floor"])
    out = {f: payload.get(f) for f in ("decision_id", "platform_run_id", "scenario_run_id", "event_class", "event_id",
                                       "event_ts_utc", "outcome")}
    out.update(reasons=list(dict.fromkeys(codes)), eb_ref=provenance.get("eb_ref"), receipt_id=provenance.get("receipt_id"),
               decided_at_utc=envelope_ts_utc)
    if "case_required" in payload:
        out["case_required"] = payload["case_required"]
    return out


def audit_id_of_decision(decision_id: str) -> str:
    """The id DLA gives the audit record of a decision (runtime/decision/dla/domain.py audit_record)."""
    return canonical_digest({"kind": "decision", "record_id": decision_id})[:32]


class CaseTriggerHandler(StreamHandler):
    """Publishes one case trigger per decision that needs a human, once DLA recorded the decision."""

    component = "case_trigger"

    def __init__(self, rtdl_topic: str, audit_topic: str, case_topic: str, platform_run_id: str,
                 policy: TriggerPolicy | None = None):
        self.rtdl_topic = rtdl_topic
        self.audit_topic = audit_topic
        self.case_topic = case_topic
        self.platform_run_id = platform_run_id
        self.policy = policy or TriggerPolicy()
        self.figures = {"case_trigger_decisions": 0, "case_trigger_not_needed": 0, "case_trigger_audit_refs": 0,
                        "case_trigger_published": 0, "case_trigger_ignored_other_class": 0}

    def input_topics(self) -> list[str]:
        """FP_BUS_RTDL_V1 (decisions) and FP_BUS_AUDIT_V1 (DLA's audit records)."""
        return [self.rtdl_topic, self.audit_topic]

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        """Hold the batch's decisions and audit refs, then publish the triggers whose join completed now."""
        candidates: list[Candidate] = []
        refs: list[AuditRef] = []
        counts = dict.fromkeys(self.figures, 0)
        for record in records:
            if record.event_class == DECISION_RESPONSE:
                counts["case_trigger_decisions"] += 1
                candidate = self.candidate(record)
                if candidate is None:
                    counts["case_trigger_not_needed"] += 1
                else:
                    candidates.append(candidate)
            elif record.event_class == AUDIT_RECORD and record.payload.get("kind") == "decision":
                counts["case_trigger_audit_refs"] += 1
                refs.append(self.audit_ref(record))
            else:
                counts["case_trigger_ignored_other_class"] += 1
        hold_candidates(conn, self.platform_run_id, candidates)
        hold_audit_refs(conn, self.platform_run_id, refs)
        made: list[tuple[CaseTrigger, Candidate]] = []
        for pair in ready(conn, self.platform_run_id, [c.decision_id for c in candidates] + [r.decision_id for r in refs]):
            if pair.audit.record_sha256 != pair.candidate.record_sha256:
                raise DecisionUnknown(f"decision {pair.candidate.decision_id} is not the decision DLA recorded under that "
                                      f"id (audit record {pair.audit.audit_id} hashes other content)")
            trigger = trigger_for({**pair.candidate.decision, "audit_record_id": pair.audit.audit_id}, self.policy)
            assert trigger is not None  # held only when the policy said so
            made.append((trigger, pair.candidate))
        fresh = record_triggers(conn, self.platform_run_id, [t for t, _ in made])
        outputs = []
        for trigger, candidate in made:
            if trigger.trigger_id not in fresh:
                continue
            envelope = lane_envelope(CASE_TRIGGER, trigger.trigger_id, trigger.payload(),
                                     platform_run_id=self.platform_run_id,
                                     scenario_run_id=candidate.decision.get("scenario_run_id"),
                                     ts_utc=candidate.envelope_ts_utc, producer=self.component)
            outputs.append(lane_output(self.case_topic, trigger.case_id, envelope))
        counts["case_trigger_published"] = len(outputs)
        for k, v in counts.items():
            self.figures[k] += v
        return outputs

    def candidate(self, record: InputRecord) -> Candidate | None:
        """The held form of a decision that needs a case, None when it does not; refusals raise."""
        fields = decision_fields(record.payload, str(record.envelope["ts_utc"]))
        decision = read_decision(fields)
        if record.event_id != decision.decision_id:
            raise DecisionRecordInvalid(f"envelope event_id {record.event_id} is not the decision id {decision.decision_id}")
        if decision.subject.platform_run_id != self.platform_run_id:
            raise DecisionUnknown(f"decision {decision.decision_id} is of run {decision.subject.platform_run_id}, "
                                  f"CaseTrigger serves {self.platform_run_id}")
        if trigger_for(fields, self.policy) is None:
            return None
        return Candidate(decision.decision_id, canonical_digest(record.payload), fields, str(record.envelope["ts_utc"]))

    def audit_ref(self, record: InputRecord) -> AuditRef:
        """DLA's audit record of a decision as the join holds it; a malformed one is refused."""
        p = record.payload
        decision_id, audit_id, sha = p.get("record_id"), p.get("audit_id"), p.get("record_sha256")
        if not (isinstance(decision_id, str) and _HEX32.fullmatch(decision_id)):
            raise DecisionRecordInvalid(f"audit record {audit_id!r} names no decision id: {decision_id!r}")
        if audit_id != audit_id_of_decision(decision_id) or record.event_id != audit_id:
            raise DecisionRecordInvalid(f"audit record {audit_id!r} is not the audit id of decision {decision_id}")
        if not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
            raise DecisionRecordInvalid(f"audit record {audit_id} has no record_sha256")
        if p.get("platform_run_id") != self.platform_run_id:
            raise DecisionUnknown(f"audit record {audit_id} is of run {p.get('platform_run_id')!r}, "
                                  f"CaseTrigger serves {self.platform_run_id}")
        return AuditRef(decision_id, audit_id, sha)

    def counters(self) -> dict[str, int]:
        """This process's decisions read, not needing a case, audit refs, triggers published, other records.

        A batch the worker redoes may be counted twice here; the durable figures are
        `runtime.case.trigger.store.trigger_counts`."""
        return dict(self.figures)


def build(settings: Settings, platform_run_id: str) -> StreamHandler:
    """CaseTrigger of `platform_run_id`: topics from the registry, the default trigger policy."""
    registry = settings.registry
    return CaseTriggerHandler(registry.topic("FP_BUS_RTDL_V1").name, registry.topic("FP_BUS_AUDIT_V1").name,
                              registry.topic("FP_BUS_CASE_TRIGGERS_V1").name, platform_run_id)
