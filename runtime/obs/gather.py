"""The reporter's edge: what a run left in durable state, read once and handed to the pure modules.

Only durable state and evidence are read, never logs: the run's evidence bundle (WSP's summary,
IG's P4 probe, the P7/P8 offset snapshots, the phase records), IG's receipts index and admissions,
the worker tables (outbox, dead letters, per-run tallies written with the state), the decision
lane's tables (decisions, AL's effects, DLA's audit index), the case plane's tables (triggers,
timelines, label assertions), each component's last health, the bus's retained ranges, and - the
reporter only - the oracle's truth and the bank's view for decision quality (DESIGN.md section 8).

The drivers live here (psycopg through runtime/db/postgres.py, the object store port, the bus
admin port); `reconcile`, `spine_hops`, `anchors`, `anomalies`, `conformance`, `closure` and
`quality` stay pure.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from runtime.bus.port import BusAdmin
from runtime.components import COMPONENTS, consumer_group_id
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError
from runtime.evidence import catalog
from runtime.evidence.writer import EvidenceWriter
from runtime.obs.anchors import AnchorRange, Snapshot
from runtime.obs.anomalies import AnomalySource
from runtime.obs.closure import PHASES_BEFORE_CLOSURE, ClosureFacts
from runtime.obs.conformance import (
    Check,
    handles_resolved,
    image_digests,
    no_forbidden_infrastructure,
    pinned_versions_in_use,
    run_scope_enforced,
)
from runtime.obs.errors import EvidenceMissing, RunNotClosable, TruthUnavailable
from runtime.obs.run_report import StageTimes, lag_at
from runtime.obs.spine_hops import RECEIPT_OUTCOMES, GroupCounts, SpineCounts

if TYPE_CHECKING:
    from runtime.case.trigger.domain import TriggerPolicy

#: The stream workers whose consumer groups P11 reconciles (pack order).
STREAM_WORKERS = ("archive_writer", "ieg", "ofp", "csfb", "df", "al", "dla", "case_trigger", "cm", "ls")
#: Components whose health Spine Green reads.
CLOSURE_HEALTH = ("df", "al", "dla")


@dataclass
class Bundle:
    """The evidence documents of the run (bundle-relative path -> document) and its phase records."""

    documents: dict[str, dict[str, Any]]
    phases: dict[str, dict[str, Any]]

    def get(self, registry: Registry, path_key: str) -> dict[str, Any]:
        """The document of a catalogue path key (an empty dict when absent)."""
        return self.documents.get(registry.text(path_key)) or {}


def read_bundle(writer: EvidenceWriter) -> Bundle:
    """Every catalogued evidence file of the phases before P11, and every phase record. Each target
    is listed once and only the files it holds are read (the obs_gov daemons read the bundle every
    refresh), from the first target that has each, as `EvidenceWriter.read` does."""
    registry = writer.registry
    listed = [(t, {info.key for info in t.store.list(t.prefix)}) for t in writer.targets]

    def read(relative: str) -> dict[str, Any] | None:
        for target, keys in listed:
            if target.key(relative) in keys:
                return dict(json.loads(target.store.get(target.key(relative))))
        return None

    documents: dict[str, dict[str, Any]] = {}
    for entry in catalog.CATALOG:
        if entry.path_key == "PHASE_RECORD_PATH_PATTERN" or entry.phase in ("P11", "P12"):
            continue
        doc = read(registry.text(entry.path_key))
        if doc is not None:
            documents[registry.text(entry.path_key)] = doc
    phases = {}
    for phase in catalog.PHASES:
        record = read(registry.render("PHASE_RECORD_PATH_PATTERN", phase_id=phase))
        if record is not None:
            phases[phase] = record
    return Bundle(documents, phases)


def require_closable(registry: Registry, bundle: Bundle, platform_run_id: str) -> None:
    """P10 passed, and every file P1..P10 must write is there (REPORTER_RUN_NOT_CLOSABLE /
    REPORTER_EVIDENCE_MISSING naming it otherwise)."""
    p10 = bundle.phases.get("P10")
    if not p10 or p10.get("state") != "PASS":
        reached = [p for p in PHASES_BEFORE_CLOSURE if (bundle.phases.get(p) or {}).get("state") == "PASS"]
        raise RunNotClosable(f"run {platform_run_id} has not passed P10 (P10 {(p10 or {}).get('state', 'never run')}; "
                             f"passed: {', '.join(reached) or 'none'}): a run is closed only after its case and labels committed")
    missing = [registry.text(e.path_key) for phase in PHASES_BEFORE_CLOSURE for e in catalog.required_for(phase)
               if registry.text(e.path_key) not in bundle.documents]
    if missing:
        raise EvidenceMissing(f"run {platform_run_id}: the bundle lacks {', '.join(missing)}")


# -- counts for the hops --------------------------------------------------------------------------

def _one(conn: Any, query: str, params: Any) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _pairs(conn: Any, query: str, params: Any) -> dict[str, int]:
    return {str(k): int(n) for k, n in conn.execute(query, params).fetchall()}


def run_records_by_topic(conn: Any, platform_run_id: str) -> dict[str, int]:
    """The run's records on each topic: IG's admitted events (their eb_refs) and every producer's
    published outbox rows (DF, AL, DLA, CaseTrigger, CM, ...)."""
    admitted = _pairs(conn, "SELECT eb_ref->>'topic', count(*) FROM ig_admissions WHERE platform_run_id = %s"
                            " AND state = 'ADMITTED' AND eb_ref IS NOT NULL GROUP BY 1", (platform_run_id,))
    produced = _pairs(conn, "SELECT topic, count(*) FROM worker_outbox WHERE platform_run_id = %s"
                            " AND published_at IS NOT NULL GROUP BY 1", (platform_run_id,))
    return dict(Counter(admitted) + Counter(produced))


def group_counts(conn: Any, registry: Registry, platform_run_id: str, topics_of: Mapping[str, set[str]],
                 by_topic: Mapping[str, int]) -> list[GroupCounts]:
    """Per stream worker of the run: the run's records on its input topics against what its group
    tallied (processed, dead-lettered) in the same transactions as its state."""
    out = []
    for component, topics in topics_of.items():
        group = consumer_group_id(registry, component, platform_run_id)
        row = conn.execute("SELECT processed, dead_lettered FROM worker_tallies WHERE consumer_group = %s"
                           " AND platform_run_id = %s", (group, platform_run_id)).fetchone()
        processed, dead = (int(row[0]), int(row[1])) if row else (0, 0)
        out.append(GroupCounts(group, sorted(topics), sum(by_topic.get(t, 0) for t in topics), processed, 0, dead))
    return out


def _probes_admitted(bundle: Bundle, registry: Registry) -> int:
    smoke = bundle.get(registry, "IG_READY_PATH_PATTERN").get("publish_smoke") or {}
    return 1 if smoke.get("outcome") == "ADMIT" else 0


def triggers_expected(conn: Any, platform_run_id: str, policy: TriggerPolicy | None = None) -> int:
    """Decisions of the run that need a human under CaseTrigger's policy (its own `trigger_for`).

    A policy that marks no reason triggers only on an outcome it names or on `case_required`, so
    PostgreSQL passes on only the records that have one of them (a few percent of a run; reading
    and judging every record was 20% of P11's time); `trigger_for` still judges each of those."""
    from runtime.case.trigger.domain import TriggerPolicy, trigger_for
    from runtime.case.trigger.handler import decision_fields
    from runtime.db.postgres import stream_rows

    policy = policy or TriggerPolicy()
    query = "SELECT record, event_ts_utc FROM df_decisions WHERE platform_run_id = %s"
    params: list[Any] = [platform_run_id]
    if not policy.marked_reasons:
        query += " AND (record->>'outcome' = ANY(%s) OR record ? 'case_required')"
        params.append(sorted(policy.outcomes))
    return sum(1 for record, ts in stream_rows(conn, query, tuple(params))
               if trigger_for(decision_fields(record, str(record.get("event_ts_utc") or ts)), policy) is not None)


def spine_counts(conn: Any, registry: Registry, bundle: Bundle, platform_run_id: str,
                 topics_of: Mapping[str, set[str]]) -> SpineCounts:
    """Every count of the ten hop kinds, read in one transaction."""
    from runtime.decision.committed import admitted_traffic, intents_expected

    wsp = bundle.get(registry, "WSP_SUMMARY_PATH_PATTERN")
    per_output = wsp.get("per_output") or []
    receipts = _pairs(conn, "SELECT outcome, count(*) FROM ig_receipts WHERE platform_run_id = %s GROUP BY 1",
                      (platform_run_id,))
    admitted_topics = _pairs(conn, "SELECT eb_ref->>'topic', count(*) FROM ig_receipts WHERE platform_run_id = %s"
                                   " AND outcome = 'ADMIT' AND eb_ref IS NOT NULL GROUP BY 1", (platform_run_id,))
    by_topic = run_records_by_topic(conn, platform_run_id)
    # ig_to_topics: the run's records the bus acknowledged on each admitted topic (IG's admissions).
    topic_records = {t: by_topic.get(t, 0) for t in sorted(set(admitted_topics) | {
        str(t) for t, in conn.execute("SELECT DISTINCT eb_ref->>'topic' FROM ig_admissions WHERE platform_run_id = %s"
                                      " AND eb_ref IS NOT NULL", (platform_run_id,)).fetchall()})}
    intents = _pairs(conn, "SELECT convert_from(value, 'UTF8')::jsonb->'payload'->>'action_type', count(*) FROM worker_outbox"
                           " WHERE platform_run_id = %s AND component = 'df'"
                           " AND convert_from(value, 'UTF8')::jsonb->>'event_class' = 'action_intent' GROUP BY 1",
                     (platform_run_id,))
    timeline = _pairs(conn, "SELECT kind, count(*) FROM cm_case_timeline WHERE platform_run_id = %s GROUP BY 1",
                      (platform_run_id,))
    return SpineCounts(
        wsp_emitted=sum(int(o.get("emitted", 0)) for o in per_output),
        wsp_retries=sum(int(o.get("retries", 0)) for o in per_output),
        receipts={o: receipts.get(o, 0) for o in RECEIPT_OUTCOMES},
        probes_admitted=_probes_admitted(bundle, registry),
        topic_records=topic_records,
        groups=group_counts(conn, registry, platform_run_id, topics_of, by_topic),
        traffic_admitted=admitted_traffic(conn, platform_run_id),
        decisions_by_outcome=_pairs(conn, "SELECT outcome, count(*) FROM df_decisions WHERE platform_run_id = %s GROUP BY 1",
                                    (platform_run_id,)),
        intents_expected=intents_expected(conn, platform_run_id),
        intents_by_action=intents,
        outcomes_by_action=_pairs(conn, "SELECT action_type, count(*) FROM al_effects WHERE platform_run_id = %s GROUP BY 1",
                                  (platform_run_id,)),
        audit_by_kind=_pairs(conn, "SELECT kind, count(*) FROM dla_audit_records WHERE platform_run_id = %s GROUP BY 1",
                             (platform_run_id,)),
        triggers_expected=triggers_expected(conn, platform_run_id),
        triggers=_one(conn, "SELECT count(*) FROM case_triggers WHERE platform_run_id = %s", (platform_run_id,)),
        trigger_events_by_kind={"evidence_attached": timeline.get("evidence_attached", 0)},
        cases_closed=timeline.get("closed", 0),
        case_labels=_one(conn, "SELECT count(*) FROM ls_label_assertions WHERE platform_run_id = %s"
                               " AND evidence->>'case_id' IS NOT NULL", (platform_run_id,)),
    )


# -- replay anchors ---------------------------------------------------------------------------------

def run_partitions(conn: Any, platform_run_id: str) -> dict[tuple[str, str], tuple[int, int]]:
    """Per topic partition, the run's last offset and its record count (IG's admissions and the
    published outbox rows)."""
    rows = conn.execute(
        "SELECT t, p, max(o), count(*) FROM ("
        " SELECT eb_ref->>'topic' AS t, eb_ref->>'partition' AS p, (eb_ref->>'offset')::numeric AS o FROM ig_admissions"
        "  WHERE platform_run_id = %(r)s AND state = 'ADMITTED' AND eb_ref IS NOT NULL"
        " UNION ALL SELECT topic, eb_ref->>'partition', (eb_ref->>'offset')::numeric FROM worker_outbox"
        "  WHERE platform_run_id = %(r)s AND published_at IS NOT NULL AND eb_ref IS NOT NULL) AS x GROUP BY 1, 2",
        {"r": platform_run_id}).fetchall()
    return {(str(t), str(p)): (int(last), int(n)) for t, p, last, n in rows}


def anchor_ranges(admin: BusAdmin, run_parts: Mapping[tuple[str, str], tuple[int, int]]) -> list[AnchorRange]:
    """Each partition holding records of the run: from the first offset the bus retains (where a
    run-scoped replay starts reading) to the run's last record on it."""
    out = []
    for topic in sorted({t for t, _ in run_parts}):
        first = {str(r.partition): r.start_offset for r in admin.ranges(topic)}
        for (t, p), (last, n) in sorted(run_parts.items()):
            if t == topic:
                start = first.get(p)
                out.append(AnchorRange(t, p, str(start if start is not None else last), str(last), n))
    return out


def snapshots(registry: Registry, bundle: Bundle) -> list[Snapshot]:
    """P7's and P8's offset snapshots (the ranges each recorded)."""
    out = []
    for key, fld in (("KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN", "offset_ranges"), ("OFFSETS_SNAPSHOT_PATH_PATTERN", "partitions")):
        path = registry.text(key)
        if path in bundle.documents:
            out.append(Snapshot(path, bundle.documents[path], fld))
    return out


# -- anomalies, health, conformance -----------------------------------------------------------------

def anomaly_sources(conn: Any, registry: Registry, bundle: Bundle, platform_run_id: str,
                    health: Mapping[str, Mapping[str, Any] | None]) -> list[AnomalySource]:
    """One source per kind and origin: IG receipts, worker dead letters, late events, degrades."""
    receipts_path = registry.text("RECEIPT_SUMMARY_PATH_PATTERN")
    by_outcome = (bundle.documents.get(receipts_path, {}).get("counts") or {}).get("by_outcome") or {}
    quarantine = (bundle.get(registry, "QUARANTINE_INDEX_PATH_PATTERN").get("counts") or {}).get("by_reason") or {}
    out = [AnomalySource(kind, receipts_path, int(by_outcome.get(kind, 0)),
                         by_reason=quarantine if kind == "QUARANTINE" and sum(quarantine.values()) == by_outcome.get(kind, 0) else {})
           for kind in ("ANOMALY", "QUARANTINE", "PUBLISH_AMBIGUOUS")]
    rows = conn.execute("SELECT component, reason_code, count(*) FROM worker_dead_letters WHERE platform_run_id = %s"
                        " GROUP BY 1, 2 ORDER BY 1, 2", (platform_run_id,)).fetchall()
    dead: dict[str, dict[str, int]] = {}
    for component, code, n in rows:
        dead.setdefault(str(component), {})[str(code)] = int(n)
    out += [AnomalySource("DEAD_LETTER", f"worker_dead_letters:{c}", sum(codes.values()), by_reason=codes)
            for c, codes in sorted(dead.items())]
    out.append(AnomalySource("DEAD_LETTER", "worker_dead_letters", 0))
    for component in ("ofp", "ieg", "csfb"):
        counters = (health.get(component) or {}).get("counters") or {}
        late = {k: int(v) for k, v in counters.items() if "late" in k and isinstance(v, int) and v > 0}
        out.append(AnomalySource("LATE_EVENT", f"{component} health counters", sum(late.values()), by_reason=late))
    degraded = _pairs(conn, "SELECT posture, count(*) FROM df_decisions WHERE platform_run_id = %s"
                            " AND (posture <> 'GREEN' OR cardinality(degrade_codes) > 0) GROUP BY 1", (platform_run_id,))
    out.append(AnomalySource("DEGRADE", "df_decisions (posture or degrade codes)", sum(degraded.values()), by_reason=degraded))
    return out


def read_healths(settings: Any, platform_run_id: str) -> dict[str, dict[str, Any] | None]:
    """Each stream worker's and DL's last health document of the run (None when absent), read
    through one store client under the run's evidence prefix (as `rtdl.caught_up.read_health`)."""
    from runtime.worker.run import component_dir

    registry = settings.registry
    prefix = registry.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=platform_run_id)
    store = settings.bucket("S3_EVIDENCE_BUCKET")
    present = {info.key for info in store.list(prefix)}
    out: dict[str, dict[str, Any] | None] = {}
    for c in (*STREAM_WORKERS, "dl"):
        key = prefix + registry.render("COMPONENT_HEALTH_PATH_PATTERN", component_dir=component_dir(c))
        out[c] = dict(json.loads(store.get(key))) if key in present else None
    return out


#: The names of the pin checks (environment_conformance.json, obs/live/environment_conformance.json).
POLICY_PIN_CHECK = "policy digest pinned at P1 is the decisions'"
REGISTRY_PIN_CHECK = "registry file pinned at P1 is the reporter's"
IMAGE_PIN_CHECK = "image digest pinned at P1 is the run's task definitions'"


def conformance_checks(conn: Any, registry: Registry, bundle: Bundle, platform_run_id: str,
                       health: Mapping[str, Mapping[str, Any] | None],
                       close_inputs: Mapping[str, Any] | None = None) -> list[Check]:
    """The four expectations of the environment, from the bundle, the health documents, the
    decisions and (dev_min) the task-definition images P11 observed in `close_inputs` (None: not
    observed yet, as during the run)."""
    checks = [handles_resolved([h.key for h in registry.handles()], bundle.documents)]
    packs = {pack: [m for m in members if m in STREAM_WORKERS and COMPONENTS[m].built]
             for pack, members in registry.mapping("PACKS").items()}
    packs = {p: m for p, m in packs.items() if m}
    groups = {c: consumer_group_id(registry, c, platform_run_id) for c in STREAM_WORKERS}
    checks += run_scope_enforced(platform_run_id, packs, {c: d for c, d in health.items() if d is not None}, groups)
    substrate = bundle.get(registry, "SUBSTRATE_SNAPSHOT_PATH_PATTERN")
    if registry.environment == "local_parity":
        servers = [{"name": n, "started_by_us": True} for n in sorted(_local_servers(substrate))]
        checks.append(no_forbidden_infrastructure("local_parity", processes=servers))
    else:
        checks.append(no_forbidden_infrastructure(registry.environment, resource_types=substrate.get("resource_types") or []))
    run = bundle.get(registry, "EVIDENCE_RUN_JSON_KEY")
    config = run.get("config") or {}
    policy = (config.get("policy") or {}).get("digest")
    in_use = [str(r[0]) for r in conn.execute("SELECT DISTINCT policy_digest FROM df_decisions WHERE platform_run_id = %s",
                                              (platform_run_id,)).fetchall()]
    checks.append(pinned_versions_in_use({"policy_digest": policy or "not pinned"}, {"policy_digest": in_use},
                                         name=POLICY_PIN_CHECK))
    checks.append(registry_pin_check(run, registry))
    image = image_pin_check(run, close_inputs)
    return [*checks, image] if image is not None else checks


def registry_pin_check(run: Mapping[str, Any], registry: Registry) -> Check:
    """The handles registry file P1 pinned (run.json config.registry_sha256) is the one this
    process loaded (Registry.source_sha256)."""
    pinned = (run.get("config") or {}).get("registry_sha256") or "not pinned"
    return pinned_versions_in_use({"registry_sha256": pinned},
                                  {"registry_sha256": [registry.source_sha256] if registry.source_sha256 else []},
                                  name=REGISTRY_PIN_CHECK)


def image_pin_check(run: Mapping[str, Any], close_inputs: Mapping[str, Any] | None) -> Check | None:
    """The image digest P1 pinned is the only one the run's ECS task definitions reference (P11's
    close inputs; not observed yet: pending). None where P1 pinned no image (local_parity runs
    this checkout's code)."""
    image = ((run.get("config") or {}).get("code") or {}).get("image_digest") or run.get("image_digest")
    if not image:
        return None
    observed = (close_inputs or {}).get("task_definitions") or []
    return pinned_versions_in_use({"image_digest": image}, {"image_digest": image_digests(observed)}, name=IMAGE_PIN_CHECK)


def _local_servers(substrate: Mapping[str, Any]) -> set[str]:
    """The local substrate's servers P0 recorded: the object store (moto), PostgreSQL, and the Kafka
    broker (tansu) when the bus is kafka (Kinesis is served by moto)."""
    endpoints = substrate.get("endpoints") or {}
    servers = set()
    if endpoints.get("object_store"):
        servers.add("moto")
    if endpoints.get("db"):
        servers.add("postgres")
    if endpoints.get("kafka_bootstrap"):
        servers.add("tansu")
    return servers


def closure_facts(conn: Any, registry: Registry, bundle: Bundle, platform_run_id: str,
                  health: Mapping[str, Mapping[str, Any] | None], *, conformance_status: str,
                  reconciliation_status: str, anchors_consistent: bool) -> ClosureFacts:
    """The facts of Spine Green's six conditions."""
    from runtime.decision.al.store import action_counts
    from runtime.decision.committed import intents_expected
    from runtime.decision.dla.store import lineage_unresolved_total

    def state(component: str) -> str | None:
        doc = health.get(component)
        return str(doc.get("health_state")) if doc else None

    run = bundle.get(registry, "EVIDENCE_RUN_JSON_KEY")
    config = run.get("config") or {}
    gate = config.get("gate_events_per_output")
    emitted = {str(o["output_id"]): int(o.get("emitted", 0))
               for o in bundle.get(registry, "WSP_SUMMARY_PATH_PATTERN").get("per_output") or []}
    expected = {o: int(gate) for o in emitted} if gate is not None else _stream_view_rows(bundle, registry)
    return ClosureFacts(
        conformance_status=conformance_status, df_health=state("df"), al_health=state("al"),
        al_intake=intents_expected(conn, platform_run_id), al_outcomes=action_counts(conn, platform_run_id).executed,
        dla_health=state("dla"), lineage_unresolved_total=lineage_unresolved_total(conn, platform_run_id),
        wsp_emitted=emitted, expected_per_output=expected,
        phase_states={p: str(r.get("state")) for p, r in bundle.phases.items()},
        reconciliation_status=reconciliation_status, anchors_consistent=anchors_consistent)


def _stream_view_rows(bundle: Bundle, registry: Registry) -> dict[str, int]:
    """At full cap, each streamed output's stream view rows (P3's stream sort summary). The truth
    outputs are sorted too but never streamed (only the reporter reads them), so they are not owed."""
    streamed = {*registry.value("ORACLE_TRAFFIC_OUTPUT_IDS"), *registry.value("ORACLE_CONTEXT_OUTPUT_IDS")}
    outputs = bundle.get(registry, "STREAM_SORT_SUMMARY_PATH_PATTERN").get("outputs") or []
    return {str(o["output_id"]): int(o.get("row_count") or o.get("rows") or 0) for o in outputs
            if isinstance(o, dict) and str(o.get("output_id")) in streamed}


# -- decision quality (the reporter only: it reads the truth) ---------------------------------------

@dataclass
class QualityInputs:
    """The decisions and truth the scorer needs."""

    decisions: list[Any] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    flows: list[Any] = field(default_factory=list)
    bank: list[Any] = field(default_factory=list)


def _utc(value: Any) -> datetime:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


#: What the quality join keeps of each archived traffic payload (the archive streams by; at full
#: cap holding every envelope took the reporter to 3.9 GB).
QUALITY_FIELDS = ("flow_id", "event_seq", "card_id", "amount")


def quality_inputs(conn: Any, settings: Any, platform_run_id: str) -> QualityInputs:
    """The run's decisions with their traffic (the RTDL archive), the oracle's event and flow labels
    of that traffic, and the bank's view of those flows."""
    from runtime.case.ls.intake import BANK_VIEW_OUTPUT
    from runtime.decision.backtest import archived_envelopes, truth_of
    from runtime.decision.df.store import run_decision_records
    from runtime.ig.summaries import event_topics
    from runtime.obs.quality import BankView, Decision
    from runtime.oracle.layout import OracleLayout
    from runtime.rtdl.events import TRAFFIC_CLASSES
    from runtime.wsp.views import StreamView

    registry = settings.registry
    try:
        envelopes = archived_envelopes(conn, settings.bucket("S3_ARCHIVE_BUCKET"), platform_run_id,
                                       event_topics(registry, TRAFFIC_CLASSES))
        traffic = {str(e["event_id"]): {k: e["payload"].get(k) for k in QUALITY_FIELDS}
                   for e in envelopes if e["event_class"] in TRAFFIC_CLASSES}
        layout = OracleLayout(registry, platform_run_id)
        oracle = settings.bucket(layout.bucket_key)
        events, flows = truth_of(oracle, layout, traffic)
        scoped = {e.flow_id for e in events}
        bank = [BankView(str(r["flow_id"]), r.get("bank_label") == "FRAUD_CONFIRMED",
                         _utc(r["reported_at_utc"]) if r.get("reported_at_utc") is not None else None)
                for r in StreamView(registry, oracle, platform_run_id, BANK_VIEW_OUTPUT).rows() if str(r.get("flow_id")) in scoped]
    except PlatformError as e:
        raise TruthUnavailable(f"decision quality of {platform_run_id}: {e.code}: {e.message}") from e
    decisions = []
    for r in run_decision_records(conn, platform_run_id):
        subject = r.get("subject") or {}
        payload = traffic.get(str(r["event_id"]), {})
        decisions.append(Decision(str(r["event_id"]), str(subject.get("flow_id", "")), str(subject.get("card_id", "")),
                                  str(r["outcome"]), str(r["posture"]), float(payload.get("amount", 0.0)),
                                  _utc(r["event_ts_utc"]), float(r.get("score") or 0.0)))
    return QualityInputs(decisions, events, flows, bank)


#: (stage, table, time column, extra filter) of each stage whose every event carries its own durable time.
TIMED_STAGES: tuple[tuple[str, str, str, str], ...] = (
    ("ig admitted", "ig_receipts", "recorded_at", " AND outcome = 'ADMIT'"),
    ("df decided", "df_decisions", "decided_at", ""),
    ("al outcomes", "al_effects", "created_at", ""),
    ("dla audit records", "dla_audit_records", "created_at", ""),
    ("case triggers", "case_triggers", "created_at", ""),
    ("cm timeline events", "cm_case_timeline", "created_at", ""),
    ("ls label assertions", "ls_label_assertions", "created_at", ""),
)
#: The RTDL core workers: their tallies (worker_tallies) time only their last batch.
TALLIED_STAGES = ("archive_writer", "ieg", "ofp", "csfb")


def _timed(conn: Any, table: str, column: str, where: str, platform_run_id: str, end: datetime | None) -> tuple[Any, ...]:
    """(events, first, last, busiest minute, events done by `end`) of one timed table."""
    # table/column/where come from TIMED_STAGES above, never from input
    row = conn.execute(
        f"SELECT count(*), min({column}), max({column}), count(*) FILTER (WHERE {column} <= %s) FROM {table}"
        f" WHERE platform_run_id = %s{where}", (end, platform_run_id)).fetchone()
    minute = conn.execute(f"SELECT max(n) FROM (SELECT count(*) AS n FROM {table} WHERE platform_run_id = %s{where}"
                          f" GROUP BY date_trunc('minute', {column})) m", (platform_run_id,)).fetchone()
    return int(row[0]), row[1], row[2], (int(minute[0]) if minute and minute[0] is not None else None), int(row[3] or 0)


def stage_times(conn: Any, registry: Registry, bundle: Bundle, counts: SpineCounts, platform_run_id: str) -> list[StageTimes]:
    """Each stage's durable timing facts: WSP from its phase (P6), IG and the planes after the RTDL core
    from each event's own time, the RTDL core workers from their tallies (first admission to their
    last batch). Streaming ends at the last admission; DF's lag then is the traffic admitted but not
    yet decided."""
    from runtime.rtdl.events import TRAFFIC_CLASSES

    p6 = bundle.phases.get("P6") or {}
    out = [StageTimes("wsp emitted", counts.wsp_emitted, _utc_or_none(p6.get("started_at_utc")),
                      _utc_or_none(p6.get("ended_at_utc")))]
    _, table, column, where = TIMED_STAGES[0]
    n, first_admitted, end, busiest, _ = _timed(conn, table, column, where, platform_run_id, None)
    out.append(StageTimes("ig admitted", n, first_admitted, end, busiest,
                          lag_at(counts.wsp_emitted, n) if counts.wsp_emitted else None))
    traffic = _one(conn, "SELECT count(*) FROM ig_receipts WHERE platform_run_id = %s AND outcome = 'ADMIT'"
                         " AND event_class = ANY(%s::text[])", (platform_run_id, list(TRAFFIC_CLASSES)))
    for component in TALLIED_STAGES:
        row = conn.execute("SELECT processed, updated_at FROM worker_tallies WHERE consumer_group = %s AND platform_run_id = %s",
                           (consumer_group_id(registry, component, platform_run_id), platform_run_id)).fetchone()
        out.append(StageTimes(f"{component} processed", int(row[0]) if row else 0, first_admitted, row[1] if row else None))
    for stage, table, column, where in TIMED_STAGES[1:]:
        n, first, last, busiest, done_by_end = _timed(conn, table, column, where, platform_run_id, end)
        lag = lag_at(traffic, done_by_end) if stage == "df decided" and end is not None else None
        out.append(StageTimes(stage, n, first, last, busiest, lag))
    return out


def _utc_or_none(value: Any) -> datetime | None:
    return _utc(value) if value else None
