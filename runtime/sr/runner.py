"""The Scenario Runner job (P5): lease, gates, run facts, READY, evidence - in that order.

`run_scenario_runner` is what the `sr run` command and the controller's P5 call. Fail closed: a
failed gate publishes nothing and releases the lease so the operator can fix P3 and rerun. Once
READY is out, the lease is kept until its TTL: a second SR with the same key in that window is
LEASE_BUSY rather than a duplicate READY. Names come from the registry; the store, publisher and
lease store are passed in or built from settings.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.bus import factory
from runtime.bus.port import EbRef, OutboundRecord, Publisher
from runtime.contracts.canonical import canonical_json
from runtime.contracts.ids import utc_iso
from runtime.contracts.registry import Registry
from runtime.contracts.schemas import compiled_validator
from runtime.db.migrate import require_migrations
from runtime.errors import PlatformError, PublishAmbiguous, WriteConflict
from runtime.evidence.writer import EvidenceWriter
from runtime.settings import Settings
from runtime.sr import domain
from runtime.sr.lease import LeaseStore
from runtime.store.port import ObjectStore

READY_SCHEMA = "events/control_ready.schema.json"
FACTS_VIEW_NAME = "run_facts_view_{scenario_run_id}.json"
PHASE = "P5"


@dataclass(frozen=True)
class SrResult:
    """What one successful SR run pinned and published."""

    platform_run_id: str
    scenario_run_id: str
    equivalence_key: str
    gates: list[domain.GateResult]
    facts_view_ref: str
    oracle_pack_ref: str
    ready_ref: EbRef
    published_at_utc: str
    evidence_uris: list[str] = field(default_factory=list)


def default_holder() -> str:
    """A lease holder id unique to this invocation (host, pid, random suffix)."""
    return f"sr:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def read_oracle_view(store: ObjectStore, registry: Registry, platform_run_id: str) -> domain.OracleView:
    """Read the seal and, per required output, its receipt, manifest and object listing."""
    pack_prefix = registry.render("ORACLE_PACK_PREFIX_PATTERN", platform_run_id=platform_run_id)
    seal_key = pack_prefix + domain.SEAL_NAME
    outputs = []
    for output_id in registry.names("ORACLE_REQUIRED_OUTPUT_IDS"):
        prefix = registry.render("S3_STREAM_VIEW_PREFIX_PATTERN", platform_run_id=platform_run_id, output_id=output_id)
        objects = {info.key[len(prefix):]: info.size for info in store.list(prefix)}
        receipt_key = registry.render("S3_STREAM_SORT_RECEIPT_PATTERN", platform_run_id=platform_run_id, output_id=output_id)
        manifest_key = registry.render("S3_STREAM_VIEW_MANIFEST_PATTERN", platform_run_id=platform_run_id, output_id=output_id)
        outputs.append(
            domain.OutputView(
                output_id=output_id,
                prefix=prefix,
                receipt=store.get(receipt_key) if receipt_key[len(prefix):] in objects else None,
                manifest=store.get(manifest_key) if manifest_key[len(prefix):] in objects else None,
                objects=objects,
            )
        )
    seal = store.get(seal_key) if store.exists(seal_key) else None
    return domain.OracleView(platform_run_id, pack_prefix, seal, tuple(outputs))


def _write_facts(store: ObjectStore, key: str, document: dict[str, Any]) -> None:
    """Write the facts view once; the same facts again are a no-op, different facts a conflict."""
    data = canonical_json(document)
    try:
        store.put(key, data, create_only=True)
    except WriteConflict:
        if json.loads(store.get(key)) != json.loads(data):
            raise PlatformError(
                f"{store.uri(key)} exists with other facts for the same scenario_run_id",
                code="SR_FACTS_CONFLICT",
                next_step="the oracle changed under a pinned scenario: use a new equivalence key or a new platform run",
            ) from None


def _publish_ready(publisher: Publisher, topic: str, message: dict[str, Any]) -> EbRef:
    problems = list(compiled_validator(READY_SCHEMA).iter_errors(message))
    if problems:
        raise PlatformError(f"READY message invalid: {problems[0].message}", code="SR_READY_INVALID")
    [result] = publisher.publish([OutboundRecord(topic, message["platform_run_id"], canonical_json(message))])
    if isinstance(result, PublishAmbiguous):
        raise PublishAmbiguous(
            f"READY for {message['platform_run_id']} may or may not be on {topic}",
            next_step="check the control topic for this run's READY before rerunning SR",
        )
    if isinstance(result, Exception):
        raise result
    return result


def run_scenario_runner(
    settings: Settings,
    platform_run_id: str,
    equivalence_key: str,
    writer: EvidenceWriter,
    *,
    ttl_seconds: int | None = None,
    holder: str | None = None,
    publisher: Publisher | None = None,
    progress: Callable[[str], None] | None = None,
) -> SrResult:
    """Run SR for one platform run: gates over the oracle, then READY on the control topic."""
    say = progress or (lambda _line: None)
    scenario = domain.validate_inputs(platform_run_id, equivalence_key)
    if writer.platform_run_id != platform_run_id:
        raise domain.SrInputInvalid(f"the evidence writer is for {writer.platform_run_id}, not {platform_run_id}")
    if not settings.db_dsn:
        raise PlatformError("SR keeps its lease in PostgreSQL but no DSN is set", code="DB_DSN_MISSING", next_step="set FP_DB_DSN")
    registry = settings.registry
    require_migrations(settings.db_dsn)
    leases = LeaseStore(settings.db_dsn)
    ttl = ttl_seconds if ttl_seconds is not None else registry.integer("SR_LEASE_TTL_SECONDS")
    lease = leases.acquire(scenario, equivalence_key, platform_run_id, holder or default_holder(), ttl)
    say(f"SR: lease taken for scenario_run_id {scenario} (ttl {ttl}s)")
    ready_out = False
    own_publisher = publisher is None
    try:
        oracle = settings.bucket("S3_ORACLE_BUCKET")
        evidence_store = settings.bucket("S3_EVIDENCE_BUCKET")
        view = read_oracle_view(oracle, registry, platform_run_id)
        gates = domain.evaluate_gates(view)
        for gate in gates:
            say(f"SR: gate {gate.name}: {'PASS' if gate.ok else 'FAIL'}{f' ({gate.detail})' if gate.detail else ''}")
        domain.require_all_passed(gates)

        oracle_pack_ref = oracle.uri(view.pack_prefix)
        stream_view_refs = {o.output_id: oracle.uri(o.prefix) for o in view.outputs}
        facts = domain.facts_view(view, scenario, equivalence_key, oracle_pack_ref, stream_view_refs)
        facts_key = registry.render("SR_ARTIFACTS_PREFIX_PATTERN", platform_run_id=platform_run_id) + FACTS_VIEW_NAME.format(
            scenario_run_id=scenario
        )
        _write_facts(evidence_store, facts_key, facts)
        facts_view_ref = evidence_store.uri(facts_key)
        say(f"SR: READY committed (facts {facts_view_ref})")

        published_at = utc_iso()
        message = domain.ready_message(platform_run_id, scenario, facts_view_ref, oracle_pack_ref, equivalence_key, published_at)
        control = registry.topic("FP_BUS_CONTROL_V1")
        bus_publisher = publisher or factory.publisher(settings)
        try:
            ready_ref = _publish_ready(bus_publisher, control.name, message)
        except PublishAmbiguous:
            ready_out = True  # READY may be on the topic: keep the lease, the operator checks first
            raise
        finally:
            if own_publisher:
                bus_publisher.close()
        ready_out = True
        say(f"SR: READY published to {control.name} [{ready_ref.partition}] at {ready_ref.offset}")

        sources = ["S3_ORACLE_BUCKET", "ORACLE_PACK_PREFIX_PATTERN", "S3_STREAM_VIEW_PREFIX_PATTERN", "ORACLE_REQUIRED_OUTPUT_IDS",
                   "S3_EVIDENCE_BUCKET", "SR_ARTIFACTS_PREFIX_PATTERN", "FP_BUS_CONTROL_V1", "SR_LEASE_TTL_SECONDS"]
        sr_pass = writer.base_fields(PHASE, sources) | {
            "scenario_run_id": scenario,
            "equivalence_key": equivalence_key,
            "gates": [g.as_dict() for g in gates],
            "oracle_pack_ref": oracle_pack_ref,
            "facts_view_ref": facts_view_ref,
            "output_ids": list(stream_view_refs),
            "ready_eb_ref": ready_ref.to_dict(),
        }
        receipt = writer.base_fields(PHASE, ["FP_BUS_CONTROL_V1"]) | {
            "scenario_run_id": scenario,
            "topic": ready_ref.topic,
            "partition": ready_ref.partition,
            "offset": ready_ref.offset,
            "offset_kind": ready_ref.offset_kind,
            "published_at_utc": published_at,
            "message_key": platform_run_id,
        }
        written = [writer.write("SR_PASS_PATH_PATTERN", sr_pass), writer.write("READY_PUBLISH_RECEIPT_PATH_PATTERN", receipt)]
        return SrResult(
            platform_run_id=platform_run_id,
            scenario_run_id=scenario,
            equivalence_key=equivalence_key,
            gates=gates,
            facts_view_ref=facts_view_ref,
            oracle_pack_ref=oracle_pack_ref,
            ready_ref=ready_ref,
            published_at_utc=published_at,
            evidence_uris=[uri for w in written for uri in w.uris],
        )
    except BaseException:
        if not ready_out:  # READY surely not published: the key is free for a fixed rerun
            leases.release(lease)
        raise
