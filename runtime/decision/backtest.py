"""Backtest: a run's archived traffic decided again through the same DF code with a candidate policy.

The RTDL archive (runtime/rtdl/archive) holds every admitted record of the run; they are read
back as the rebuild reads them (`index_rows`, `read_records`, the worker's `decode`), put in the
total order and decided by `df.replay.decide_stream` - the in-memory path whose inputs and
decisions a test proves equal to the live DF's stores - once with the live (pinned) bundle and
once with the candidate (loaded with `check_pin=False`: a bundle under review has no pin yet).
Each event is decided under the posture the live run recorded for it. No action is taken and
nothing is written to the lane's tables.

The comparison holds:
- `live_reproduced`: the live bundle's backtest against the decisions DF stored (cores and
  digest); a live decision taken under a degrade reason (an input late) is listed apart, since
  the backtest always has the complete point-in-time inputs;
- `changed`: events whose outcome differs between the live and the candidate bundle, by
  transition (`REVIEW->DECLINE`: n);
- `quality`: live and candidate scored against the oracle's truth (`runtime.obs.quality.score`).
  Like the reporter, the backtest may read truth; DF never does, and the truth is joined only
  after every decision is taken.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime.bus.port import BusRecord
from runtime.contracts.probes import is_ingest_probe
from runtime.decision.bundle import Policy, load_policy
from runtime.decision.df.domain import DecisionRecord, decision_digest
from runtime.decision.df.replay import decide_stream, stream_order
from runtime.errors import PermanentError
from runtime.obs.quality import Decision, EventTruth, FlowTruth, score
from runtime.rtdl.archive.store import index_rows, read_records
from runtime.rtdl.events import TRAFFIC_CLASSES
from runtime.store.port import ObjectStore
from runtime.worker.records import decode

#: The oracle outputs the backtest scores against (never read by DF).
EVENT_TRUTH = "s4_event_labels_6B"
FLOW_TRUTH = "s4_flow_truth_labels_6B"


class BacktestArchiveEmpty(PermanentError):
    """The run has no archived records to replay."""

    code = "BACKTEST_ARCHIVE_EMPTY"
    next_step = "backtest a run whose rtdl_core pack archived its topics (P8 passed); `fp status` shows the runs"


@dataclass(frozen=True)
class Backtest:
    """The decisions of one bundle over a run's archived traffic (keyed by (event_class, event_id))."""

    policy_id: str
    policy_version: int
    policy_digest: str
    decisions: dict[tuple[str, str], DecisionRecord]

    @property
    def digest(self) -> str:
        """The decision digest of these decisions (as `df.store.run_decision_digest` of a live run)."""
        return decision_digest(d.canonical() for d in self.decisions.values())


def archived_envelopes(conn: Any, object_store: ObjectStore, platform_run_id: str, topics: list[str]) -> Iterator[dict[str, Any]]:
    """The run's archived envelopes of `topics` one at a time, in index order (ingest probes left
    out, as DF skips them): a reader that keeps a few fields of each never holds the whole archive."""
    rows = index_rows(conn, platform_run_id, topics)
    if not rows:
        raise BacktestArchiveEmpty(f"run {platform_run_id} has no archived batches of {', '.join(topics)}")
    for archived in read_records(object_store, rows):
        record = decode(BusRecord(archived.eb_ref, archived.key, archived.value))
        if record.envelope.get("platform_run_id") == platform_run_id and not is_ingest_probe(record.envelope):
            yield record.envelope


def archived_stream(conn: Any, object_store: ObjectStore, platform_run_id: str, topics: list[str]) -> list[dict[str, Any]]:
    """The run's archived envelopes of `topics` in the total order (ingest probes left out, as DF skips them)."""
    return stream_order(list(archived_envelopes(conn, object_store, platform_run_id, topics)))


def backtest(envelopes: list[dict[str, Any]], policy: Policy, postures: Mapping[tuple[str, str], str],
             default_posture: str = "GREEN") -> Backtest:
    """Decide every traffic event of the ordered stream with `policy` under the live posture of each event."""
    decisions = {}
    for _, _, record in decide_stream(envelopes, policy, pinned_digest=policy.digest,
                                             posture_of=lambda e: postures.get((e["event_class"], e["event_id"]),
                                                                               default_posture)):
        decisions[(record.event_class, record.event_id)] = record
    return Backtest(policy.policy_id, policy.version, policy.digest, decisions)


def reproduction(live: Mapping[tuple[str, str], Mapping[str, Any]], replayed: Backtest) -> dict[str, Any]:
    """The live bundle's backtest against the stored live decisions: equal cores, differences, digests."""
    from runtime.decision.df.handler import record_of

    equal, differing, degraded, missing = 0, [], [], sorted(set(live) - set(replayed.decisions))
    for key, stored in sorted(live.items()):
        again = replayed.decisions.get(key)
        if again is None:
            continue
        if record_of(stored).core() == again.core():
            equal += 1
        elif stored.get("degrade_reasons"):
            degraded.append(key[1])
        else:
            differing.append(key[1])
    return {"live_decisions": len(live), "backtest_decisions": len(replayed.decisions), "identical": equal,
            "differing": len(differing), "differing_event_ids": differing[:20],
            "differing_live_degraded": len(degraded), "not_in_archive": len(missing),
            "live_digest": decision_digest(live.values()), "backtest_digest": replayed.digest,
            "exact": not differing and not degraded and not missing and len(live) == len(replayed.decisions)}


def changes(before: Backtest, after: Backtest) -> dict[str, Any]:
    """Events whose outcome differs between two bundles, by transition."""
    transitions: Counter[str] = Counter()
    for key, record in before.decisions.items():
        other = after.decisions.get(key)
        if other is not None and other.outcome != record.outcome:
            transitions[f"{record.outcome}->{other.outcome}"] += 1
    return {"events": len(before.decisions), "changed": sum(transitions.values()),
            "by_transition": dict(sorted(transitions.items())),
            "outcomes_before": dict(sorted(Counter(d.outcome for d in before.decisions.values()).items())),
            "outcomes_after": dict(sorted(Counter(d.outcome for d in after.decisions.values()).items()))}


def _utc(value: Any) -> datetime:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def quality_of(records: Iterable[Mapping[str, Any]], traffic: Mapping[str, Mapping[str, Any]],
               events: list[EventTruth], flows: list[FlowTruth]) -> dict[str, Any]:
    """`obs.quality.score` of decision records (canonical form), amounts and times from their traffic payloads."""
    decisions = []
    for r in records:
        payload = traffic.get(str(r["event_id"]), {})
        decisions.append(Decision(str(r["event_id"]), str(r["subject"].get("flow_id", "")), str(r["subject"].get("card_id", "")),
                                  str(r["outcome"]), str(r["posture"]), float(payload.get("amount", 0.0)),
                                  _utc(r["event_ts_utc"]), float(r["score"])))
    return score(decisions, events, flows)


def truth_of(object_store: ObjectStore, layout: Any, traffic: Mapping[str, Mapping[str, Any]]) -> tuple[list[EventTruth], list[FlowTruth]]:
    """The oracle's labels of the run's admitted traffic events (joined on flow id and event seq) and of their flows."""
    import io

    import pyarrow.parquet as pq

    from runtime.oracle.pack import read_sealed_manifest

    _, manifest = read_sealed_manifest(object_store, layout)

    def rows(output: str, columns: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for entry in manifest.get("outputs", {}).get(output, []):
            if str(entry["key"]).endswith(".parquet"):
                out += pq.read_table(io.BytesIO(object_store.get(entry["key"])), columns=columns).to_pylist()
        return out

    by_seq = {(str(p.get("flow_id")), int(p.get("event_seq", -1))): (event_id, p) for event_id, p in traffic.items()}
    events = []
    for row in rows(EVENT_TRUTH, ["flow_id", "event_seq", "ts_utc", "is_fraud", "fraud_pattern"]):
        hit = by_seq.get((str(row["flow_id"]), int(row["event_seq"])))
        if hit is not None:
            event_id, p = hit
            events.append(EventTruth(event_id, str(row["flow_id"]), str(p.get("card_id", "")), float(p.get("amount", 0.0)),
                                     _utc(row["ts_utc"]), bool(row["is_fraud"]), str(row["fraud_pattern"])))
    scoped = {e.flow_id for e in events}
    flows = [FlowTruth(str(r["flow_id"]), bool(r["is_fraud"]), str(r["fraud_pattern"]))
             for r in rows(FLOW_TRUTH, ["flow_id", "is_fraud", "fraud_pattern"]) if str(r["flow_id"]) in scoped]
    return events, flows


def run_backtest(conn: Any, archive: ObjectStore, oracle: ObjectStore | None, layout: Any, platform_run_id: str,
                 topics: list[str], candidate: Policy, *, live_policy: Policy | None = None) -> dict[str, Any]:
    """The whole comparison document of a run: reproduction of the live decisions, changes, quality."""
    from runtime.decision.df.store import run_decision_records

    live_policy = live_policy or load_policy()
    envelopes = archived_stream(conn, archive, platform_run_id, topics)
    stored = {(str(r["event_class"]), str(r["event_id"])): r for r in run_decision_records(conn, platform_run_id)}
    postures = {k: str(r["posture"]) for k, r in stored.items()}
    live = backtest(envelopes, live_policy, postures)
    cand = live if candidate.digest == live_policy.digest else backtest(envelopes, candidate, postures)
    traffic = {str(e["event_id"]): dict(e["payload"]) for e in envelopes if e["event_class"] in TRAFFIC_CLASSES}
    doc: dict[str, Any] = {
        "platform_run_id": platform_run_id,
        "live_policy": {"policy_id": live.policy_id, "version": live.policy_version, "digest": live.policy_digest},
        "candidate_policy": {"policy_id": cand.policy_id, "version": cand.policy_version, "digest": cand.policy_digest},
        "archived_records": len(envelopes), "traffic_events": len(traffic),
        "live_reproduced": reproduction(stored, live),
        "changed": changes(live, cand),
        "candidate_digest": cand.digest,
        "actions_taken": 0,
    }
    if oracle is not None:
        events, flows = truth_of(oracle, layout, traffic)
        doc["quality"] = {"truth_events": len(events),
                          "live": quality_of(stored.values(), traffic, events, flows),
                          "candidate": quality_of((d.canonical() for d in cand.decisions.values()), traffic, events, flows)}
    return doc


def summary_lines(doc: Mapping[str, Any]) -> list[str]:
    """The operator's few lines of a comparison document."""
    rep, ch = doc["live_reproduced"], doc["changed"]
    lines = [f"backtest of {doc['platform_run_id']}: {doc['traffic_events']} traffic events from {doc['archived_records']} "
             f"archived records; no action taken",
             f"live policy {doc['live_policy']['version']} reproduces the live decisions: {rep['exact']} "
             f"({rep['identical']} identical, {rep['differing']} differing, {rep['differing_live_degraded']} live-degraded)",
             f"candidate {doc['candidate_policy']['version']} ({doc['candidate_policy']['digest'][:12]}): {ch['changed']} "
             f"decision(s) changed {ch['by_transition']}"]
    for name in ("live", "candidate"):
        q = doc.get("quality", {}).get(name)
        if q:
            f = q["flow"]
            lines.append(f"{name:9s} flow precision {f.get('precision')} recall {f.get('recall')} "
                         f"alert rate {f.get('alert_rate')}")
    return lines


def write_report(doc: Mapping[str, Any], path: Path) -> Path:
    """Write the comparison as canonical JSON (the operator keeps it beside the candidate)."""
    from runtime.contracts.canonical import canonical_json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(canonical_json(dict(doc)))
    return path
