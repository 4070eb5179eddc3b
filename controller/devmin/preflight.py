"""P0 preflight for dev_min: prove the applied substrate is usable and within the cost posture.

Checks (seed 004 P0.4-P0.5, section 7.4): every bucket takes a marker write, the SSM secrets
exist, the registry's topics exist on the Kafka cluster, no NAT gateway and no load balancer
exist, the budget exists, the ECS cluster and the demo DB exist. The result is written to the
evidence bucket as the demo apply snapshot, failed or not, so the last known substrate state is
durable; a failed check then raises with the check's code and every failing check named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from controller.devmin.aws import AwsCallFailed, AwsInventory
from controller.devmin.checks import (
    BUCKET_HANDLES,
    CONFLUENT_SECRET_HANDLES,
    PREFLIGHT_SECRET_HANDLES,
    Check,
    failure,
    require_dev_min,
    secret_paths,
)
from controller.devmin.kafka import KafkaAccess, KafkaAdminFactory
from runtime.contracts.ids import utc_iso
from runtime.contracts.registry import Registry
from runtime.errors import BusUnavailable, EvidenceInvalid, PlatformError
from runtime.evidence.writer import encode, schema_violations

SNAPSHOT_SCHEMA = "evidence/demo_apply_snapshot.schema.json"

_SOURCE_HANDLES = (
    *BUCKET_HANDLES, *PREFLIGHT_SECRET_HANDLES, "S3_BUCKET_WRITE_PROBE_KEY", "ECS_CLUSTER_NAME", "RDS_INSTANCE_ID",
    "AWS_BUDGET_NAME", "DEMO_APPLY_SNAPSHOT_KEY", "CONFLUENT_CLUSTER_NAME", "AWS_REGION",
)


@dataclass(frozen=True)
class PreflightResult:
    """What P0 preflight saw: every check, the snapshot written and where."""

    checks: tuple[Check, ...]
    snapshot: dict[str, Any]
    snapshot_uri: str

    @property
    def all_ok(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        """The checks that did not pass."""
        return [c for c in self.checks if not c.ok]


def run_checks(registry: Registry, aws: AwsInventory, kafka_admin: KafkaAdminFactory) -> list[Check]:
    """Every P0 check, in runbook order; an unreachable dependency is a failed check, never a pass."""
    require_dev_min(registry)
    checks: list[Check] = []
    probe_key = registry.text("S3_BUCKET_WRITE_PROBE_KEY")
    probe_body = json.dumps({"probe": "P0 preflight", "written_at_utc": utc_iso()}).encode()
    for bucket in sorted({registry.text(k) for k in BUCKET_HANDLES}):
        problem = aws.write_probe(bucket, probe_key, probe_body)
        seen = problem or f"marker s3://{bucket}/{probe_key} written and read back"
        checks.append(Check(f"bucket_writable:{bucket}", problem is None, seen, "BUCKET_NOT_WRITABLE"))

    paths = secret_paths(registry, PREFLIGHT_SECRET_HANDLES)
    missing = aws.missing_parameters(sorted(paths))
    checks.append(Check("ssm_secrets_present", not missing,
                        f"missing: {', '.join(f'{paths[m]} ({m})' for m in missing)}" if missing else f"{len(paths)} parameters present",
                        "SSM_SECRET_MISSING"))

    checks.append(_topics_check(registry, aws, kafka_admin))

    nats = aws.nat_gateways()
    checks.append(Check("nat_gateways_zero", not nats, f"NAT gateways present: {', '.join(nats)}" if nats else "0 NAT gateways",
                        "NAT_GATEWAY_PRESENT", tuple(nats)))
    lbs = aws.load_balancers()
    checks.append(Check("load_balancers_zero", not lbs, f"load balancers present: {', '.join(lbs)}" if lbs else "0 load balancers",
                        "LOAD_BALANCER_PRESENT", tuple(lbs)))

    budget = registry.text("AWS_BUDGET_NAME")
    has_budget = aws.budget_exists(budget)
    seen = f"budget {budget} " + ("exists" if has_budget else "does not exist")
    checks.append(Check("budget_enabled", has_budget, seen, "BUDGET_MISSING"))

    cluster = registry.text("ECS_CLUSTER_NAME")
    active = aws.ecs_cluster_active(cluster)
    checks.append(Check("ecs_cluster_active", active, f"ECS cluster {cluster} " + ("is ACTIVE" if active else "is missing"),
                        "ECS_CLUSTER_MISSING"))

    db_id = registry.text("RDS_INSTANCE_ID")
    status = aws.db_instance_status(db_id)
    checks.append(Check("runtime_db_present", status is not None, f"RDS instance {db_id}: {status or 'missing'}", "RUNTIME_DB_MISSING"))
    return checks


def _topics_check(registry: Registry, aws: AwsInventory, kafka_admin: KafkaAdminFactory) -> Check:
    wanted = {t.name: t.key for t in registry.topics()}
    bootstrap_path, key_path, secret_path = (registry.text(k) for k in CONFLUENT_SECRET_HANDLES)
    bootstrap = aws.parameter_value(bootstrap_path)
    if not bootstrap:
        return Check("topics_present", False, f"cannot list topics: no bootstrap at SSM {bootstrap_path}", "TOPIC_MISSING")
    access = KafkaAccess(bootstrap, aws.parameter_value(key_path), aws.parameter_value(secret_path))
    try:
        present = kafka_admin(access).topic_names()
    except BusUnavailable as e:
        return Check("topics_present", False, f"cannot list topics: {e.message}", "BUS_UNAVAILABLE")
    missing = sorted(set(wanted) - present)
    if missing:
        return Check("topics_present", False, "missing topics: " + ", ".join(f"{wanted[m]} ({m})" for m in missing), "TOPIC_MISSING")
    return Check("topics_present", True, f"{len(wanted)} registry topics present")


def build_snapshot(registry: Registry, checks: list[Check], *, terraform_outputs: dict[str, dict[str, Any]],
                   applied: dict[str, bool], platform_run_id: str | None, kafka_bootstrap: str | None) -> dict[str, Any]:
    """The demo apply snapshot document (no secret values: outputs are the non-sensitive ones)."""
    by_name = {c.name: c for c in checks}
    nat = by_name.get("nat_gateways_zero")
    lbs = by_name.get("load_balancers_zero")
    budget = by_name.get("budget_enabled")
    return {
        "platform_run_id": platform_run_id,
        "written_at_utc": utc_iso(),
        "phase_id": "P0",
        "source_handles": sorted(set(_SOURCE_HANDLES)),
        "environment": registry.environment,
        "terraform": {
            "core_applied": applied.get("core", False),
            "demo_applied": applied.get("demo", False),
            "outputs": terraform_outputs,
        },
        "resources": {
            "region": registry.text("AWS_REGION"),
            "buckets": {k: registry.text(k) for k in BUCKET_HANDLES},
            "ecs_cluster": registry.text("ECS_CLUSTER_NAME"),
            "rds_instance_id": registry.text("RDS_INSTANCE_ID"),
            "confluent_cluster": registry.text("CONFLUENT_CLUSTER_NAME"),
            "budget": registry.text("AWS_BUDGET_NAME"),
            "topics": sorted(t.name for t in registry.topics()),
            "kafka_bootstrap": kafka_bootstrap,
        },
        "checks": [c.as_evidence() for c in checks],
        "all_ok": all(c.ok for c in checks),
        "nat_gateways": _count(nat),
        "load_balancers": _count(lbs),
        "budgets_enabled": bool(budget and budget.ok),
    }


def _count(check: Check | None) -> int:
    return len(check.items) if check is not None else 0


def write_snapshot(registry: Registry, aws: AwsInventory, snapshot: dict[str, Any]) -> str:
    """Validate the snapshot, then write it to the evidence bucket at DEMO_APPLY_SNAPSHOT_KEY."""
    problems = schema_violations(SNAPSHOT_SCHEMA, snapshot)
    if problems:
        raise EvidenceInvalid("demo apply snapshot refused: " + "; ".join(problems[:5]))
    bucket = registry.text("S3_EVIDENCE_BUCKET")
    key = registry.text("DEMO_APPLY_SNAPSHOT_KEY")
    try:
        aws.put_json(bucket, key, encode(snapshot))
    except AwsCallFailed as e:
        raise PlatformError(f"cannot write the demo apply snapshot: {e.message}", code="EVIDENCE_WRITE_FAILED",
                            next_step="check the evidence bucket exists and is writable") from e
    return f"s3://{bucket}/{key}"


def preflight(registry: Registry, aws: AwsInventory, kafka_admin: KafkaAdminFactory, *,
              terraform_outputs: dict[str, dict[str, Any]] | None = None, applied: dict[str, bool] | None = None,
              platform_run_id: str | None = None) -> PreflightResult:
    """Run the P0 checks, write the snapshot, and raise (with the failing checks named) unless all pass."""
    checks = run_checks(registry, aws, kafka_admin)
    snapshot = build_snapshot(registry, checks, terraform_outputs=terraform_outputs or {},
                              applied=applied or {}, platform_run_id=platform_run_id,
                              kafka_bootstrap=aws.parameter_value(registry.text(CONFLUENT_SECRET_HANDLES[0])))
    try:
        uri = write_snapshot(registry, aws, snapshot)
    except PlatformError as write_error:
        failed = [c for c in checks if not c.ok]
        if not failed:
            raise
        # The checks are the news; that the snapshot could not be written is said alongside.
        raise failure(failed, summary_code="P0_PREFLIGHT_FAILED", what="dev_min P0 preflight",
                      next_step=f"fix what is named and rerun `fp devmin preflight` "
                                f"(snapshot not written: {write_error.message})") from None
    result = PreflightResult(tuple(checks), snapshot, uri)
    if not result.all_ok:
        raise failure(result.failed, summary_code="P0_PREFLIGHT_FAILED", what="dev_min P0 preflight",
                      next_step=f"fix what is named, rerun `fp devmin preflight`; the snapshot at {uri} records every check")
    return result
