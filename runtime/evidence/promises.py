"""What each evidence file promises beyond its schema, checked by `fp evidence validate`.

A schema says a count is a non-negative integer; the producer says more: receipt outcomes add up
to the attempts (runtime/ig/summaries.py checks it before writing), an offset range starts before
it ends, WSP totals are the sums of its outputs, a bounded run streams exactly the gate it pinned
per output, a phase that PASSed met every check of its gate. An edited count whose digest was
recomputed still breaks one of these, so each is checked here, file by file and across files.
Every finding is (bundle-relative path, message).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.contracts.canonical import sha256_hex
from runtime.contracts.registry import Registry
from runtime.evidence.writer import encode

Finding = tuple[str, str]
Documents = dict[str, dict[str, Any]]


def _int(value: Any) -> int | None:
    """An integer count or offset (Kinesis sequence numbers are decimal strings); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _counts(mapping: Any) -> list[int]:
    return [v for v in (mapping or {}).values() if isinstance(v, int)] if isinstance(mapping, dict) else []


def receipt_summary(path: str, doc: dict[str, Any], _: Documents, __: Registry) -> list[Finding]:
    """Outcomes and event classes each add up to attempts; the gate follows from the counts."""
    out: list[Finding] = []
    counts = doc.get("counts") or {}
    by_outcome = counts.get("by_outcome") or {}
    attempts = doc.get("attempts")
    outcomes, classes = sum(_counts(by_outcome)), sum(_counts(counts.get("by_event_class")))
    if outcomes != attempts:
        out.append((path, f"receipt outcomes add up to {outcomes}, not to attempts {attempts}"))
    if classes != attempts:
        out.append((path, f"receipts by event class add up to {classes}, not to attempts {attempts}"))
    unresolved, ambiguous = doc.get("publish_ambiguous_unresolved"), by_outcome.get("PUBLISH_AMBIGUOUS")
    if isinstance(unresolved, int) and isinstance(ambiguous, int) and unresolved > ambiguous:
        out.append((path, f"{unresolved} unresolved PUBLISH_AMBIGUOUS but only {ambiguous} PUBLISH_AMBIGUOUS receipts"))
    admitted = by_outcome.get("ADMIT")
    if doc.get("gate") == "PASS" and not (isinstance(admitted, int) and admitted > 0 and unresolved == 0):
        out.append((path, f"gate PASS needs ADMIT > 0 and no unresolved PUBLISH_AMBIGUOUS (ADMIT {admitted}, unresolved {unresolved})"))
    return out


def quarantine_summary(path: str, doc: dict[str, Any], _: Documents, __: Registry) -> list[Finding]:
    """The total is the sum of the reasons."""
    counts = doc.get("counts") or {}
    reasons = sum(_counts(counts.get("by_reason")))
    return [] if reasons == counts.get("total") else [(path, f"quarantine reasons add up to {reasons}, not to total {counts.get('total')}")]


def offsets(path: str, doc: dict[str, Any], _: Documents, __: Registry) -> list[Finding]:
    """Each range starts at or before its end, one kind of offset, each partition once."""
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    kinds = set()
    for r in doc.get("offset_ranges") or []:
        where = f"{r.get('topic')}[{r.get('partition')}]"
        start, end = _int(r.get("start_offset")), _int(r.get("end_offset"))
        if start is None or end is None:
            out.append((path, f"{where}: offsets {r.get('start_offset')!r}..{r.get('end_offset')!r} are not numbers"))
        elif start > end:
            out.append((path, f"{where}: range starts at {start} after its end {end}"))
        key = (str(r.get("topic")), str(r.get("partition")))
        if key in seen:
            out.append((path, f"{where} appears twice"))
        seen.add(key)
        if r.get("offset_kind"):
            kinds.add(r["offset_kind"])
    if len(kinds) > 1:
        out.append((path, f"mixes offset kinds {sorted(kinds)}"))
    empty = {(str(e.get("topic")), str(e.get("partition"))) for e in doc.get("empty_partitions") or [] if isinstance(e, dict)}
    for topic, partition in sorted(empty & seen):
        out.append((path, f"{topic}[{partition}] is listed both empty and with a range"))
    return out


def wsp_summary(path: str, doc: dict[str, Any], documents: Documents, registry: Registry) -> list[Finding]:
    """Totals are the sums of the outputs; a bounded run streamed its gate per output."""
    out: list[Finding] = []
    per_output = [o for o in doc.get("per_output") or [] if isinstance(o, dict)]
    totals = doc.get("totals") or {}
    for name in ("sends", "retries", "failures", "emitted"):
        if name in totals:
            total = sum(o.get(name, 0) for o in per_output if isinstance(o.get(name, 0), int))
            if total != totals.get(name):
                out.append((path, f"totals.{name} is {totals.get(name)}, the outputs add up to {total}"))
    ids = [o.get("output_id") for o in per_output]
    if len(set(ids)) != len(ids):
        out.append((path, "an output appears twice in per_output"))
    gate = pinned_gate(documents, registry)
    rows = _sorted_rows(documents, registry)
    if doc.get("status", "COMPLETED") == "COMPLETED":
        for o in per_output:
            emitted, available = o.get("emitted"), rows.get(str(o.get("output_id")))
            expected = min(gate, available) if gate is not None and available is not None else gate if gate is not None else available
            if expected is not None and emitted != expected:
                what = f"the pinned gate {gate}" if gate is not None else "its stream view"
                out.append((path, f"{o.get('output_id')} emitted {emitted}, but {what} makes it {expected}"
                                  + (f" ({available} rows in its view)" if available is not None and gate is not None else "")))
    start = documents.get(registry.text("WSP_START_PATH_PATTERN"))
    if start is not None:
        if gate is not None and start.get("max_events_per_output") != gate:
            out.append((registry.text("WSP_START_PATH_PATTERN"),
                        f"max_events_per_output {start.get('max_events_per_output')} is not the pinned gate {gate}"))
        if sorted(map(str, start.get("outputs") or [])) != sorted(map(str, ids)):
            out.append((path, f"outputs {sorted(map(str, ids))} are not the ones wsp_start announced {sorted(start.get('outputs') or [])}"))
    receipts = documents.get(registry.text("RECEIPT_SUMMARY_PATH_PATTERN"))
    emitted_total = sum(o.get("emitted", 0) for o in per_output if isinstance(o.get("emitted", 0), int))
    if receipts is not None and isinstance(receipts.get("attempts"), int) and receipts["attempts"] < emitted_total:
        out.append((registry.text("RECEIPT_SUMMARY_PATH_PATTERN"),
                    f"attempts {receipts['attempts']} is below the {emitted_total} events WSP emitted (each has a receipt)"))
    return out


def stream_sort_summary(path: str, doc: dict[str, Any], documents: Documents, registry: Registry) -> list[Finding]:
    """all_pass says whether every output passed; the checker's outputs are the sorted ones."""
    out: list[Finding] = []
    outputs = [o for o in doc.get("outputs") or [] if isinstance(o, dict)]
    passed = all(o.get("status") in ("PASS", "SKIPPED_VALID_RECEIPT") for o in outputs)
    if doc.get("all_pass") is not passed:
        out.append((path, f"all_pass is {doc.get('all_pass')} but the outputs say {passed}"))
    checker = documents.get(registry.text("CHECKER_PASS_PATH_PATTERN"))
    if checker is not None:
        sorted_rows = {str(o.get("output_id")): o.get("rows") for o in outputs}
        for o in checker.get("outputs") or []:
            if not isinstance(o, dict):
                continue
            oid = str(o.get("output_id"))
            if oid not in sorted_rows:
                out.append((registry.text("CHECKER_PASS_PATH_PATTERN"), f"{oid} was checked but never stream-sorted"))
            elif o.get("rows") is not None and sorted_rows[oid] is not None and o.get("rows") != sorted_rows[oid]:
                out.append((registry.text("CHECKER_PASS_PATH_PATTERN"),
                            f"{oid}: checker counted {o.get('rows')} rows, the stream sort {sorted_rows[oid]}"))
    return out


def ready_publish_receipt(path: str, doc: dict[str, Any], documents: Documents, registry: Registry) -> list[Finding]:
    """SR's PASS points at the READY this receipt records; WSP started from that READY."""
    out: list[Finding] = []
    where = {k: str(doc.get(k)) for k in ("topic", "partition", "offset")}
    sr = documents.get(registry.text("SR_PASS_PATH_PATTERN"))
    if sr is not None and isinstance(sr.get("ready_eb_ref"), dict):
        ref = {k: str(sr["ready_eb_ref"].get(k)) for k in where}
        if ref != where:
            out.append((registry.text("SR_PASS_PATH_PATTERN"), f"ready_eb_ref {ref} is not the published READY {where}"))
    return out


def run_completed(path: str, doc: dict[str, Any], documents: Documents, registry: Registry) -> list[Finding]:
    """It names the gate the run pinned; SPINE_GREEN needs every condition of seed 001 section 11.1
    to hold and, for a bounded run (the seed's 200-event baseline), WSP to have emitted exactly the
    gate for every output; the closure files it pins are unchanged."""
    out: list[Finding] = []
    gate = pinned_gate(documents, registry)
    if doc.get("bounded_gate") != gate and registry.text("EVIDENCE_RUN_JSON_KEY") in documents:
        out.append((path, f"bounded_gate {doc.get('bounded_gate')} is not the pinned gate {gate}"))
    if doc.get("status") == "SPINE_GREEN" and gate is not None:
        wsp = documents.get(registry.text("WSP_SUMMARY_PATH_PATTERN")) or {}
        short = [f"{o.get('output_id')} emitted {o.get('emitted')}" for o in wsp.get("per_output") or []
                 if isinstance(o, dict) and o.get("emitted") != gate]
        if not wsp.get("per_output") or short:
            out.append((path, f"claims SPINE_GREEN for a run bounded at {gate} per output, but WSP "
                              f"{'; '.join(short) if short else 'summary is missing'}"))
    failed = [str(c.get("name")) for c in doc.get("conditions") or [] if isinstance(c, dict) and c.get("ok") is not True]
    if doc.get("status") == "SPINE_GREEN" and failed:
        out.append((path, f"claims SPINE_GREEN with failed condition(s): {', '.join(failed)}"))
    for entry in doc.get("closure_files") or []:
        pinned = documents.get(str(entry.get("path"))) if isinstance(entry, dict) else None
        if pinned is not None and sha256_hex(encode(pinned)) != entry.get("sha256"):
            out.append((str(entry.get("path")), f"changed after {path} pinned its sha256"))
    return out


def _failed_list(path: str, doc: dict[str, Any], items: str, name: str, listed: str) -> list[Finding]:
    """`status` is PASS exactly when every item is ok, and `listed` names exactly the failed ones."""
    out: list[Finding] = []
    entries = [i for i in doc.get(items) or [] if isinstance(i, dict)]
    failed = [str(i.get(name)) for i in entries if i.get("ok") is not True]
    if (doc.get("status") == "PASS") != (not failed):
        out.append((path, f"status {doc.get('status')} but failed {items}: {', '.join(failed) or 'none'}"))
    if sorted(map(str, doc.get(listed) or [])) != sorted(failed):
        out.append((path, f"{listed} {doc.get(listed)} are not the failed {items} {failed}"))
    return out


def reconciliation(path: str, doc: dict[str, Any], _: Documents, __: Registry) -> list[Finding]:
    """Each hop's arithmetic: the terms add up to observed, difference = intended - observed, it
    holds when that is 0, it is ok when it holds or its explanation accounts for the difference;
    the status and failed_hops follow from the hops; each hop is named once."""
    out: list[Finding] = []
    names = [str(h.get("hop")) for h in doc.get("hops") or [] if isinstance(h, dict)]
    if len(set(names)) != len(names):
        out.append((path, "a hop appears twice"))
    for h in doc.get("hops") or []:
        if not isinstance(h, dict):
            continue
        where = f"hop {h.get('hop')}"
        intended, observed = h.get("intended"), h.get("observed")
        if not (isinstance(intended, int) and isinstance(observed, int)):
            continue
        terms = sum(_counts(h.get("terms")))
        if h.get("terms") and terms != observed:
            out.append((path, f"{where}: terms add up to {terms}, not to observed {observed}"))
        if h.get("difference") != intended - observed:
            out.append((path, f"{where}: difference {h.get('difference')} is not intended {intended} - observed {observed}"))
        if h.get("holds") is not (intended == observed):
            out.append((path, f"{where}: holds is {h.get('holds')} for intended {intended}, observed {observed}"))
        explanation = h.get("explanation") if isinstance(h.get("explanation"), dict) else None
        ok = intended == observed or (explanation is not None and explanation.get("accounts_for") == intended - observed)
        if h.get("ok") is not ok:
            out.append((path, f"{where}: ok is {h.get('ok')} but the hop {'reconciles' if ok else 'does not reconcile'}"))
    return out + _failed_list(path, doc, "hops", "hop", "failed_hops")


def environment_conformance(path: str, doc: dict[str, Any], _: Documents, __: Registry) -> list[Finding]:
    """PASS exactly when every check is ok; failed_checks names the others (the local copy, which
    has no failed_checks of its own obligation, is held to the status rule only)."""
    if "failed_checks" not in doc:
        failed = [c for c in doc.get("checks") or [] if isinstance(c, dict) and c.get("ok") is not True]
        if (doc.get("status") == "PASS") == (not failed):
            return []
        return [(path, f"status {doc.get('status')} with {len(failed)} failed check(s)")]
    return _failed_list(path, doc, "checks", "name", "failed_checks")


def anomaly_summary(path: str, doc: dict[str, Any], _: Documents, __: Registry) -> list[Finding]:
    """counts.total is the sum of the kinds; each listed anomaly matches its kind's count."""
    out: list[Finding] = []
    counts = doc.get("counts") or {}
    kinds = {k: v for k, v in counts.items() if k != "total" and isinstance(v, int)}
    if sum(kinds.values()) != counts.get("total"):
        out.append((path, f"anomaly kinds add up to {sum(kinds.values())}, not to total {counts.get('total')}"))
    listed: dict[str, int] = {}
    for a in doc.get("anomalies") or []:
        if isinstance(a, dict) and isinstance(a.get("count"), int):
            listed[str(a.get("kind"))] = listed.get(str(a.get("kind")), 0) + a["count"]
    for kind, count in sorted(listed.items()):
        if kinds.get(kind) != count:
            out.append((path, f"{kind}: the anomalies listed add up to {count}, counts say {kinds.get(kind)}"))
    return out


def replay_anchors(path: str, doc: dict[str, Any], documents: Documents, registry: Registry) -> list[Finding]:
    """Ranges well formed, every topic listed has a range, and every range of the P7 and P8
    snapshots appears unchanged among the anchors."""
    out = offsets(path, doc, documents, registry)
    anchors = {(str(r.get("topic")), str(r.get("partition"))): (str(r.get("start_offset")), str(r.get("end_offset")))
               for r in doc.get("offset_ranges") or [] if isinstance(r, dict)}
    missing_topics = sorted(set(map(str, doc.get("topics") or [])) - {t for t, _ in anchors})
    if missing_topics:
        out.append((path, f"topics without a range: {', '.join(missing_topics)}"))
    snapshots = [(registry.text("KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN"), "offset_ranges"),
                 (registry.text("OFFSETS_SNAPSHOT_PATH_PATTERN"), "partitions")]
    for snapshot_path, field_name in snapshots:
        snapshot = documents.get(snapshot_path)
        for r in (snapshot or {}).get(field_name) or []:
            if not isinstance(r, dict) or r.get("start_offset") is None or r.get("end_offset") is None:
                continue
            key = (str(r.get("topic")), str(r.get("partition")))
            want = (str(r.get("start_offset")), str(r.get("end_offset")))
            if anchors.get(key) != want:
                out.append((path, f"{key[0]}[{key[1]}]: anchor {anchors.get(key)} is not the range {want} of {snapshot_path}"))
    return _unique_findings(out)


def decision_summary(path: str, doc: dict[str, Any], documents: Documents, registry: Registry) -> list[Finding]:
    """Outcomes and postures each add up to the decisions; all decided means as many decisions as
    admitted traffic events; latency p50 <= p99 <= max over at most every decision; the policy is
    the one run.json pinned."""
    out: list[Finding] = []
    counts = doc.get("counts") or {}
    decisions = counts.get("decisions")
    for name in ("by_outcome", "by_posture"):
        total = sum(_counts(counts.get(name)))
        if total != decisions:
            out.append((path, f"decisions {name} add up to {total}, not to decisions {decisions}"))
    degraded = counts.get("degraded")
    if isinstance(degraded, int) and isinstance(decisions, int) and degraded > decisions:
        out.append((path, f"{degraded} degraded decisions of only {decisions}"))
    if doc.get("all_admitted_decided") is True and decisions != counts.get("admitted_traffic_events"):
        out.append((path, f"all_admitted_decided with {decisions} decisions for {counts.get('admitted_traffic_events')} admitted"))
    latency = doc.get("latency_ms") or {}
    ordered = [latency.get(k) for k in ("admission_to_decision_p50", "admission_to_decision_p99", "admission_to_decision_max")]
    present = [v for v in ordered if isinstance(v, (int, float))]
    if present != sorted(present):
        out.append((path, f"latency p50/p99/max {ordered} are not in order"))
    samples = latency.get("samples")
    if isinstance(samples, int) and isinstance(decisions, int) and samples > decisions:
        out.append((path, f"{samples} latency samples of only {decisions} decisions"))
    run = documents.get(registry.text("EVIDENCE_RUN_JSON_KEY"))
    pinned = ((run or {}).get("config") or {}).get("policy") if isinstance(run, dict) else None
    if isinstance(pinned, dict) and (doc.get("policy") or {}).get("digest") != pinned.get("digest"):
        out.append((path, f"policy {(doc.get('policy') or {}).get('digest')} is not the one run.json pins ({pinned.get('digest')})"))
    return out


def action_summary(path: str, doc: dict[str, Any], _: Documents, __: Registry) -> list[Finding]:
    """Effects by action type add up to the outcomes; intake_equals_outcomes says what the counts say."""
    out: list[Finding] = []
    counts = doc.get("counts") or {}
    by_type = sum(_counts(counts.get("by_action_type")))
    if by_type != counts.get("outcomes"):
        out.append((path, f"effects by action type add up to {by_type}, not to outcomes {counts.get('outcomes')}"))
    if doc.get("intake_equals_outcomes") is not (counts.get("intents") == counts.get("outcomes")):
        out.append((path, f"intake_equals_outcomes {doc.get('intake_equals_outcomes')} but intents {counts.get('intents')},"
                          f" outcomes {counts.get('outcomes')}"))
    return out


def audit_summary(path: str, doc: dict[str, Any], documents: Documents, registry: Registry) -> list[Finding]:
    """Records are decisions + intents + outcomes, one slice per batch, the breaks add up to
    lineage_unresolved_total, a verified chain has no problem; DLA logged what DF decided and AL did."""
    out: list[Finding] = []
    counts = doc.get("counts") or {}
    kinds = sum(v for v in (counts.get(k) for k in ("decisions", "intents", "outcomes")) if isinstance(v, int))
    if kinds != counts.get("records"):
        out.append((path, f"decisions + intents + outcomes = {kinds}, not records {counts.get('records')}"))
    if len(doc.get("slices") or []) != counts.get("batches"):
        out.append((path, f"{len(doc.get('slices') or [])} slice(s) for {counts.get('batches')} batch(es)"))
    breaks = sum(_counts(doc.get("lineage_breaks")))
    if "lineage_breaks" in doc and breaks != doc.get("lineage_unresolved_total"):
        out.append((path, f"lineage breaks add up to {breaks}, not to lineage_unresolved_total {doc.get('lineage_unresolved_total')}"))
    chain = doc.get("chain") or {}
    if chain.get("verified") is True and chain.get("problems"):
        out.append((path, f"chain verified with {len(chain['problems'])} problem(s)"))
    decision = documents.get(registry.text("DECISION_LANE_EVIDENCE_PATH_PATTERN"))
    decided = ((decision or {}).get("counts") or {}).get("decisions")
    if isinstance(decided, int) and decided != counts.get("decisions"):
        out.append((path, f"{counts.get('decisions')} decision(s) logged, {decided} decided"))
    action = documents.get(registry.text("ACTION_SUMMARY_PATH_PATTERN"))
    acted = ((action or {}).get("counts") or {}).get("outcomes")
    if isinstance(acted, int) and acted != counts.get("outcomes"):
        out.append((path, f"{counts.get('outcomes')} outcome(s) logged, {acted} executed"))
    return out


def _unique_findings(findings: list[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))


def run_report(path: str, doc: dict[str, Any], documents: Documents, registry: Registry) -> list[Finding]:
    """The report's reconciliation summary is the reconciliation file's; its phases are listed once."""
    out: list[Finding] = []
    recon = documents.get(registry.text("RECONCILIATION_PATH_PATTERN"))
    summary: dict[str, Any] = doc["reconciliation"] if isinstance(doc.get("reconciliation"), dict) else {}
    if recon is not None and summary.get("status") != recon.get("status"):
        out.append((path, f"reconciliation status {summary.get('status')} is not {recon.get('status')} of the reconciliation file"))
    phases = [p.get("phase_id") for p in doc.get("phases") or [] if isinstance(p, dict)]
    if len(set(phases)) != len(phases):
        out.append((path, "a phase is listed twice"))
    return out


def pinned_gate(documents: Documents, registry: Registry) -> int | None:
    """The events-per-output gate run.json pinned (None: unbounded, or no run.json)."""
    run = documents.get(registry.text("EVIDENCE_RUN_JSON_KEY")) or {}
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    gate = config.get("gate_events_per_output") if config else None
    return gate if isinstance(gate, int) else None


def _sorted_rows(documents: Documents, registry: Registry) -> dict[str, int]:
    summary = documents.get(registry.text("STREAM_SORT_SUMMARY_PATH_PATTERN")) or {}
    return {str(o["output_id"]): o["rows"] for o in summary.get("outputs") or []
            if isinstance(o, dict) and isinstance(o.get("rows"), int) and "output_id" in o}


def phase_record(path: str, doc: dict[str, Any], documents: Documents, registry: Registry) -> list[Finding]:
    """PASS met every gate check, carries no error and ran under the gate the run pinned; FAIL
    names its code; it ended after it started."""
    out: list[Finding] = []
    state = doc.get("state")
    if state == "PASS":
        failed = [c.get("name") for c in doc.get("gate") or [] if isinstance(c, dict) and c.get("ok") is not True]
        if failed:
            out.append((path, f"claims PASS with failed gate check(s): {', '.join(map(str, failed))}"))
        if doc.get("error_code"):
            out.append((path, f"claims PASS with error_code {doc['error_code']}"))
    if state == "FAIL" and not doc.get("error_code"):
        out.append((path, "FAIL without an error_code"))
    started, ended = doc.get("started_at_utc"), doc.get("ended_at_utc")
    if isinstance(started, str) and isinstance(ended, str) and ended < started:
        out.append((path, f"ended {ended} before it started {started}"))
    listed = [e.get("path") for e in doc.get("evidence") or [] if isinstance(e, dict)]
    if len(set(listed)) != len(listed):
        out.append((path, "lists an evidence file twice"))
    gate = pinned_gate(documents, registry)
    if state == "PASS" and registry.text("EVIDENCE_RUN_JSON_KEY") in documents and doc.get("phase_id") in _PINNED_PHASES \
            and doc.get("bounded_gate") != gate:
        out.append((path, f"ran under bounded_gate {doc.get('bounded_gate')}, but the run pinned {gate}"))
    return out


#: Phases that run under run.json's pin (P1 writes it; P(-1), P0 and P12 are outside the run slice).
_PINNED_PHASES = frozenset({"P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11"})

#: What a PASS of a phase promises about its own evidence (beyond the file being there).
PASS_PROMISES: dict[str, Callable[[Documents, Registry], list[Finding]]] = {}


def _p3(documents: Documents, registry: Registry) -> list[Finding]:
    path = registry.text("STREAM_SORT_SUMMARY_PATH_PATTERN")
    doc = documents.get(path)
    return [] if doc is None or doc.get("all_pass") is True else [(path, "P3 claims PASS but the stream sort did not pass every output")]


def _p6(documents: Documents, registry: Registry) -> list[Finding]:
    path = registry.text("WSP_SUMMARY_PATH_PATTERN")
    doc = documents.get(path)
    if doc is None:
        return []
    out = []
    if doc.get("status", "COMPLETED") != "COMPLETED":
        out.append((path, f"P6 claims PASS but WSP ended {doc.get('status')}"))
    silent = [str(o.get("output_id")) for o in doc.get("per_output") or [] if isinstance(o, dict) and not o.get("emitted")]
    if silent:
        out.append((path, f"P6 claims PASS but these outputs emitted nothing: {', '.join(silent)}"))
    if (doc.get("totals") or {}).get("failures"):
        out.append((path, f"P6 claims PASS with {doc['totals']['failures']} send failure(s)"))
    return out


def _p7(documents: Documents, registry: Registry) -> list[Finding]:
    out: list[Finding] = []
    path = registry.text("RECEIPT_SUMMARY_PATH_PATTERN")
    doc = documents.get(path)
    if doc is not None and doc.get("gate") != "PASS":
        out.append((path, f"P7 claims PASS but the receipt summary's gate is {doc.get('gate')}"))
    snapshot = documents.get(registry.text("KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN"))
    if snapshot is not None and not snapshot.get("offset_ranges"):
        out.append((registry.text("KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN"), "P7 claims PASS but no topic holds records"))
    return out


PASS_PROMISES.update({"P3": _p3, "P6": _p6, "P7": _p7})

def _sum_is(out: list[Finding], path: str, mapping: Any, what: str, total: Any, total_name: str) -> None:
    """Append a finding when the integers of `mapping` do not add up to `total`."""
    added = sum(_counts(mapping))
    if isinstance(mapping, dict) and added != total:
        out.append((path, f"{what} add up to {added}, not to {total_name} {total}"))


def _dead_letters(out: list[Finding], path: str, doc: dict[str, Any]) -> None:
    dead = doc.get("dead_letters") if isinstance(doc.get("dead_letters"), dict) else None
    if dead is None:
        return
    _sum_is(out, path, dead.get("by_component"), "dead letters by component", dead.get("total"), "dead_letters.total")
    _sum_is(out, path, dead.get("by_code"), "dead letters by code", dead.get("total"), "dead_letters.total")
    if isinstance(dead.get("explained"), int) and isinstance(dead.get("total"), int) and dead["explained"] > dead["total"]:
        out.append((path, f"{dead['explained']} dead letters explained of {dead['total']}"))
    counted = (doc.get("counts") or {}).get("dead_letters")
    if isinstance(counted, int) and counted != dead.get("total"):
        out.append((path, f"counts.dead_letters {counted} is not dead_letters.total {dead.get('total')}"))


def case_summary(path: str, doc: dict[str, Any], _: Documents, __: Registry) -> list[Finding]:
    """Cases by status and by queue add up to the cases, closed ones by outcome to the closed; timeline
    rows by kind add up to the rows appended, one case_opened per case, one evidence_attached per
    trigger processed; triggers processed <= published; the exemplars are the first min(20, cases)."""
    out: list[Finding] = []
    counts = doc.get("counts") or {}
    cases, processed, published = counts.get("cases"), counts.get("triggers_processed"), counts.get("triggers_published")
    _sum_is(out, path, doc.get("cases_by_status"), "cases by status", cases, "cases")
    _sum_is(out, path, doc.get("cases_by_queue"), "cases by queue", cases, "cases")
    _sum_is(out, path, doc.get("cases_by_outcome"), "closed cases by outcome", (doc.get("cases_by_status") or {}).get("closed"),
            "closed cases")
    kinds = doc.get("timeline_events_by_kind") or {}
    _sum_is(out, path, kinds, "timeline events by kind", counts.get("timeline_events_appended"), "timeline_events_appended")
    if isinstance(kinds, dict) and kinds.get("case_opened", cases) != cases:
        out.append((path, f"{kinds.get('case_opened')} case_opened events for {cases} cases"))
    if isinstance(kinds, dict) and kinds.get("evidence_attached", processed) != processed:
        out.append((path, f"{kinds.get('evidence_attached')} evidence_attached events for {processed} triggers processed"))
    if isinstance(processed, int) and isinstance(published, int) and processed > published:
        out.append((path, f"{processed} triggers processed but only {published} published"))
    if isinstance(cases, int) and isinstance(processed, int) and cases > processed:
        out.append((path, f"{cases} cases from {processed} triggers (every case is opened by a trigger)"))
    exemplars = doc.get("exemplar_case_ids") or []
    if isinstance(cases, int) and len(exemplars) != min(20, cases):
        out.append((path, f"{len(exemplars)} exemplar case ids for {cases} cases (expected {min(20, cases)})"))
    _dead_letters(out, path, doc)
    return out


def label_summary(path: str, doc: dict[str, Any], _: Documents, __: Registry) -> list[Finding]:
    """Assertions by source and by label each add up to the assertions appended; subjects <= assertions;
    the as-of range is ordered, null exactly when there is no assertion, and ends at as_of_utc."""
    out: list[Finding] = []
    counts = doc.get("counts") or {}
    appended = counts.get("assertions_appended")
    _sum_is(out, path, doc.get("assertions_by_source"), "assertions by source", appended, "assertions_appended")
    _sum_is(out, path, doc.get("assertions_by_label"), "assertions by label", appended, "assertions_appended")
    if isinstance(counts.get("subjects"), int) and isinstance(appended, int) and counts["subjects"] > appended:
        out.append((path, f"{counts['subjects']} subjects from {appended} assertions"))
    span = doc.get("as_of_range") or {}
    first, last = span.get("first_observed_utc"), span.get("last_observed_utc")
    if isinstance(appended, int) and (first is None or last is None) != (appended == 0):
        out.append((path, f"as_of_range {first}..{last} for {appended} assertions"))
    if isinstance(first, str) and isinstance(last, str) and last < first:
        out.append((path, f"as_of_range ends {last} before it starts {first}"))
    if "as_of_utc" in doc and doc.get("as_of_utc") != last:
        out.append((path, f"as_of_utc {doc.get('as_of_utc')} is not the last observed time {last}"))
    _dead_letters(out, path, doc)
    return out


def _p10(documents: Documents, registry: Registry) -> list[Finding]:
    """P10 passed: triggers, a case for each triggered subject, labels, GREEN, dead letters explained."""
    out: list[Finding] = []
    for key, health_of in (("CASE_EVIDENCE_PATH_PATTERN", "case_trigger and cm"), ("LABEL_EVIDENCE_PATH_PATTERN", "ls")):
        path = registry.text(key)
        doc = documents.get(path)
        if doc is None:
            continue
        if doc.get("health") != "GREEN":
            out.append((path, f"P10 claims PASS with {health_of} {doc.get('health')}"))
        dead = doc.get("dead_letters") or {}
        if dead.get("total") != dead.get("explained"):
            out.append((path, f"P10 claims PASS with {dead.get('total')} dead letters, {dead.get('explained')} explained"))
        counts = doc.get("counts") or {}
        if key == "CASE_EVIDENCE_PATH_PATTERN":
            if not counts.get("triggers_published") or doc.get("cases_missing") or doc.get("triggers_unattached") \
                    or counts.get("triggers_processed") != counts.get("triggers_published"):
                out.append((path, f"P10 claims PASS with triggers {counts.get('triggers_published')}, processed "
                                  f"{counts.get('triggers_processed')}, cases missing {doc.get('cases_missing')}"))
        elif not counts.get("assertions_appended"):
            out.append((path, "P10 claims PASS without a label assertion"))
    return out


PASS_PROMISES["P10"] = _p10

#: Per catalogue schema: the checks of that file's own promises.
FILE_PROMISES: dict[str, Callable[[str, dict[str, Any], Documents, Registry], list[Finding]]] = {
    "receipt_summary": receipt_summary,
    "quarantine_summary": quarantine_summary,
    "kafka_offsets_snapshot": offsets,
    "offsets_snapshot": offsets,
    "wsp_summary": wsp_summary,
    "stream_sort_summary": stream_sort_summary,
    "ready_publish_receipt": ready_publish_receipt,
    "run_completed": run_completed,
    "reconciliation": reconciliation,
    "environment_conformance": environment_conformance,
    "anomaly_summary": anomaly_summary,
    "replay_anchors": replay_anchors,
    "run_report": run_report,
    "decision_summary": decision_summary,
    "action_summary": action_summary,
    "audit_summary": audit_summary,
    "case_summary": case_summary,
    "label_summary": label_summary,
}
