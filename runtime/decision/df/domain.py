"""The decision fabric's pure decision: (event, point-in-time inputs, pinned policy, posture) -> decision.

`decide` reads nothing but its arguments: the admitted traffic envelope, the inputs the RTDL
stores answered as of that event (OFP features, IEG graph signals, the CSFB join frame), the
policy bundle and the posture. It never sees the oracle's truth. The same arguments always give
the same `DecisionRecord`, byte for byte (`canonical`), so a decision is identical on both buses,
after a crash and on a replay. An input that is missing or late is never defaulted silently: the
decision names it as a degrade reason, and the policy's floor keeps it from being APPROVE.

Transport details (eb_ref, IG receipt id, admitted and decided times) differ between buses and
deliveries; they live in the record's `provenance` and are left out of `decision_digest`, as are
the fields naming the run (`RUN_SCOPED_FIELDS`), so two runs of the same events digest alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.contracts.canonical import canonical_json
from runtime.decision.bundle import OUTCOMES, POSTURES, SIGNALS, Condition, Policy, require_pinned
from runtime.decision.ids import decision_id, idempotency_key, intent_id
from runtime.errors import PermanentError
from runtime.rtdl.events import TRAFFIC_CLASSES, Admitted, admitted, micros_to_iso
from runtime.rtdl.ofp.domain import P2P_CHANNEL, P2P_EVENT_TYPE, ROUND_MIN_MINOR, ROUND_STEP_MINOR

#: ACTION_IDEMPOTENCY_KEY_FIELDS of handles.registry.yaml (a test keeps the two equal).
DEFAULT_IDEMPOTENCY_FIELDS = ("platform_run_id", "decision_id", "action_type")

FEATURES_LATE = "FEATURES_LATE"
GRAPH_LATE = "GRAPH_LATE"
CONTEXT_MISSING = "CONTEXT_MISSING"
DEGRADE_REASONS = (FEATURES_LATE, GRAPH_LATE, CONTEXT_MISSING)
#: The OFP entity kinds DF reads features of; a features answer without one of them is incomplete.
FEATURE_KINDS = ("card", "customer")
SUBJECT_FIELDS = ("flow_id", "session_id", "customer_id", "account_id", "card_id", "device_id", "merchant_id")


class PostureUnknown(PermanentError):
    """A posture that is not GREEN, AMBER or RED."""

    code = "POSTURE_UNKNOWN"
    next_step = "pass the posture the degrade ladder computed (GREEN, AMBER or RED)"


@dataclass(frozen=True)
class GraphSignals:
    """What IEG answered about the event's entities, as of the event (edges first seen strictly before it)."""

    device_age_seconds: float
    customer_other_devices: int
    device_other_customers: int
    device_other_cards: int
    collector_senders: int

    def canonical(self) -> dict[str, Any]:
        """Plain form."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Provenance:
    """Where the event came from and when: transport facts, outside the decision digest."""

    eb_ref: Mapping[str, Any] | None = None
    receipt_id: str | None = None
    admitted_at_utc: str | None = None

    def canonical(self) -> dict[str, Any]:
        """Plain form (the decided time is added by whoever decides)."""
        return {"eb_ref": dict(self.eb_ref) if self.eb_ref is not None else None, "receipt_id": self.receipt_id,
                "admitted_at_utc": self.admitted_at_utc}


@dataclass(frozen=True)
class DecisionInputs:
    """Point-in-time inputs of one decision; None means the input did not arrive in time (degrade)."""

    features: Mapping[str, Mapping[str, Any]] | None  # entity kind -> EntityFeatures.canonical()
    graph: GraphSignals | None
    join: Mapping[str, Any] | None  # {"status", "missing", "frame"} from CSFB JoinReadiness
    provenance: Provenance = field(default_factory=Provenance)


def join_input(status: str, missing: Sequence[str], frame: Mapping[str, Any] | None) -> dict[str, Any]:
    """The join input from a CSFB JoinReadiness's parts (status, missing reasons, frame)."""
    return {"status": status, "missing": list(missing), "frame": dict(frame) if frame is not None else None}


@dataclass(frozen=True)
class DecisionRecord:
    """One decision: outcome, score, the reasons that fired with their values, posture, degrade, policy, provenance."""

    decision_id: str
    platform_run_id: str
    scenario_run_id: str | None
    event_class: str
    event_id: str
    event_ts_utc: str
    subject: dict[str, str]
    outcome: str
    score: float
    score_outcome: str
    reasons: tuple[dict[str, Any], ...]
    posture: str
    posture_mark: str | None
    degrade_reasons: tuple[dict[str, Any], ...]
    outcome_floor: str | None
    policy: dict[str, Any]
    actions: tuple[str, ...]
    provenance: dict[str, Any]

    def core(self) -> dict[str, Any]:
        """Everything that is a function of (event, inputs, policy, posture): what the decision digest covers."""
        return {
            "decision_id": self.decision_id, "platform_run_id": self.platform_run_id, "scenario_run_id": self.scenario_run_id,
            "event_class": self.event_class, "event_id": self.event_id, "event_ts_utc": self.event_ts_utc,
            "subject": dict(self.subject), "outcome": self.outcome, "score": self.score, "score_outcome": self.score_outcome,
            "reasons": [dict(r) for r in self.reasons], "posture": self.posture, "posture_mark": self.posture_mark,
            "degrade_reasons": [dict(d) for d in self.degrade_reasons], "outcome_floor": self.outcome_floor,
            "policy": dict(self.policy), "actions": list(self.actions),
        }

    def canonical(self) -> dict[str, Any]:
        """The whole record (the decision_response payload): core plus provenance."""
        return {**self.core(), "provenance": dict(self.provenance)}

    @property
    def degraded(self) -> bool:
        """True when an input was missing or late."""
        return bool(self.degrade_reasons)


@dataclass(frozen=True)
class ActionIntent:
    """One action a decision asks the action layer for."""

    intent_id: str
    decision_id: str
    platform_run_id: str
    event_id: str
    action_type: str
    outcome: str
    subject: dict[str, str]
    idempotency_key: str

    def canonical(self) -> dict[str, Any]:
        """Plain form (the action_intent payload)."""
        return {"intent_id": self.intent_id, "decision_id": self.decision_id, "platform_run_id": self.platform_run_id,
                "event_id": self.event_id, "action_type": self.action_type, "outcome": self.outcome,
                "subject": dict(self.subject), "idempotency_key": self.idempotency_key}


def severity(outcome: str) -> int:
    """Rank of an outcome: APPROVE < STEP_UP < REVIEW < DECLINE."""
    return OUTCOMES.index(outcome)


def _window(features: Mapping[str, Mapping[str, Any]], kind: str, window: str, name: str) -> Any:
    entity = features.get(kind)
    if entity is None:
        return None
    return entity["windows"][window][name]


def signals(event: Admitted, inputs: DecisionInputs) -> dict[str, Any]:
    """Every signal of `SIGNALS` for one event; None where the input that answers it is unavailable."""
    amount_minor = event.amount_minor()
    channel = event.payload.get("channel")
    out: dict[str, Any] = dict.fromkeys(SIGNALS)
    out["event.amount"] = amount_minor / 100
    out["event.is_p2p"] = channel == P2P_CHANNEL or event.event_type == P2P_EVENT_TYPE
    out["event.is_round"] = amount_minor >= ROUND_MIN_MINOR and amount_minor % ROUND_STEP_MINOR == 0
    features = inputs.features
    if features is not None:
        card, customer = features.get("card"), features.get("customer")
        out["card.count_10m"] = _window(features, "card", "10m", "count")
        out["card.count_1h"] = _window(features, "card", "1h", "count")
        count_10m = out["card.count_10m"]
        if count_10m:
            out["card.amount_mean_10m"] = round(_window(features, "card", "10m", "amount_sum") / count_10m, 6)
        out["card.distinct_merchants_1h"] = _window(features, "card", "1h", "distinct_merchants")
        out["card.distinct_merchants_10m"] = _window(features, "card", "10m", "distinct_merchants")
        if card is not None:
            out["card.first_seen_device"] = card["first_seen_device"]
            out["card.first_seen_merchant"] = card["first_seen_merchant"]
        if customer is not None:
            out["customer.amount_to_baseline_ratio"] = customer["amount_to_baseline_ratio"]
            out["customer.baseline_count_24h"] = customer["baseline_count_24h"]
        out["customer.count_1h"] = _window(features, "customer", "1h", "count")
    graph = inputs.graph
    if graph is not None:
        out["customer.other_devices"] = graph.customer_other_devices
        out["device.age_seconds"] = graph.device_age_seconds
        out["device.other_customers"] = graph.device_other_customers
        out["device.other_cards"] = graph.device_other_cards
        out["collector.senders"] = graph.collector_senders if out["event.is_p2p"] else 0
    join = inputs.join
    if join is not None:
        out["context.join_status"] = join["status"]
        frame = join.get("frame")
        if frame is not None:
            ip_country = frame["arrival"]["ip_country"]
            out["context.ip_country_differs"] = ip_country != event.payload.get("merchant_country")
    return out


def _holds(condition: Condition, value: Any) -> bool:
    if value is None:
        return False
    target = condition.value
    if condition.op == "eq":
        return bool(value == target)
    if condition.op == "ne":
        return bool(value != target)
    if isinstance(value, bool) or isinstance(target, bool | str) or not isinstance(value, int | float):
        return False
    return {"lt": value < target, "lte": value <= target, "gt": value > target, "gte": value >= target}[condition.op]


def degrade_reasons(inputs: DecisionInputs) -> list[dict[str, Any]]:
    """The inputs that were missing or late, each with its code and what exactly was missing."""
    out = []
    if inputs.features is None:
        out.append({"code": FEATURES_LATE, "input": "ofp", "detail": "features not complete as of the event"})
    else:
        absent = [kind for kind in FEATURE_KINDS if kind not in inputs.features]
        if absent:
            out.append({"code": FEATURES_LATE, "input": "ofp", "detail": "no features for " + ",".join(absent)})
    if inputs.graph is None:
        out.append({"code": GRAPH_LATE, "input": "ieg", "detail": "graph not complete as of the event"})
    if inputs.join is None:
        out.append({"code": CONTEXT_MISSING, "input": "csfb", "detail": "no join answer"})
    elif inputs.join["status"] == "MISSING_CONTEXT":
        out.append({"code": CONTEXT_MISSING, "input": "csfb", "detail": ",".join(inputs.join.get("missing") or ()) or "context"})
    return out


def decide(envelope: Mapping[str, Any], inputs: DecisionInputs, policy: Policy, posture: str, *, pinned_digest: str,
           decided_at_utc: str | None = None) -> DecisionRecord:
    """Decide one admitted traffic event: a pure, deterministic function of its arguments.

    Raises PolicyDrift when `policy` is not the pinned bundle, RtdlPayloadInvalid for a record
    that is not a valid traffic event, PostureUnknown for a posture outside GREEN/AMBER/RED.
    """
    require_pinned(policy, pinned_digest)
    if posture not in POSTURES:
        raise PostureUnknown(f"posture {posture!r} is not one of {', '.join(POSTURES)}")
    event = admitted(dict(envelope), expect=TRAFFIC_CLASSES)
    run = str(envelope.get("platform_run_id") or "")
    if not run:
        raise PermanentError(f"{event.event_class} {event.event_id} has no platform_run_id", code="DECISION_RUN_MISSING",
                             next_step="decide only admitted envelopes (IG stamps the run id)")
    values = signals(event, inputs)
    reasons = []
    score = 0.0
    for rule in policy.rules:
        if all(_holds(c, values[c.signal]) for c in rule.when):
            score += rule.weight
            reasons.append({"code": rule.reason, "rule_id": rule.rule_id, "weight": rule.weight,
                            "values": {c.signal: values[c.signal] for c in rule.when}})
    score = round(min(score, 1.0), 6)
    score_outcome = "APPROVE"
    for outcome in OUTCOMES[1:]:
        if score >= policy.thresholds[outcome]:
            score_outcome = outcome
    degraded = degrade_reasons(inputs)
    stance = policy.postures[posture]
    floor = stance.min_outcome
    if degraded:
        floor = max(floor, stance.degraded_min_outcome, policy.degrade_min_outcome, key=severity)
    final = max(score_outcome, floor, key=severity)
    outcome_floor = None
    if final != score_outcome:
        outcome_floor = "POSTURE_" + posture if severity(stance.min_outcome) >= severity(final) else "DEGRADED_INPUTS"
    subject = {name: event.text(name) for name in SUBJECT_FIELDS}
    provenance = {**inputs.provenance.canonical(), "decided_at_utc": decided_at_utc}
    return DecisionRecord(
        decision_id=decision_id(run, event.event_class, event.event_id, policy.digest), platform_run_id=run,
        scenario_run_id=envelope.get("scenario_run_id"), event_class=event.event_class, event_id=event.event_id,
        event_ts_utc=micros_to_iso(event.ts_micros), subject=subject, outcome=final, score=score, score_outcome=score_outcome,
        reasons=tuple(reasons), posture=posture, posture_mark=stance.mark, degrade_reasons=tuple(degraded),
        outcome_floor=outcome_floor, policy=policy.ref(), actions=policy.actions[final], provenance=provenance,
    )


def action_intents(record: DecisionRecord, key_fields: Sequence[str] = DEFAULT_IDEMPOTENCY_FIELDS) -> list[ActionIntent]:
    """The action intents of a decision: one per action type its outcome asks for, with stable ids."""
    out = []
    for action_type in record.actions:
        values = {"platform_run_id": record.platform_run_id, "decision_id": record.decision_id, "action_type": action_type,
                  "event_id": record.event_id}
        out.append(ActionIntent(
            intent_id=intent_id(record.decision_id, action_type), decision_id=record.decision_id,
            platform_run_id=record.platform_run_id, event_id=record.event_id, action_type=action_type, outcome=record.outcome,
            subject=dict(record.subject), idempotency_key=idempotency_key(key_fields, values),
        ))
    return out


#: Fields of a decision's core that name the run it was taken in: two runs of the same events (the
#: two buses, a re-run of the same world) differ in them and in nothing else, so the digest omits them.
RUN_SCOPED_FIELDS = ("decision_id", "platform_run_id", "scenario_run_id")


def decision_digest(records: Iterable[DecisionRecord | Mapping[str, Any]]) -> str:
    """sha256 over the cores of a run's decision records without their run-scoped fields, in
    (event_class, event_id) order: equal across buses, replays and runs of the same events."""
    cores = [_digest_core(record) for record in records]
    cores.sort(key=_digest_order)
    return ordered_decision_digest(cores)


def ordered_decision_digest(records: Iterable[DecisionRecord | Mapping[str, Any]]) -> str:
    """`decision_digest` of records that come in (event_class, event_id) order, one at a time: the
    canonical bytes of the list of cores are hashed as they are written, so a run's decisions at
    full cap (half a million) are never all in memory. Records out of order raise ValueError."""
    h = hashlib.sha256(b"[")
    previous: tuple[str, str] | None = None
    for record in records:
        core = _digest_core(record)
        key = _digest_order(core)
        if previous is not None:
            if key < previous:
                raise ValueError(f"decision digest: {key} comes after {previous}")
            h.update(b",")
        previous = key
        h.update(canonical_json(core))
    h.update(b"]")
    return h.hexdigest()


def _digest_core(record: DecisionRecord | Mapping[str, Any]) -> dict[str, Any]:
    core = record.core() if isinstance(record, DecisionRecord) else {k: v for k, v in record.items() if k != "provenance"}
    return {k: v for k, v in core.items() if k not in RUN_SCOPED_FIELDS}


def _digest_order(core: Mapping[str, Any]) -> tuple[str, str]:
    return str(core["event_class"]), str(core["event_id"])
