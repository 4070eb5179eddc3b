"""The gate's use case: validate, claim, publish, then commit receipts. Ports in, results out.

Order of one request (a single envelope or a batch):
1. validate every event (pure); duplicates inside the request are resolved against their first copy;
2. claim the identities in Postgres (PENDING rows) - a Postgres failure is a 503 before anything moves;
3. publish new and reconciling identities; an EbRef only ever comes from the publisher's result;
4. write the quarantine batch object, then the receipts batch object (create-only) while one
   transaction marks identities ADMITTED and appends the receipts and quarantine index rows; the
   transaction commits only once the receipts object is written.
A definite publish failure releases its claims and the request is a 503 (records that did land are
kept as PUBLISHED, so a retry finishes them without publishing again). An unknown outcome
(PublishAmbiguous, or a claim left PENDING by a killed process) is a PUBLISH_AMBIGUOUS receipt; the
retry republishes and admits, so the topic may carry that event twice and its receipts say why.
Only the request holding an identity's claim publishes it (runtime.ig.store: claims are owned by a
live IG process); a request meeting an identity another live request holds is a 503
IG_EVENT_IN_FLIGHT with nothing claimed, and its retry is DUPLICATE once the holder has admitted it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any

from runtime.bus.port import EbRef, OutboundRecord, Publisher
from runtime.contracts.ids import event_time_micros, utc_iso
from runtime.errors import BusUnavailable, PlatformError, PublishAmbiguous
from runtime.ig.domain import Action, CheckedEvent, EventValidator, Identity, Outcome, decide, oversized_excerpt
from runtime.ig.receipts import BatchWriter, new_receipt_id, new_receipt_ids
from runtime.ig.store import AdmissionStore, QuarantineRow, ReceiptRow


class GateUnavailable(PlatformError):
    """A dependency (Postgres, bus, object store) failed, or another request holds an event: answer 503,
    nothing of the request admitted."""

    code = "IG_UNAVAILABLE"
    next_step = "retry the same events later (same event ids); IG dedupe absorbs the retry"


IN_FLIGHT_NEXT_STEP = ("retry the same events after a short backoff (same event ids): once the request holding them"
                       " has admitted them the retry is answered DUPLICATE")


@dataclass
class BusHealth:
    """AMBER until the bus has acknowledged a publish, GREEN after, RED after a failed publish."""

    state: str = "AMBER"
    reasons: list[str] = field(default_factory=lambda: ["BUS_HEALTH_UNKNOWN"])
    last_publish_utc: str | None = None
    admitted: int = 0

    def ok(self, count: int) -> None:
        """A publish was acknowledged."""
        self.state, self.reasons, self.last_publish_utc = "GREEN", [], utc_iso()
        self.admitted += count

    def failed(self, reason: str) -> None:
        """A publish failed definitively."""
        self.state, self.reasons = "RED", [reason]


@dataclass
class _Plan:
    checked: CheckedEvent
    action: Action | None = None
    primary: int | None = None  # index of the first copy inside this request
    existing_receipt_id: str | None = None
    eb_ref: dict[str, Any] | None = None
    receipt: dict[str, Any] | None = None
    ambiguous_receipt: dict[str, Any] | None = None


class IngestService:
    """One pinned run's gate."""

    def __init__(self, validator: EventValidator, store: AdmissionStore, publisher: Publisher, writer: BatchWriter,
                 *, producer_name: str = "ig"):
        self.validator = validator
        self.store = store
        self.publisher = publisher
        self.writer = writer
        self.health = BusHealth()
        self._in_flight: set[Identity] = set()
        self._lock = threading.Lock()
        self._object_writes = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="ig-receipts")
        self.producer_name = producer_name

    # --- the use case -------------------------------------------------------------------------

    def ingest(self, events: list[Any], *, measure_sizes: bool = True) -> list[dict[str, Any]]:
        """Decide, publish and record every event; per-event results in request order. `measure_sizes`
        may be False when the whole body is within IG_MAX_EVENT_BYTES (no event can be over it)."""
        plans = [_Plan(self.validator.check(i, e, measure=measure_sizes)) for i, e in enumerate(events)]
        firsts: dict[Identity, int] = {}
        for plan in plans:
            ident = plan.checked.identity
            if ident is None:
                continue
            if ident in firsts:
                plan.primary = firsts[ident]
            else:
                firsts[ident] = plan.checked.index
        with self._lock:
            busy = [i for i in firsts if i in self._in_flight]
            mine = [] if busy else list(firsts)
            self._in_flight.update(mine)
        if busy:  # another request of this process holds them: nothing of this one is claimed
            raise GateUnavailable(f"{len(busy)} event(s) of this request are being admitted by another request right now",
                                  code="IG_EVENT_IN_FLIGHT", next_step=IN_FLIGHT_NEXT_STEP)
        try:
            return self._ingest(plans, firsts)
        finally:
            with self._lock:
                self._in_flight.difference_update(mine)

    def _ingest(self, plans: list[_Plan], firsts: dict[Identity, int]) -> list[dict[str, Any]]:
        idents = list(firsts)
        try:
            claims = self.store.claim(idents, [plans[firsts[i]].checked.payload_hash or "" for i in idents],
                                      [event_time_micros(plans[firsts[i]].checked.field("ts_utc")) for i in idents])
        except PlatformError as e:
            raise GateUnavailable(f"admission store: {e.message}") from e
        for ident, index in firsts.items():
            plan = plans[index]
            claim = claims[ident]
            plan.action = decide(plan.checked.payload_hash or "", claim.claimed, claim.existing, held=claim.held)
            if claim.existing is not None:
                plan.existing_receipt_id = claim.existing.receipt_id
                plan.eb_ref = claim.existing.eb_ref
        fresh = [ident for ident in idents if claims[ident].claimed]
        held = [ident for ident in idents if claims[ident].held]
        landed: dict[Identity, dict[str, Any]] = {}
        attempted: set[Identity] = set()
        try:
            if any(plans[i].action is Action.IN_FLIGHT for i in firsts.values()):
                raise GateUnavailable("some events of this request are being admitted by another request right now",
                                      code="IG_EVENT_IN_FLIGHT", next_step=IN_FLIGHT_NEXT_STEP)
            return self._publish_and_record(plans, firsts, landed, attempted)
        except BaseException:
            # Let go of every claim this request holds: fresh claims whose publish was not attempted or
            # definitely failed are deleted; the others stay (PENDING / PUBLISHED) for any process to finish.
            self._keep_landed(landed)
            with contextlib.suppress(PlatformError):
                self.store.release([i for i in fresh if i not in attempted], held)
            raise

    def _publish_and_record(self, plans: list[_Plan], firsts: dict[Identity, int], landed: dict[Identity, dict[str, Any]],
                            attempted: set[Identity]) -> list[dict[str, Any]]:
        to_publish = [plans[i] for i in firsts.values() if plans[i].action in (Action.PUBLISH, Action.REPUBLISH)]
        ambiguous: list[_Plan] = []
        failed: list[_Plan] = []
        if to_publish:
            records = [OutboundRecord(p.checked.topic or "", p.checked.identity[2] if p.checked.identity else "",
                                      p.checked.value or b"") for p in to_publish]
            attempted.update(p.checked.identity for p in to_publish if p.checked.identity)
            try:
                results: list[EbRef | Exception] = self.publisher.publish(records)
            except PlatformError as e:
                results = [e] * len(records)
            except Exception as e:  # a driver error the adapter did not translate: outcome unknown
                results = [PublishAmbiguous(f"publish raised {type(e).__name__}: {e}")] * len(records)
            for plan, result in zip(to_publish, results, strict=True):
                assert plan.checked.identity is not None
                if isinstance(result, EbRef):
                    plan.eb_ref = result.to_dict()
                    landed[plan.checked.identity] = plan.eb_ref
                elif isinstance(result, PublishAmbiguous):
                    ambiguous.append(plan)
                else:
                    failed.append(plan)
        if failed:
            self.health.failed("BUS_PUBLISH_FAILED")
            attempted.difference_update(p.checked.identity for p in failed)  # definitely not on the bus
            first = next(r for r in results if isinstance(r, Exception))
            raise GateUnavailable(f"bus: {first}") from first
        if landed:
            self.health.ok(len(landed))
        return self._record(plans, landed, ambiguous)

    def _keep_landed(self, landed: dict[Identity, dict[str, Any]]) -> None:
        with contextlib.suppress(PlatformError):  # left PENDING: a retry republishes and flags PUBLISH_AMBIGUOUS
            self.store.mark_published(landed)
        landed.clear()

    def _record(self, plans: list[_Plan], landed: dict[Identity, dict[str, Any]], ambiguous: list[_Plan]) -> list[dict[str, Any]]:
        now = utc_iso()
        receipts: list[dict[str, Any]] = []
        quarantine_items: list[dict[str, Any]] = []
        quarantine_rows: list[QuarantineRow] = []
        admitted: dict[Identity, tuple[str, dict[str, Any]]] = {}
        pending_receipts: dict[Identity, str] = {}
        ambiguous_ids = {id(p) for p in ambiguous}
        quarantine_key = self.writer.quarantine_key()
        originals_needed = [p.existing_receipt_id for p in plans if p.action is Action.DUPLICATE and p.existing_receipt_id]

        for plan, receipt_id in zip(plans, new_receipt_ids(len(plans)), strict=True):
            c = plan.checked
            base = {
                "receipt_id": receipt_id,
                "platform_run_id": self.validator.platform_run_id,
                "event_class": c.field("event_class") if isinstance(c.field("event_class"), str) else None,
                "event_id": c.field("event_id") if isinstance(c.field("event_id"), str) else None,
                "event_type": c.field("event_type") if isinstance(c.field("event_type"), str) else None,
                "payload_hash": c.payload_hash,
                "recorded_at_utc": now,
                "eb_ref": None,
            }
            if not c.valid:
                plan.receipt = {**base, "outcome": Outcome.QUARANTINE.value,
                                "error": {"code": c.error_code, "message": c.error_message}}
                self._quarantine(plan, quarantine_key, quarantine_items, quarantine_rows, c.error_code or "INVALID")
            elif plan.primary is not None:
                first = plans[plan.primary]
                first_outcome = (first.receipt or {}).get("outcome")
                if first.checked.payload_hash != c.payload_hash or first_outcome == Outcome.ANOMALY.value:
                    plan.receipt = {**base, "outcome": Outcome.ANOMALY.value,
                                    "error": {"code": "PAYLOAD_HASH_MISMATCH",
                                              "message": "same identity earlier in this request with another payload"}}
                    self._quarantine(plan, quarantine_key, quarantine_items, quarantine_rows, "PAYLOAD_HASH_MISMATCH")
                else:
                    plan.receipt = {**base, "outcome": Outcome.DUPLICATE.value, "duplicate_of_index": plan.primary}
            elif plan.action is Action.ANOMALY:
                plan.receipt = {**base, "outcome": Outcome.ANOMALY.value, "original_receipt_id": plan.existing_receipt_id,
                                "error": {"code": "PAYLOAD_HASH_MISMATCH",
                                          "message": "identity admitted earlier with another payload hash; first payload kept"}}
                self._quarantine(plan, quarantine_key, quarantine_items, quarantine_rows, "PAYLOAD_HASH_MISMATCH")
            elif plan.action is Action.DUPLICATE:
                plan.receipt = {**base, "outcome": Outcome.DUPLICATE.value, "original_receipt_id": plan.existing_receipt_id}
            elif id(plan) in ambiguous_ids:
                plan.receipt = {**base, "outcome": Outcome.PUBLISH_AMBIGUOUS.value,
                                "error": {"code": "PUBLISH_AMBIGUOUS",
                                          "message": "the bus did not confirm delivery; retry the event to reconcile"}}
                if c.identity is not None:
                    pending_receipts[c.identity] = plan.receipt["receipt_id"]
            else:
                assert c.identity is not None and plan.eb_ref is not None
                if plan.action is Action.REPUBLISH and plan.existing_receipt_id is None:
                    # The claim was PENDING without a receipt: the attempt that made it died before its
                    # publish outcome was known. Record that attempt as PUBLISH_AMBIGUOUS, then this one as ADMIT.
                    plan.ambiguous_receipt = {**base, "receipt_id": new_receipt_id(), "eb_ref": None,
                                              "outcome": Outcome.PUBLISH_AMBIGUOUS.value,
                                              "error": {"code": "PUBLISH_AMBIGUOUS",
                                                        "message": "an earlier attempt ended before its delivery was known;"
                                                                   " republished, the topic may hold this event twice"}}
                    receipts.append(plan.ambiguous_receipt)
                plan.receipt = {**base, "outcome": Outcome.ADMIT.value, "eb_ref": plan.eb_ref,
                                "admitted_at_utc": now, "republished": plan.action is Action.REPUBLISH}
                if plan.ambiguous_receipt:
                    plan.receipt["reconciles_receipt_id"] = plan.ambiguous_receipt["receipt_id"]
                elif plan.action is Action.REPUBLISH:
                    plan.receipt["reconciles_receipt_id"] = plan.existing_receipt_id
                admitted[c.identity] = (plan.receipt["receipt_id"], plan.eb_ref)
            receipts.append(plan.receipt)

        # receipts of in-request duplicates point at the first copy's receipt
        for plan in plans:
            if plan.receipt and "duplicate_of_index" in plan.receipt:
                first_receipt = plans[plan.receipt.pop("duplicate_of_index")].receipt or {}
                plan.receipt["original_receipt_id"] = first_receipt.get("original_receipt_id") or first_receipt.get("receipt_id")

        receipts_key = self.writer.receipts_key()
        rows = [ReceiptRow(r, receipts_key, i) for i, r in enumerate(receipts)]
        try:
            if quarantine_items:
                self.writer.write_quarantine(quarantine_key, quarantine_items)
            # The receipts object is written while the transaction's statements run; COMMIT waits for it,
            # so no committed receipt row ever points at an object that is not there.
            written = self._object_writes.submit(self.writer.write_receipts, receipts_key, receipts)
            try:
                self.store.commit(admitted, rows, quarantine_rows, pending_receipts, before_commit=written.result)
            finally:
                concurrent.futures.wait([written])
        except PlatformError as e:  # landed records are kept as PUBLISHED by the caller
            raise GateUnavailable(f"recording receipts failed: {e.message}") from e

        originals = self._originals(originals_needed)
        return [self._result(p, originals) for p in plans]

    def _quarantine(self, plan: _Plan, key: str, items: list[dict[str, Any]], rows: list[QuarantineRow], reason: str) -> None:
        assert plan.receipt is not None
        plan.receipt["quarantine_ref"] = {"bucket_key": key, "index": len(items)}
        kept = oversized_excerpt(plan.checked.raw) if reason == "EVENT_TOO_LARGE" else plan.checked.raw
        items.append({"receipt_id": plan.receipt["receipt_id"], "reason": reason, "event": kept})
        rows.append(QuarantineRow(plan.receipt["receipt_id"], self.validator.platform_run_id, plan.receipt.get("event_class"),
                                  plan.receipt.get("event_id"), reason, key, len(items) - 1))

    def _originals(self, receipt_ids: list[str]) -> dict[str, dict[str, Any]]:
        try:
            return self.store.receipts_by_id(receipt_ids)
        except PlatformError:
            return {}

    @staticmethod
    def _result(plan: _Plan, originals: dict[str, dict[str, Any]]) -> dict[str, Any]:
        r = plan.receipt or {}
        result: dict[str, Any] = {"index": plan.checked.index, "outcome": r.get("outcome"), "receipt": r}
        if r.get("error"):
            result["error"] = r["error"]
        if r.get("outcome") == Outcome.DUPLICATE.value and r.get("original_receipt_id") in originals:
            result["original_receipt"] = originals[r["original_receipt_id"]]
        return result


def status_of(results: list[dict[str, Any]]) -> dict[str, int]:
    """Counts by outcome of one response (for logs and the response summary)."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    return counts


__all__ = ["BusUnavailable", "GateUnavailable", "IngestService", "status_of"]
