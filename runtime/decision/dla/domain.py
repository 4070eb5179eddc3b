"""Decision log and audit (DLA): lineage of every record and a tamper-evident chain of audit batches.

DLA reads decisions, intents and outcomes (in any order: they share one topic but redelivery and
replays shuffle them) and resolves each outcome's lineage: outcome -> intent -> decision ->
admitted event (its eb_ref and IG receipt id). A link that cannot be resolved is a lineage break;
`lineage_unresolved_total` counts them and must be 0 at closeout.

Audit records are written in batches. A batch object names the sha256 of the batch before it
(the first names GENESIS), its sequence number and the sha256 of its records, so `verify_chain`
finds a batch whose records were edited, a batch that was removed, and batches put out of order;
with the head digest from the index it also finds a truncated or re-forged tail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.bus.json_codec import loads
from runtime.contracts.canonical import (
    canonical_digest,
    canonical_json,
    canonical_json_embedding,
    canonical_json_list,
    sha256_hex,
)
from runtime.decision.ids import decision_id, intent_id, outcome_id
from runtime.errors import PermanentError

GENESIS = "0" * 64
KINDS = ("decision", "intent", "outcome")


class AuditRecordInvalid(PermanentError):
    """A record DLA cannot log: unknown kind, missing ids, or an id that is not what its content implies."""

    code = "AUDIT_RECORD_INVALID"
    next_step = "the record is dead-lettered with its eb_ref; check the producer (DF or AL) of that record"


class AuditRecordConflict(PermanentError):
    """A record id arrived again with different content: the log keeps the first, this one is refused."""

    code = "AUDIT_RECORD_CONFLICT"
    next_step = "two different records with one id mean a producer bug or tampering: investigate the producer"


_ID_FIELD = {"decision": "decision_id", "intent": "intent_id", "outcome": "outcome_id"}


def audit_record(kind: str, payload: Mapping[str, Any], *, payload_json: bytes | None = None) -> dict[str, Any]:
    """The audit record of one lane record: its kind, ids, and the sha256 of its content
    (`payload_json`: the payload's canonical bytes, when the caller has written them already)."""
    if kind not in KINDS:
        raise AuditRecordInvalid(f"record kind {kind!r} is not one of {', '.join(KINDS)}")
    record_id = payload.get(_ID_FIELD[kind])
    if not isinstance(record_id, str) or not record_id:
        raise AuditRecordInvalid(f"{kind} record has no {_ID_FIELD[kind]}")
    if kind == "decision":
        policy = payload.get("policy")
        digest = policy.get("digest") if isinstance(policy, Mapping) else None
        if record_id != decision_id(str(payload.get("platform_run_id")), str(payload.get("event_class")),
                                    str(payload.get("event_id")), str(digest)):
            raise AuditRecordInvalid(f"decision {record_id} is not H(run, event class, event id, policy digest)")
    if kind == "intent" and record_id != intent_id(str(payload.get("decision_id")), str(payload.get("action_type"))):
        raise AuditRecordInvalid(f"intent {record_id} is not H(decision, action type)")
    if kind == "outcome" and record_id != outcome_id(str(payload.get("intent_id"))):
        raise AuditRecordInvalid(f"outcome {record_id} is not H(intent)")
    return {"audit_id": canonical_digest({"kind": kind, "record_id": record_id})[:32], "kind": kind, "record_id": record_id,
            "decision_id": payload.get("decision_id"), "event_id": payload.get("event_id"),
            "platform_run_id": payload.get("platform_run_id"),
            "record_sha256": sha256_hex(canonical_json(dict(payload)) if payload_json is None else payload_json)}


@dataclass
class AuditLog:
    """In-memory DLA state: records by kind and id, audit records in arrival order, lineage queries."""

    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0

    def _table(self, kind: str) -> dict[str, dict[str, Any]]:
        return {"decision": self.decisions, "intent": self.intents, "outcome": self.outcomes}[kind]

    def append(self, kind: str, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        """Log one record; returns its audit record, or None for a redelivered identical record."""
        record = audit_record(kind, payload)
        table = self._table(kind)
        held = table.get(record["record_id"])
        if held is not None:
            if canonical_digest(held) != record["record_sha256"]:
                raise AuditRecordConflict(f"{kind} {record['record_id']} arrived again with different content")
            self.duplicates += 1
            return None
        table[record["record_id"]] = dict(payload)
        self.records.append(record)
        return record

    def unresolved(self, *, final: bool = True) -> list[dict[str, Any]]:
        """Every lineage break: outcome->intent, intent->decision, decision->admitted event.

        With `final` (closeout), a decision whose intents, or an intent whose outcome, never
        arrived is a break too; before closeout those are still in flight.
        """
        breaks = []
        for oid, outcome in sorted(self.outcomes.items()):
            if outcome.get("intent_id") not in self.intents:
                breaks.append({"record_id": oid, "kind": "outcome", "break": "INTENT_UNKNOWN"})
        for iid, intent in sorted(self.intents.items()):
            if intent.get("decision_id") not in self.decisions:
                breaks.append({"record_id": iid, "kind": "intent", "break": "DECISION_UNKNOWN"})
            elif final and outcome_id(iid) not in self.outcomes:
                breaks.append({"record_id": iid, "kind": "intent", "break": "OUTCOME_MISSING"})
        for did, decision in sorted(self.decisions.items()):
            provenance = decision.get("provenance") or {}
            if not decision.get("event_id") or not provenance.get("eb_ref") or not provenance.get("receipt_id"):
                breaks.append({"record_id": did, "kind": "decision", "break": "ADMITTED_EVENT_UNRESOLVED"})
            if final:
                for action_type in decision.get("actions") or ():
                    if intent_id(did, action_type) not in self.intents:
                        breaks.append({"record_id": did, "kind": "decision", "break": f"INTENT_MISSING:{action_type}"})
        return breaks

    def lineage_unresolved_total(self, *, final: bool = True) -> int:
        """How many lineage breaks there are (0 is the P9 gate)."""
        return len(self.unresolved(final=final))

    def chain(self, *, decision_id: str | None = None, event_id: str | None = None) -> dict[str, Any] | None:
        """One decision's whole chain (admitted event, decision with its reasons, intents, outcomes), by decision or event id."""
        decision = self.decisions.get(decision_id or "")
        if decision is None and event_id is not None:
            decision = next((d for d in self.decisions.values() if d.get("event_id") == event_id), None)
        if decision is None:
            return None
        did = decision["decision_id"]
        intents = [self.intents[intent_id(did, a)] for a in decision.get("actions") or () if intent_id(did, a) in self.intents]
        outcomes = [self.outcomes[outcome_id(i["intent_id"])] for i in intents if outcome_id(i["intent_id"]) in self.outcomes]
        provenance = decision.get("provenance") or {}
        return {"admitted_event": {"event_class": decision.get("event_class"), "event_id": decision.get("event_id"),
                                   "eb_ref": provenance.get("eb_ref"), "receipt_id": provenance.get("receipt_id")},
                "decision": decision, "reasons": decision.get("reasons", []), "intents": intents, "outcomes": outcomes}


def seal_batch(platform_run_id: str, seq: int, previous_sha256: str, records: Sequence[Mapping[str, Any]], *,
               encoded: Sequence[bytes] | None = None) -> tuple[bytes, str]:
    """The bytes of one audit batch object (canonical JSON) and their sha256 (what the next batch names).
    `encoded`: each record's canonical bytes, when the caller has them (the same bytes result)."""
    items = [canonical_json(dict(r)) for r in records] if encoded is None else list(encoded)
    listed = canonical_json_list(items)
    body = {"platform_run_id": platform_run_id, "batch_seq": seq, "previous_sha256": previous_sha256,
            "record_count": len(items), "records_sha256": sha256_hex(listed)}
    data = canonical_json_embedding(body, {"records": listed})
    return data, sha256_hex(data)


@dataclass
class AuditChain:
    """The writer side of the chain: the next sequence number and the head digest."""

    platform_run_id: str
    head_sha256: str = GENESIS
    next_seq: int = 0

    def seal(self, records: Sequence[Mapping[str, Any]], *, encoded: Sequence[bytes] | None = None) -> tuple[bytes, str]:
        """Seal the next batch onto the chain; returns (object bytes, its sha256)."""
        data, digest = seal_batch(self.platform_run_id, self.next_seq, self.head_sha256, records, encoded=encoded)
        self.head_sha256, self.next_seq = digest, self.next_seq + 1
        return data, digest


@dataclass(frozen=True)
class ChainVerdict:
    """What verify_chain found: ok, the batches checked, and each problem with its batch position and code."""

    ok: bool
    batches: int
    problems: tuple[dict[str, Any], ...]


def verify_chain(objects: Iterable[bytes], *, head_sha256: str | None = None, expected_batches: int | None = None) -> ChainVerdict:
    """Check a run's audit batch objects in their listed order (the order of their sequence-numbered names).

    Codes: BATCH_UNREADABLE; BATCH_EDITED (records do not match their digest, or a batch's bytes do
    not hash to what the next batch names); BATCH_REMOVED (a sequence number missing);
    BATCH_REORDERED (sequence numbers out of order); HEAD_MISMATCH / BATCH_COUNT_MISMATCH (the
    last batch or the count differs from the index: a removed or re-forged tail).
    """
    return verify_read_chain(((data, read_batch(data)) for data in objects), head_sha256=head_sha256,
                             expected_batches=expected_batches)


def read_batch(data: bytes) -> Any:
    """The document of a batch object, or the ValueError that makes it unreadable (reported by
    `verify_read_chain` as BATCH_UNREADABLE)."""
    try:
        return loads(data)
    except ValueError as e:
        return e


def records_digest(data: bytes, batch: Mapping[str, Any]) -> str:
    """`canonical_digest(batch["records"])` of a batch object (`data`, parsed as `batch`).

    An object laid out as `seal_batch` writes it holds its records' canonical list as it is: when
    the object is its other fields around those bytes, canonical, their sha256 is the digest
    without walking and writing every record again (~20% of P9's chain check). Any other layout is
    digested from the parsed records."""
    start, end = data.find(b'"records":'), data.rfind(b',"records_sha256":')
    if 0 <= start < end:
        listed = data[start + len(b'"records":'):end]
        others = {k: v for k, v in batch.items() if k != "records"}
        try:
            if listed[:1] == b"[" and canonical_json_embedding(others, {"records": listed}) == data:
                return sha256_hex(listed)
        except ValueError:  # other fields the standard encoder writes, and bytes that are no list: parsed below
            pass
    return canonical_digest(batch["records"])


def verify_read_chain(batches: Iterable[tuple[bytes, Any]], *, head_sha256: str | None = None,
                      expected_batches: int | None = None) -> ChainVerdict:
    """`verify_chain` over (object bytes, `read_batch` of them) pairs: a caller that reads each batch's
    records itself (the index check) parses every object once."""
    problems: list[dict[str, Any]] = []
    parsed: list[tuple[int, int, str, str]] = []  # position, seq, names_previous, own digest
    count = 0
    last_digest = GENESIS
    for position, (data, batch) in enumerate(batches):
        count += 1
        last_digest = sha256_hex(data)
        try:
            if isinstance(batch, ValueError):
                raise batch
            seq = int(batch["batch_seq"])
            records = batch["records"]
            edited = records_digest(data, batch) != batch["records_sha256"] or batch.get("record_count") != len(records)
            parsed.append((position, seq, str(batch["previous_sha256"]), last_digest))
        except (ValueError, KeyError, TypeError) as e:
            problems.append({"position": position, "code": "BATCH_UNREADABLE", "detail": str(e)})
            continue
        if edited:
            problems.append({"position": position, "batch_seq": seq, "code": "BATCH_EDITED",
                             "detail": "records do not match the batch's records_sha256"})
    seqs = [seq for _, seq, _, _ in parsed]
    for (position, seq, _, _), (_, before, _, _) in zip(parsed[1:], parsed, strict=False):
        if seq <= before:
            problems.append({"position": position, "batch_seq": seq, "code": "BATCH_REORDERED",
                             "detail": f"sequence {seq} listed after {before}"})
    for missing in sorted(set(range(max(seqs, default=-1) + 1)) - set(seqs)):
        problems.append({"batch_seq": missing, "code": "BATCH_REMOVED", "detail": f"no batch with sequence {missing}"})
    by_seq = {seq: (position, digest) for position, seq, _, digest in parsed}
    for position, seq, names_previous, _ in parsed:
        if seq == 0:
            before_digest: str | None = GENESIS
        else:
            held = by_seq.get(seq - 1)
            before_digest = held[1] if held is not None else None
        if before_digest is not None and names_previous != before_digest:
            problems.append({"position": position - 1 if seq else position, "batch_seq": seq - 1 if seq else seq,
                             "code": "BATCH_EDITED",
                             "detail": f"batch {seq} names previous {names_previous[:12]}..., batch {seq - 1} hashes to "
                                       f"{before_digest[:12]}..."})
    if head_sha256 is not None:
        head = by_seq.get(max(seqs, default=-1), (None, GENESIS))[1] if seqs else last_digest
        if head != head_sha256:
            problems.append({"position": count, "code": "HEAD_MISMATCH",
                             "detail": f"the last batch hashes to {head[:12]}..., the index records {head_sha256[:12]}..."})
    if expected_batches is not None and count != expected_batches:
        problems.append({"position": count, "code": "BATCH_COUNT_MISMATCH",
                         "detail": f"{count} batches listed, the index records {expected_batches}"})
    return ChainVerdict(not problems, count, tuple(problems))
