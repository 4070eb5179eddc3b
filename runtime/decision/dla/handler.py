"""DLA as a stream handler: decisions, intents and outcomes on FP_BUS_RTDL_V1 -> the hash-chained audit.

Per batch of input, inside the worker's transaction: take the run's chain lock and read the head
from the index, check each lane record (its payload schema, `decision_response`, `action_intent`
or `action_outcome`; `audit_record`: known kind, ids that are what its content implies, the run
DLA serves; else AUDIT_RECORD_INVALID, dead-lettered and never logged), drop those the index already holds (a redelivery or a replay; the
same id with other content is AUDIT_RECORD_CONFLICT, dead-lettered), seal the new ones, in input
order, into one batch object naming the previous batch's sha256, write it, append its index rows,
and put one `audit_record` event per new record on FP_BUS_AUDIT_V1 through the outbox.

Concurrency: one DLA member per run. The chain is a single sequence, so the run's records are
consumed by one process (FP_BUS_RTDL_V1 has one partition); the chain lock makes a second member
wait rather than fork the chain. Given the input order, the order of records in the chain is
deterministic; batch boundaries follow the worker's batches.

Lineage (outcome -> intent -> decision -> admitted event) is resolved from the index: a record
whose parent has not arrived is pending and resolves when the parent is logged; what is left at
closeout is `lineage_unresolved_total` (`dla.store.lineage_unresolved_total`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from runtime.contracts.canonical import canonical_json, canonical_json_embedding
from runtime.contracts.compiled import Check, fast_check
from runtime.decision.dla.domain import AuditChain, AuditRecordInvalid, audit_record
from runtime.decision.dla.store import (
    LineageCounter,
    batch_key,
    conflict,
    held_records,
    index_batch,
    lock_chain,
    put_batch,
)
from runtime.decision.lane import AUDIT_RECORD, KIND_OF_CLASS, lane_envelope, lane_output
from runtime.pacing import pause_after
from runtime.settings import Settings
from runtime.store.port import ObjectStore
from runtime.worker.handler import StreamHandler
from runtime.worker.records import InputRecord, OutputRecord

#: Most of DLA's time the lineage counts may take: `LineageCounter` reads the batches since the
#: oldest child still waiting for its parent, which is far back when a parent never comes, so a
#: fixed interval could spend a growing share of DLA and PostgreSQL on a health figure.
LINEAGE_DUTY = 0.05
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_PARENT_FIELD = {"decision": None, "intent": "decision_id", "outcome": "intent_id"}


class AuditHandler(StreamHandler):
    """Logs every lane record once in the hash-chained audit and publishes its audit record."""

    component = "decision_log_audit"

    def __init__(self, topic: str, audit_topic: str, store: ObjectStore, prefix: str, platform_run_id: str, *,
                 lineage_interval_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.topic = topic
        self.audit_topic = audit_topic
        self.store = store
        self.prefix = prefix
        self.platform_run_id = platform_run_id
        self.logged = 0
        self.duplicates = 0
        self.ignored = 0
        self.batches_written = 0
        self.lineage_pending = 0
        self.lineage_unresolvable = 0
        #: The lineage counts (health only) are refreshed at most this often,
        #: and less often once they take long (`LINEAGE_DUTY`); 0 refreshes them at every batch.
        self.lineage_interval_s = lineage_interval_s
        self.clock = clock
        self._lineage_due: float | None = None
        self._lineage = LineageCounter(platform_run_id)
        #: event class -> its payload schema's compiled check (half of DLA's time went to jsonschema)
        self._checks: dict[str, Check] = {}

    def input_topics(self) -> list[str]:
        """FP_BUS_RTDL_V1."""
        return [self.topic]

    def entry(self, record: InputRecord) -> tuple[dict[str, Any], bytes]:
        """The audit entry of one lane record (its audit record, parent id, eb_ref and content) and
        the content's canonical bytes, written once: the digest, the batch object and the index row
        all take them."""
        kind = KIND_OF_CLASS[record.event_class]
        payload = record.payload
        check = self._checks.get(record.event_class)
        if check is None:
            check = self._checks[record.event_class] = fast_check(f"events/payloads/{record.event_class}.schema.json")
        problem = check(payload, "(root)")
        if problem:
            raise AuditRecordInvalid(f"{record.event_class} {record.event_id} breaks its schema at {problem[:240]}")
        payload_json = canonical_json(dict(payload))
        audit = audit_record(kind, payload, payload_json=payload_json)
        if audit["record_id"] != record.event_id:
            raise AuditRecordInvalid(f"envelope event_id {record.event_id} is not the {kind}'s id {audit['record_id']}")
        if audit["platform_run_id"] != self.platform_run_id:
            raise AuditRecordInvalid(f"{kind} {audit['record_id']} names run {audit['platform_run_id']}, "
                                     f"DLA logs {self.platform_run_id}")
        parent_field = _PARENT_FIELD[kind]
        parent = payload.get(parent_field) if parent_field else None
        for name, value in (("decision_id", audit["decision_id"]), ("event_id", audit["event_id"]), (parent_field, parent)):
            if name and not (isinstance(value, str) and _HEX32.match(value)):
                raise AuditRecordInvalid(f"{kind} {audit['record_id']} has no valid {name}")
        return {**audit, "parent_id": parent, "eb_ref": record.eb_ref.to_dict(), "record": dict(payload)}, payload_json

    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        """Seal this batch's new lane records onto the chain; return their audit events."""
        lane = [r for r in records if r.event_class in KIND_OF_CLASS]
        ignored = len(records) - len(lane)
        entries = [(r, *self.entry(r)) for r in lane]
        head = lock_chain(conn, self.platform_run_id)
        held = held_records(conn, self.platform_run_id, [e["audit_id"] for _, e, _ in entries])
        fresh: list[tuple[InputRecord, dict[str, Any]]] = []
        contents: list[bytes] = []
        duplicates = 0
        for record, e, payload_json in entries:
            known = held.get(e["audit_id"])
            if known is not None:
                if known != e["record_sha256"]:
                    raise conflict(e["kind"], e["record_id"])
                duplicates += 1
                continue
            held[e["audit_id"]] = e["record_sha256"]
            fresh.append((record, e))
            contents.append(payload_json)
        outputs: list[OutputRecord] = []
        if fresh:
            chain = AuditChain(self.platform_run_id, head.head_sha256, head.next_seq)
            encoded = [canonical_json_embedding({k: v for k, v in e.items() if k != "record"}, {"record": content})
                       for (_, e), content in zip(fresh, contents, strict=True)]
            data, digest = chain.seal([e for _, e in fresh], encoded=encoded)
            key = batch_key(self.prefix, head.next_seq, digest)
            put_batch(self.store, key, data)
            index_batch(conn, self.platform_run_id, head.next_seq, head.head_sha256, digest, key, [e for _, e in fresh],
                        contents=contents)
            for record, e in fresh:
                audit = {k: e[k] for k in ("audit_id", "kind", "record_id", "decision_id", "event_id", "platform_run_id",
                                           "record_sha256")}
                envelope = lane_envelope(AUDIT_RECORD, e["audit_id"], audit, platform_run_id=self.platform_run_id,
                                         scenario_run_id=record.envelope.get("scenario_run_id"),
                                         ts_utc=str(record.envelope["ts_utc"]), producer=self.component)
                outputs.append(lane_output(self.audit_topic, str(e["decision_id"]), envelope))
            if self._lineage_due is None or self.clock() >= self._lineage_due:
                began = self.clock()
                self.lineage_pending, self.lineage_unresolvable = self._lineage.read(conn, head.next_seq)
                took = self.clock() - began
                if self.lineage_interval_s > 0:  # 0: at every batch (exact counts, as the tests read them)
                    self._lineage_due = began + took + pause_after(took, self.lineage_interval_s, LINEAGE_DUTY)
            self.batches_written += 1
        self.logged += len(fresh)
        self.duplicates += duplicates
        self.ignored += ignored
        return outputs

    def counters(self) -> dict[str, int]:
        """This process's records logged, duplicates, ignored records, batches, and the run's lineage now.

        `dla_lineage_pending`: children whose parent has not arrived yet; `lineage_unresolvable`:
        decisions without their admitted event's eb_ref or receipt (both as of the last refresh,
        at most `lineage_interval_s` old while records arrive). The closeout figure is
        `dla.store.lineage_unresolved_total`.
        """
        return {"dla_records_logged": self.logged, "dla_duplicates": self.duplicates, "dla_ignored_other_class": self.ignored,
                "dla_batches_written": self.batches_written, "dla_lineage_pending": self.lineage_pending,
                "dla_lineage_unresolvable": self.lineage_unresolvable}


def build(settings: Settings, platform_run_id: str) -> StreamHandler:
    """The DLA handler of `platform_run_id`: topics, the evidence bucket and the run's audit prefix from the registry."""
    registry = settings.registry
    return AuditHandler(registry.topic("FP_BUS_RTDL_V1").name, registry.topic("FP_BUS_AUDIT_V1").name,
                        settings.bucket("S3_EVIDENCE_BUCKET"),
                        registry.render("DLA_AUDIT_PREFIX_PATTERN", platform_run_id=platform_run_id), platform_run_id)
