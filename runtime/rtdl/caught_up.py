"""P8 evidence: the RTDL core has caught up with what P7 committed, read from durable state only.

For every partition holding records of the run (IG's admissions, bounded by P7's end offsets) of
a component's input topics, each rtdl_core consumer group's durable position (worker_positions, written in the transaction of the
state) must reach the run's last record (lag <= RTDL_CAUGHT_UP_LAG_MAX); every component's health
must be GREEN and its dead letters 0. Then `rtdl_core/offsets_snapshot.json` and
`rtdl_core/caught_up.json` (with the state digest over the OFP, IEG and CSFB stores) are written.
A component whose store is not in this build fails closed naming it: no PASS-looking file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from runtime.components import consumer_group_id
from runtime.contracts.ids import utc_iso
from runtime.errors import ObjectMissing, PermanentError, PlatformError
from runtime.evidence.gate_wait import LOOK_DUTY, StallBound
from runtime.evidence.writer import EvidenceWriter, WrittenEvidence, run_bundle
from runtime.ig.store import run_last_offsets
from runtime.pacing import pause_after
from runtime.rtdl.digest import rows_digest
from runtime.settings import Settings
from runtime.worker.run import build_handler, component_dir, import_built
from runtime.worker.store import group_positions

#: Digest section -> the store module exposing `state_rows(conn, platform_run_id)`.
STATE_STORES: dict[str, str] = {"ofp": "runtime.rtdl.ofp.store", "ieg": "runtime.rtdl.ieg.store",
                                "csfb": "runtime.rtdl.csfb.store"}

Progress = Callable[[str], None]


class RtdlNotCaughtUp(PlatformError):
    """The RTDL core did not reach P7's end offsets (or is unhealthy) within the wait."""

    code = "RTDL_NOT_CAUGHT_UP"
    next_step = "read the rtdl_core pack logs and `fp status` (component health), then rerun P8 (--from P8)"


class RtdlStateMissing(PermanentError):
    """A component's store is not in this build: there is no state to digest."""

    code = "RTDL_STATE_MISSING"
    next_step = "install a build with the OFP, IEG and CSFB stores, or run a slice that stops before P8 (--to P7)"


@dataclass(frozen=True)
class Target:
    """One partition to cover: the run's last record on it, and P7's range."""

    topic: str
    partition: str
    start: int
    end: int


@dataclass
class Observation:
    """What the durable state says at one moment."""

    positions: dict[str, dict[tuple[str, str], int]]
    dead_letters: dict[str, int]
    health: dict[str, dict[str, Any] | None]
    lag_max_allowed: int
    targets: list[Target]
    #: Kafka offsets count records; Kinesis sequences only order them (lag is then 0 or 1).
    counts_records: bool = True
    #: group -> the topics its component reads (a group covers only partitions of those).
    topics: dict[str, set[str]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def mark(self) -> tuple[int, int]:
        """What the groups have done so far (positions only grow), for the gate's stall bound; the
        run's last offsets too (they grow while the plane's producers still publish)."""
        return (sum(p for group in self.positions.values() for p in group.values()), sum(t.end for t in self.targets))

    def covered(self, group: str) -> list[Target]:
        """The partitions `group` must cover: those of its input topics holding records of the run."""
        topics = self.topics.get(group)
        return [t for t in self.targets if topics is None or t.topic in topics]

    def lag(self, group: str, target: Target) -> int:
        """Records of the run on the partition the group has not made durable yet."""
        position = self.positions.get(group, {}).get((target.topic, target.partition))
        if not self.counts_records:
            return int(position is None or target.end > position)
        if position is None:
            return target.end - target.start + 1
        return max(0, target.end - position)

    def judge(self, groups: dict[str, str]) -> bool:
        """Caught up, GREEN and without dead letters; the reasons say why not."""
        reasons = []
        for component, group in groups.items():
            lag = sum(self.lag(group, t) for t in self.covered(group))
            if any(self.lag(group, t) > self.lag_max_allowed for t in self.covered(group)):
                reasons.append(f"{component}: lag {lag} record(s) above RTDL_CAUGHT_UP_LAG_MAX={self.lag_max_allowed}")
            doc = self.health.get(component)
            state = doc.get("health_state") if doc else "MISSING"
            if state != "GREEN":
                why = "; ".join(doc.get("reasons", [])) if doc else "no last_health.json"
                reasons.append(f"{component}: health {state} ({why})"[:300])
            if self.dead_letters.get(component):
                reasons.append(f"{component}: {self.dead_letters[component]} dead letter(s) (worker_dead_letters)")
        self.reasons = reasons
        return not reasons


def rtdl_components(settings: Settings) -> list[str]:
    """The members of the rtdl_core pack (registry PACKS)."""
    return list(settings.registry.mapping("PACKS")["rtdl_core"])


def targets(p7_snapshot: dict[str, Any], run_last: dict[tuple[str, str], int]) -> list[Target]:
    """Partitions holding records of the run: the run's last admitted record on each, bounded by P7's end."""
    out = []
    for r in p7_snapshot.get("offset_ranges", []):
        key = (str(r["topic"]), str(r["partition"]))
        if key not in run_last:
            continue
        end = min(int(r["end_offset"]), run_last[key])
        out.append(Target(key[0], key[1], int(r["start_offset"]), end))
    return sorted(out, key=lambda t: (t.topic, t.partition))


def state_rows_of(section: str) -> Callable[[Any, str], Iterable[dict[str, Any]]]:
    """The store's `state_rows(conn, platform_run_id)`; RTDL_STATE_MISSING names a missing one."""
    module_name = STATE_STORES[section]
    module = import_built(module_name, RtdlStateMissing, f"{section} (no state digest without it)")
    rows = getattr(module, "state_rows", None)
    if rows is None:
        raise RtdlStateMissing(f"{section}: {module_name} has no state_rows(conn, platform_run_id)")
    reader: Callable[[Any, str], Iterable[dict[str, Any]]] = rows
    return reader


def read_health(settings: Settings, platform_run_id: str, component: str) -> dict[str, Any] | None:
    """The component's last_health.json under the run's evidence prefix, or None."""
    registry = settings.registry
    key = (registry.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=platform_run_id)
           + registry.render("COMPONENT_HEALTH_PATH_PATTERN", component_dir=component_dir(component)))
    try:
        return dict(json.loads(settings.bucket("S3_EVIDENCE_BUCKET").get(key)))
    except ObjectMissing:  # one GET, not a HEAD first: DL reads three of these every tick
        return None


def input_topics(settings: Settings, platform_run_id: str, groups: dict[str, str]) -> dict[str, set[str]]:
    """group -> the input topics of its component (from the component's own handler)."""
    return {group: set(build_handler(component, settings, platform_run_id).input_topics()) for component, group in groups.items()}


def observe(settings: Settings, conn: Any, platform_run_id: str, groups: dict[str, str], tgts: list[Target],
            topics: dict[str, set[str]] | None = None) -> Observation:
    """Positions, dead letters and health of every group, now."""
    positions: dict[str, dict[tuple[str, str], int]] = {}
    dead: dict[str, int] = {}
    for component, group in groups.items():
        positions[group] = group_positions(conn, group)
        row = conn.execute("SELECT count(*) FROM worker_dead_letters WHERE consumer_group = %s", (group,)).fetchone()
        dead[component] = int(row[0]) if row else 0
    health = {c: read_health(settings, platform_run_id, c) for c in groups}
    return Observation(positions, dead, health, settings.registry.integer("RTDL_CAUGHT_UP_LAG_MAX"), tgts,
                       counts_records=settings.bus == "kafka", topics=topics or {})


#: Durable counters that name an explicit degrade (CSFB join misses by reason).
DEGRADE_COUNTERS = ("flow_anchor_missing", "arrival_missing", "context_conflicts")


def write_caught_up(settings: Settings, platform_run_id: str, *, wait_s: float = 600.0, poll_s: float = 2.0,
                    progress: Progress = print, sleep: Callable[[float], None] = time.sleep) -> list[WrittenEvidence]:
    """Wait until the RTDL core caught up (failing once it stood still for `wait_s`, with progress),
    then write both P8 files."""
    from runtime.db.postgres import Database

    registry = settings.registry
    components = rtdl_components(settings)
    digest_readers = {s: state_rows_of(s) for s in STATE_STORES if s in components}  # fail closed before waiting
    writer = EvidenceWriter(registry, platform_run_id, [run_bundle(settings, platform_run_id)])
    p7 = writer.read("KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN")
    if p7 is None:
        raise RtdlNotCaughtUp(f"run {platform_run_id} has no P7 offsets snapshot (ingest/kafka_offsets_snapshot.json)",
                              next_step="run P7 first (--from P7)")
    groups = {c: consumer_group_id(registry, c, platform_run_id) for c in components}
    if not settings.db_dsn:
        raise PlatformError("P8 reads worker positions from PostgreSQL but no DSN is set", code="DB_DSN_MISSING",
                            next_step="set FP_DB_DSN")
    topics = input_topics(settings, platform_run_id, groups)
    bound = StallBound(wait_s)
    with Database(settings.db_dsn, name="rtdl caught-up", max_size=1) as db:
        with db.connection() as conn:
            tgts = targets(p7, run_last_offsets(conn, platform_run_id, {str(r["topic"]) for r in p7.get("offset_ranges", [])}))
        if not tgts:
            raise RtdlNotCaughtUp(f"run {platform_run_id}: no partition holds admitted records of the run",
                                  next_step="P7 must have admitted events; rerun from P6")
        while True:
            began = time.monotonic()
            with db.connection() as conn:
                seen = observe(settings, conn, platform_run_id, groups, tgts, topics)
            if seen.judge(groups):
                break
            left = bound.left(seen.mark())
            if left <= 0:
                raise RtdlNotCaughtUp(f"not caught up, {bound.describe()}: " + "; ".join(seen.reasons)[:1500])
            progress(f"P8 waiting ({left:.0f}s left without progress): " + "; ".join(seen.reasons)[:300])
            sleep(min(pause_after(time.monotonic() - began, poll_s, LOOK_DUTY), left))
        with db.transaction() as conn:
            # the readers' rows stream into the digest, which keeps one section's canonical bytes (exact-size
            # copies: orjson's 4 KB buffers per row had this job OOM-killed at 7.8 GB at 500k traffic events)
            digest = rows_digest({s: read(conn, platform_run_id) for s, read in digest_readers.items()})
            totals = durable_counters(conn, platform_run_id, components)
            reconciliation = ieg_reconciliation(conn, platform_run_id) if "ieg" in components else None
    if reconciliation is not None:
        target = writer.targets[0]
        target.store.put(target.key(RECONCILIATION_PATH), json.dumps(reconciliation, indent=2, sort_keys=True).encode())
        if reconciliation.get("unexplained"):
            raise RtdlNotCaughtUp(f"IEG reconciliation has unexplained records: {reconciliation['unexplained']}"[:1500],
                                  next_step=f"read {target.store.uri(target.key(RECONCILIATION_PATH))} and the IEG dead letters")
    return _write(writer, seen, groups, tgts, digest, settings.bus, totals, reconciliation is not None)


#: Where IEG's reconciliation goes in the run's bundle (issue 12: `<ieg dir>/reconciliation/`).
RECONCILIATION_PATH = f"{component_dir('ieg')}/reconciliation/reconciliation.json"


def durable_counters(conn: Any, platform_run_id: str, components: list[str]) -> dict[str, int]:
    """The state components' durable counters (rtdl_counters), summed over components by name."""
    store = import_built("runtime.rtdl.store", RtdlStateMissing, "rtdl counters")
    out: dict[str, int] = {}
    for component in components:
        if component in STATE_STORES:
            for name, value in store.counter_totals(conn, platform_run_id, component).items():
                out[name] = out.get(name, 0) + int(value)
    return out


def ieg_reconciliation(conn: Any, platform_run_id: str) -> dict[str, Any]:
    """IEG's reconciliation document from its durable counters, tables and dead letters."""
    store = import_built(STATE_STORES["ieg"], RtdlStateMissing, "ieg reconciliation")
    document: dict[str, Any] = store.reconciliation(conn, platform_run_id)
    return document


def join_counts(totals: dict[str, int]) -> dict[str, int]:
    """CSFB's join counters: traffic events applied with their context present (hits) or before it
    (misses), misses completed by context that came later (late joins), and misses still without
    context (unresolved = misses - late joins: the only one that says context is missing from the
    run; hits vs misses depend on how the topics interleaved while consumed)."""
    hits, misses, late = totals.get("join_hits", 0), totals.get("join_misses", 0), totals.get("late_joins", 0)
    return {"hits": hits, "misses": misses, "late_joins": late, "unresolved": max(0, misses - late)}


def dependency_outages(health: dict[str, dict[str, Any] | None]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per component and dependency (db, bus, object_store): outages and seconds unavailable, from
    each worker's last health (counted since that worker process started)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for component, doc in sorted(health.items()):
        deps = (doc or {}).get("dependencies") or {}
        out[component] = {name: {"outages": int(d.get("outages", 0)), "unavailable_seconds": float(d.get("unavailable_seconds", 0.0))}
                          for name, d in sorted(deps.items())}
    return out


def _write(writer: EvidenceWriter, seen: Observation, groups: dict[str, str], tgts: list[Target], digest: str,
           bus: str, totals: dict[str, int], reconciliation_present: bool) -> list[WrittenEvidence]:
    rows: list[dict[str, Any]] = []
    lags: list[int] = []
    for group in groups.values():
        for t in seen.covered(group):
            committed = seen.positions.get(group, {}).get((t.topic, t.partition))
            lags.append(seen.lag(group, t))
            rows.append({"topic": t.topic, "partition": t.partition, "start_offset": t.start, "end_offset": t.end,
                         "consumer_group_id": group, "committed_offset": committed, "lag": seen.lag(group, t)})
    snapshot = {**writer.base_fields("P8", ["OFFSETS_SNAPSHOT_PATH_PATTERN", "CONSUMER_GROUP_ID_PATTERN",
                                            "KAFKA_OFFSETS_SNAPSHOT_PATH_PATTERN"]),
                "captured_at_utc": utc_iso(), "offset_kind": "kafka_offset" if bus == "kafka" else "kinesis_sequence",
                "consumer_groups": sorted(groups.values()), "partitions": rows}
    per_group = {g: sum(seen.lag(g, t) for t in seen.covered(g)) for g in groups.values()}
    health = seen.health
    document = {
        **writer.base_fields("P8", ["RTDL_CORE_EVIDENCE_PATH_PATTERN", "RTDL_CAUGHT_UP_LAG_MAX", "PACKS",
                                    "COMPONENT_HEALTH_PATH_PATTERN"]),
        "caught_up": True,
        "lag": {"max": max(lags, default=0), "total": sum(per_group.values()),
                "lag_max_allowed": seen.lag_max_allowed, "per_group": per_group},
        "partitions_covered": sum(1 for lag in lags if lag <= seen.lag_max_allowed),
        "partitions_expected": len(rows),
        "consumer_groups": sorted(groups.values()),
        "health": {c: (doc or {}).get("health_state", "MISSING") for c, doc in health.items()},
        "dead_letters": {"total": sum(seen.dead_letters.values()), "explained": 0, "by_component": seen.dead_letters},
        "late_events": totals.get("late_events", 0),
        "degrade_counts": {k: totals[k] for k in DEGRADE_COUNTERS if totals.get(k)},
        "join": join_counts(totals),
        "reconciliation_present": reconciliation_present,
        "dependency_outages": dependency_outages(health),
        "state_digest": digest,
        "reasons": [],
    }
    return [writer.write("OFFSETS_SNAPSHOT_PATH_PATTERN", snapshot), writer.write("RTDL_CORE_EVIDENCE_PATH_PATTERN", document)]
