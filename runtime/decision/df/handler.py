"""DF as a stream handler: admitted traffic -> one decision per event -> decision_response and action_intents.

Per batch, inside the worker's transaction:

1. every record is checked: the run DF serves, a traffic event class, a valid traffic payload
   (else a PermanentError: the worker dead-letters it with its eb_ref); P4's ingest probe is
   counted and skipped;
2. events already decided (decision_id = H(run, class, event, policy digest) held in
   `df_decisions`: a redelivery past the positions, a replay under a new consumer group) are not
   decided again: the held record and its intents are produced again with the same ids and bytes;
3. for the rest DF needs, as of each event: OFP, IEG and CSFB complete for it
   (`store.upstream_complete`: every record at or before the event's time applied, and WSP past
   that time on every output feeding the store), a posture recorded
   by DL, and IG's receipt (provenance). While any is missing the batch is **held**: the attempt
   re-checks every POLL_S for up to HOLD_MS, then `DecisionInputsPending` (a TransientError)
   rolls the transaction back and the worker retries the same batch with its back-off, up to
   `DF_INPUT_WAIT_MS` from the first attempt. After that bound DF decides with what it has, each
   missing input an explicit degrade reason on the record (`FEATURES_LATE`, `GRAPH_LATE`,
   `CONTEXT_MISSING`), no posture yet = RED (DL's own rule before its first observation), no
   receipt = provenance without it (DLA reports the lineage break); never a silent default;
4. each decision is appended to `df_decisions` (ON CONFLICT DO NOTHING) and its
   `decision_response` and `action_intent`s go to the outbox for FP_BUS_RTDL_V1 (envelope event id
   = the record's id, ts_utc = the traffic event's, key = decision id).

With complete inputs and the same posture, a decision is a function of the event alone: the
same bytes on both buses and on a replay. DF reads no oracle output, only admitted records and
the RTDL stores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runtime.contracts.ids import utc_iso
from runtime.contracts.probes import is_ingest_probe
from runtime.decision.bundle import Policy, load_policy, require_pinned
from runtime.decision.df import store
from runtime.decision.df.domain import (
    DEFAULT_IDEMPOTENCY_FIELDS,
    FEATURE_KINDS,
    SUBJECT_FIELDS,
    DecisionRecord,
    Provenance,
    action_intents,
    decide,
)
from runtime.decision.ids import decision_id
from runtime.decision.lane import ACTION_INTENT, DECISION_RESPONSE, lane_envelope, lane_output
from runtime.errors import PermanentError, TransientError
from runtime.rtdl.events import TRAFFIC_CLASSES, Admitted, admitted, micros_to_iso
from runtime.settings import Settings
from runtime.worker.handler import StreamHandler
from runtime.worker.records import InputRecord, OutputRecord

COMPONENT = "df"
PRODUCER = "decision_fabric"
#: The RTDL stores DF reads, by component name.
UPSTREAMS = ("ofp", "ieg", "csfb")
#: While a batch's inputs are pending, DF re-checks them this often inside one attempt (the
#: worker's back-off, 0.2 s doubling, is for failures: a store ~50 ms behind must not cost seconds).
POLL_S = 0.02
#: A re-check that took t seconds is followed by a pause of at least CHECK_PAUSE_FACTOR * t: when a
#: store is far behind (a full-cap backlog) a check scans many admissions, and checking back to
#: back would spend PostgreSQL's CPU the stores need to catch up (a 50 ms check: 100 ms pause).
CHECK_PAUSE_FACTOR = 2.0
#: How long one attempt re-checks before handing the batch back to the worker (which then backs
#: off and retries): bounded, so a stop signal and the health writes are not held up.
HOLD_MS = 1000
#: Most decision ids `_first_wait` keeps: the worker holds one batch at a time (2,000 records), so
#: more means batches this process no longer holds (a rebalance took them); they are forgotten.
FIRST_WAIT_CAP = 20_000


class DecisionInputsPending(TransientError):
    """The batch's inputs are not complete yet; the worker holds the batch and retries it."""

    code = "DF_INPUTS_PENDING"
    next_step = ("nothing to do while it clears within DF_INPUT_WAIT_MS; if it persists, check the rtdl_core pack "
                 "(`fp status`) and the degrade ladder")


class DecisionRecordRefused(PermanentError):
    """A record DF must not decide: another run, not a traffic event class."""

    code = "DF_RECORD_REFUSED"
    next_step = "the record is dead-lettered with its eb_ref; check the producer of the traffic topic"


class PolicyNotPinned(PermanentError):
    """The run's run.json names no policy bundle (pinned before P1 pinned policies)."""

    code = "POLICY_NOT_PINNED"
    next_step = "start a fresh run: P1 pins the shipped policy bundle's digest in run.json"


def record_of(canonical: Mapping[str, Any]) -> DecisionRecord:
    """A DecisionRecord back from its canonical form (a held decision, to rebuild its intents)."""
    fields = dict(canonical)
    for name in ("reasons", "degrade_reasons", "actions"):
        fields[name] = tuple(fields[name])
    return DecisionRecord(**fields)


class DecisionFabricHandler(StreamHandler):
    """Decides every admitted traffic event of the run once, with point-in-time inputs and the pinned policy."""

    component = COMPONENT
    on_decision_path = True

    def __init__(self, platform_run_id: str, topics: Sequence[str], output_topic: str, policy: Policy, pinned_digest: str,
                 upstreams: Sequence[store.Upstream], *, wait_ms: int,
                 key_fields: Sequence[str] = DEFAULT_IDEMPOTENCY_FIELDS, hold_ms: int = 0,
                 clock: Callable[[], float] = time.monotonic, now_utc: Callable[[], str] = utc_iso,
                 sleep: Callable[[float], None] = time.sleep):
        require_pinned(policy, pinned_digest)
        self.platform_run_id = platform_run_id
        self.topics = list(topics)
        self.output_topic = output_topic
        self.policy = policy
        self.pinned_digest = pinned_digest
        self.upstreams = list(upstreams)
        self.wait_s = max(0, wait_ms) / 1000
        #: how long one attempt re-checks pending inputs (every POLL_S) before it hands the batch
        #: back to the worker's back-off; 0: hand it back at once.
        self.hold_s = min(self.wait_s, max(0, hold_ms) / 1000)
        self.sleep = sleep
        self.key_fields = tuple(key_fields)
        self.clock = clock
        self.now_utc = now_utc
        #: decision id -> when a batch holding its event first waited (cleared once decided).
        self._first_wait: dict[str, float] = {}
        self._counts = dict.fromkeys(("df_decided", "df_degraded", "df_redelivered", "df_waits", "df_waited_out",
                                      "df_decided_without_posture", "df_decided_without_receipt",
                                      "df_ingest_probes_skipped"), 0)

    def input_topics(self) -> list[str]:
        """The traffic topics of EVENT_CLASS_MAP."""
        return self.topics

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        """Decide the batch's new events (waiting, bounded, for their inputs); re-emit held decisions."""
        events: list[tuple[InputRecord, Admitted, str]] = []
        probes = 0
        for record in records:
            if is_ingest_probe(record.envelope):
                probes += 1
                continue
            event = self.check(record)
            events.append((record, event, decision_id(self.platform_run_id, event.event_class, event.event_id,
                                                      self.policy.digest)))
        held = store.held_decisions(conn, (d for _, _, d in events))
        fresh = list({d: (r, e, d) for r, e, d in reversed(events) if d not in held}.values())[::-1]
        decided = self.decide(conn, fresh) if fresh else {}
        outputs: dict[str, OutputRecord] = {}
        for record, _, did in events:
            canonical = held[did] if did in held else decided[did].canonical()
            self.emit(outputs, record, record_of(canonical), canonical)
        self._counts["df_redelivered"] += len(events) - len(fresh)  # held, or a repeat inside the batch
        self._counts["df_ingest_probes_skipped"] += probes
        return list(outputs.values())

    def check(self, record: InputRecord) -> Admitted:
        """The admitted traffic event of a record; DF_RECORD_REFUSED or RTDL_PAYLOAD_INVALID otherwise."""
        run = record.envelope.get("platform_run_id")
        if run != self.platform_run_id:
            raise DecisionRecordRefused(f"{record.event_class} {record.event_id} is of run {run}, DF serves {self.platform_run_id}")
        if record.event_class not in TRAFFIC_CLASSES:
            raise DecisionRecordRefused(f"{record.event_class} {record.event_id} is not a traffic event "
                                        f"({', '.join(TRAFFIC_CLASSES)})")
        event = admitted(record.envelope, expect=TRAFFIC_CLASSES)
        for name in SUBJECT_FIELDS:
            event.text(name)
        event.amount_minor()
        return event

    def decide(self, conn: Any, fresh: list[tuple[InputRecord, Admitted, str]]) -> dict[str, DecisionRecord]:
        """Decide the new events of a batch (or hold the batch while its inputs are pending)."""
        newest = max(e.ts_micros for _, e, _ in fresh)
        ids = [d for _, _, d in fresh]
        identities = [(e.event_class, e.event_id) for _, e, _ in fresh]
        hold_until = self.clock() + self.hold_s
        while True:
            # one statement (one snapshot) for frontiers, run_last, positions, posture and receipts,
            # at most one more for the stores' admissions still to apply
            began = self.clock()
            view = store.inputs_view(conn, self.platform_run_id, self.upstreams, identities)
            complete = store.stores_complete(conn, self.platform_run_id, self.upstreams, newest, view.run_last,
                                             view.frontiers, view.positions)
            posture, receipts = view.posture, view.receipts
            pending = [name for name, ok in complete.items() if not ok]
            pending += ["posture"] if posture is None else []
            pending += ["receipts"] if len(receipts) < len(fresh) else []
            if not pending or self.waited_out(ids):
                break
            if self.clock() >= hold_until:
                self._counts["df_waits"] += 1
                raise DecisionInputsPending(f"{len(fresh)} event(s) up to {micros_to_iso(newest)}: waiting for "
                                            f"{', '.join(pending)}")
            self.sleep(max(POLL_S, CHECK_PAUSE_FACTOR * (self.clock() - began)))
        per_event = None
        if pending:
            self._counts["df_waited_out"] += 1
            per_event = self.complete_per_event(conn, fresh, view, complete)
        for did in ids:
            self._first_wait.pop(did, None)
        if posture is None:
            self._counts["df_decided_without_posture"] += len(fresh)
        out: dict[str, DecisionRecord] = {}
        refs = []
        reader = store.BatchReader(conn, self.platform_run_id, [e for _, e, _ in fresh], feature_kinds=FEATURE_KINDS)
        for record, event, did in fresh:
            receipt = receipts.get((event.event_class, event.event_id))
            provenance = Provenance(record.eb_ref.to_dict(), receipt[0] if receipt else None, receipt[1] if receipt else None)
            ok = per_event[did] if per_event is not None else complete
            inputs = reader.inputs(event, features=ok.get("ofp", False), graph=ok.get("ieg", False), join=ok.get("csfb", False),
                                   provenance=provenance)
            out[did] = decide(record.envelope, inputs, self.policy, posture or "RED", pinned_digest=self.pinned_digest,
                              decided_at_utc=self.now_utc())
            refs.append(record.eb_ref.to_dict())
            self._counts["df_degraded"] += 1 if out[did].degraded else 0
            self._counts["df_decided_without_receipt"] += 0 if receipt else 1
        store.append_decisions(conn, list(out.values()), refs)
        self._counts["df_decided"] += len(out)
        return out

    def complete_per_event(self, conn: Any, fresh: list[tuple[InputRecord, Admitted, str]], view: store.InputsView,
                           batch: dict[str, bool]) -> dict[str, dict[str, bool]]:
        """After the wait: which store is complete for each event on its own (an earlier event of
        the batch may be complete where the newest is not), in one statement, against the positions
        the last check read."""
        behind = [u for u in self.upstreams if not batch[u.component]]
        by_time = store.stores_complete_at(conn, self.platform_run_id, behind, (e.ts_micros for _, e, _ in fresh),
                                           view.run_last, view.frontiers, view.positions)
        return {did: {**batch, **by_time[event.ts_micros]} for _, event, did in fresh}

    def waited_out(self, decision_ids: list[str]) -> bool:
        """True once the oldest of these events has waited DF_INPUT_WAIT_MS since its first wait (a
        batch redone record by record, or re-polled after a rebalance, does not start over)."""
        now = self.clock()
        if len(self._first_wait) + len(decision_ids) > FIRST_WAIT_CAP:  # keep only the batch in hand's
            mine = set(decision_ids)
            self._first_wait = {d: t for d, t in self._first_wait.items() if d in mine}
        started = min(self._first_wait.setdefault(d, now) for d in decision_ids)
        return now - started >= self.wait_s

    def emit(self, outputs: dict[str, OutputRecord], record: InputRecord, decision: DecisionRecord,
             canonical: dict[str, Any]) -> None:
        """The decision_response and its action_intents for the outbox (same ids and bytes every time)."""
        scenario, ts = record.envelope.get("scenario_run_id"), str(record.envelope["ts_utc"])
        envelope = lane_envelope(DECISION_RESPONSE, decision.decision_id, canonical, platform_run_id=self.platform_run_id,
                                 scenario_run_id=scenario, ts_utc=ts, producer=PRODUCER)
        outputs.setdefault(decision.decision_id, lane_output(self.output_topic, decision.decision_id, envelope))
        for intent in action_intents(decision, self.key_fields):
            envelope = lane_envelope(ACTION_INTENT, intent.intent_id, intent.canonical(), platform_run_id=self.platform_run_id,
                                     scenario_run_id=scenario, ts_utc=ts, producer=PRODUCER)
            outputs.setdefault(intent.intent_id, lane_output(self.output_topic, decision.decision_id, envelope))

    def counters(self) -> dict[str, int]:
        """This process's decisions, degrades, redeliveries and waits (durable figures: `store.decision_counts`)."""
        return dict(self._counts)


def pinned_digest(settings: Settings, platform_run_id: str) -> str:
    """The policy digest P1 pinned in the run's run.json (POLICY_NOT_PINNED when there is none)."""
    import json

    registry = settings.registry
    key = (registry.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=platform_run_id)
           + registry.text("EVIDENCE_RUN_JSON_KEY"))
    run = json.loads(settings.bucket("S3_EVIDENCE_BUCKET").get(key))
    digest = (run.get("config") or {}).get("policy", {}).get("digest")
    if not digest:
        raise PolicyNotPinned(f"run {platform_run_id}: run.json pins no policy bundle")
    return str(digest)


def build(settings: Settings, platform_run_id: str) -> StreamHandler:
    """The DF handler of a run: the shipped bundle (POLICY_TAMPERED if edited, POLICY_DRIFT if not
    the one P1 pinned), the traffic topics, the RTDL stores it waits on, DF_INPUT_WAIT_MS."""
    from runtime.components import consumer_group_id
    from runtime.rtdl.handler import topics_for
    from runtime.worker.run import build_handler

    registry = settings.registry
    output_of = {registry.topic(spec["topic"]).name: str(spec["output_id"])
                 for spec in registry.mapping("EVENT_CLASS_MAP").values()}
    upstreams = []
    for name in UPSTREAMS:
        topics = tuple(build_handler(name, settings, platform_run_id).input_topics())
        upstreams.append(store.Upstream(name, consumer_group_id(registry, name, platform_run_id), topics,
                                        tuple(output_of[t] for t in topics if t in output_of)))
    return DecisionFabricHandler(
        platform_run_id, topics_for(settings, TRAFFIC_CLASSES), registry.topic("FP_BUS_RTDL_V1").name, load_policy(),
        pinned_digest(settings, platform_run_id), upstreams, wait_ms=registry.integer("DF_INPUT_WAIT_MS"), hold_ms=HOLD_MS,
        key_fields=[str(f) for f in registry.value("ACTION_IDEMPOTENCY_KEY_FIELDS")])
