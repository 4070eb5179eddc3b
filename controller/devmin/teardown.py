"""P12 teardown for dev_min: destroy the demo stack, then prove nothing costly is left.

Only the demo stack is destroyed; core (buckets, state, budgets) stays. After the destroy every
cost-bearing category is checked against the account itself (ECS services and tasks, the
runtime DB, demo SSM secrets, NAT gateways, load balancers, the Confluent cluster) and the run's
evidence must still be readable. Only when all hold is `teardown/teardown_proof.json` written;
any leftover is a stop-the-line error naming it (seed 004 P12.7) and no proof is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.devmin.aws import AwsInventory
from controller.devmin.checks import (
    CONFLUENT_SECRET_HANDLES,
    DEMO_SECRET_HANDLES,
    Check,
    failure,
    require_dev_min,
    secret_paths,
)
from controller.devmin.kafka import bootstrap_answers
from controller.devmin.terraform import TerraformError, TerraformRunner, stack_from_registry
from runtime.contracts.ids import is_platform_run_id
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError
from runtime.evidence.writer import BundleTarget, EvidenceWriter, WrittenEvidence
from runtime.store.s3 import S3Store

#: Given a bootstrap string, True while the Kafka cluster behind it still answers.
ClusterProbe = Callable[[str], bool]

_SOURCE_HANDLES = (
    "TF_STATE_BUCKET", "TF_STATE_KEY_DEMO", "TF_LOCK_TABLE", "TF_STACK_DEMO_DIR", "ECS_CLUSTER_NAME", "RDS_INSTANCE_ID",
    *DEMO_SECRET_HANDLES, "S3_EVIDENCE_BUCKET", "EVIDENCE_RUN_ROOT_PATTERN", "CONFLUENT_CLUSTER_NAME",
    "DEMO_APPLY_SNAPSHOT_KEY", "TAG_PROJECT", "TAG_ENV",
)


@dataclass(frozen=True)
class TeardownResult:
    """A billing-safe teardown: every check and the proof written."""

    checks: tuple[Check, ...]
    proof: dict[str, Any]
    written: WrittenEvidence


def evidence_writer(registry: Registry, aws: AwsInventory, platform_run_id: str) -> EvidenceWriter:
    """The run's evidence writer on the dev_min evidence bucket."""
    store = S3Store(registry.text("S3_EVIDENCE_BUCKET"), client=aws.clients.client("s3"))
    prefix = registry.render("EVIDENCE_RUN_ROOT_PATTERN", platform_run_id=platform_run_id)
    return EvidenceWriter(registry, platform_run_id, [BundleTarget(store, prefix)])


def recorded_bootstrap(registry: Registry, aws: AwsInventory) -> str | None:
    """Where the Confluent cluster listens: from SSM while it exists, else from the demo apply snapshot."""
    value = aws.parameter_value(registry.text(CONFLUENT_SECRET_HANDLES[0]))
    if value:
        return value
    body = aws.read_object(registry.text("S3_EVIDENCE_BUCKET"), registry.text("DEMO_APPLY_SNAPSHOT_KEY"))
    if body is None:
        return None
    try:
        snapshot = json.loads(body)
    except json.JSONDecodeError:
        return None
    bootstrap = snapshot.get("resources", {}).get("kafka_bootstrap")
    return str(bootstrap) if bootstrap else None


def verify_absent(registry: Registry, aws: AwsInventory, platform_run_id: str, *, bootstrap: str | None,
                  cluster_probe: ClusterProbe) -> list[Check]:
    """Every P12 check against the account as it is now."""
    checks: list[Check] = []
    cluster = registry.text("ECS_CLUSTER_NAME")
    services = aws.ecs_services(cluster)
    checks.append(Check("ecs_services", not services,
                        f"ECS services left in {cluster}: {', '.join(services)}" if services else f"0 services in {cluster}",
                        "TEARDOWN_LEFTOVER", tuple(f"ecs service {s}" for s in services)))
    tasks = aws.ecs_tasks(cluster)
    checks.append(Check("ecs_tasks", not tasks, f"ECS tasks left in {cluster}: {', '.join(tasks)}" if tasks else "0 tasks",
                        "TEARDOWN_LEFTOVER", tuple(f"ecs task {t}" for t in tasks)))
    db_id = registry.text("RDS_INSTANCE_ID")
    status = aws.db_instance_status(db_id)
    checks.append(Check("db", status is None, f"RDS instance {db_id} still exists ({status})" if status else f"RDS instance {db_id} gone",
                        "TEARDOWN_LEFTOVER", (f"rds instance {db_id}",) if status else ()))
    paths = secret_paths(registry, DEMO_SECRET_HANDLES)
    present = sorted(set(paths) - set(aws.missing_parameters(sorted(paths))))
    seen = "SSM secrets left: " + ", ".join(f"{paths[p]} ({p})" for p in present) if present else f"{len(paths)} demo secrets gone"
    checks.append(Check("demo_ssm_secrets", not present, seen, "TEARDOWN_LEFTOVER", tuple(f"ssm parameter {p}" for p in present)))
    nats = aws.nat_gateways()
    checks.append(Check("nat_gateway", not nats, f"NAT gateways present: {', '.join(nats)}" if nats else "0 NAT gateways",
                        "NAT_GATEWAY_PRESENT", tuple(f"nat gateway {n}" for n in nats)))
    lbs = aws.load_balancers()
    checks.append(Check("load_balancer", not lbs, f"load balancers present: {', '.join(lbs)}" if lbs else "0 load balancers",
                        "LOAD_BALANCER_PRESENT", tuple(f"load balancer {lb}" for lb in lbs)))
    confluent = registry.text("CONFLUENT_CLUSTER_NAME")
    if bootstrap is None:
        seen = f"cannot confirm {confluent} is gone: no bootstrap recorded in SSM or the demo snapshot"
        checks.append(Check("confluent_cluster", False, seen, "TEARDOWN_UNVERIFIED", (f"confluent cluster {confluent} (unverified)",)))
    else:
        alive = cluster_probe(bootstrap)
        checks.append(Check("confluent_cluster", not alive,
                            f"Kafka cluster {confluent} still answers at {bootstrap}" if alive else f"{bootstrap} no longer answers",
                            "TEARDOWN_LEFTOVER", (f"confluent cluster {confluent}",) if alive else ()))
    bucket = registry.text("S3_EVIDENCE_BUCKET")
    root = registry.render("EVIDENCE_RUN_ROOT_PATTERN", platform_run_id=platform_run_id)
    _count, problem = aws.readable_objects(bucket, root)
    # No count in the detail: the proof is written once, and a rerun must produce the same document.
    checks.append(Check("evidence_readable", problem is None, problem or f"run evidence readable under s3://{bucket}/{root}",
                        "EVIDENCE_UNREADABLE"))
    return checks


def _check_run_id(platform_run_id: str) -> None:
    if not is_platform_run_id(platform_run_id):
        raise PlatformError(f"{platform_run_id[:80]!r} is not a platform_run_id (platform_<yyyymmddTHHMMSSZ>)", code="BAD_RUN_ID",
                            next_step="pass the run whose evidence bundle should carry the teardown proof")


def verify_only(registry: Registry, aws: AwsInventory, platform_run_id: str, *,
                cluster_probe: ClusterProbe = bootstrap_answers) -> list[Check]:
    """The P12 checks without destroying or writing anything (an operator's "is it billing-safe?")."""
    require_dev_min(registry)
    _check_run_id(platform_run_id)
    return verify_absent(registry, aws, platform_run_id, bootstrap=recorded_bootstrap(registry, aws), cluster_probe=cluster_probe)


def dev_min_down(registry: Registry, runner: TerraformRunner, aws: AwsInventory, platform_run_id: str, *,
                 cluster_probe: ClusterProbe = bootstrap_answers, stacks_root: Path | None = None,
                 writer: EvidenceWriter | None = None) -> TeardownResult:
    """Destroy the demo stack, verify the account is billing-safe, then write the teardown proof."""
    require_dev_min(registry)
    _check_run_id(platform_run_id)
    bootstrap = recorded_bootstrap(registry, aws)
    destroy_error: TerraformError | None = None
    try:
        runner.destroy(stack_from_registry(registry, "demo", stacks_root))
    except TerraformError as e:
        destroy_error = e
    checks = verify_absent(registry, aws, platform_run_id, bootstrap=bootstrap, cluster_probe=cluster_probe)
    if destroy_error is not None:
        checks.insert(0, Check("terraform_destroy_demo", False, destroy_error.message, destroy_error.code))
    failed = [c for c in checks if not c.ok]
    if failed:
        leftovers = [item for c in failed for item in c.items]
        tags = f"{registry.text('TAG_PROJECT')}/{registry.text('TAG_ENV')}"
        raise failure(failed, summary_code="TEARDOWN_LEFTOVER", what="dev_min teardown",
                      next_step=f"stop the line: remove {', '.join(leftovers) or 'the blockers named'} "
                                f"(destroy by tag project/env = {tags}, see docs/dev_min.md), then rerun `fp devmin teardown`")
    writer = writer or evidence_writer(registry, aws, platform_run_id)
    proof = {
        **writer.base_fields("P12", list(_SOURCE_HANDLES)),
        "environment": registry.environment,
        "destroy_status": "SUCCESS",
        "destroyed_stack": "demo",
        "confirmed_absent": {c.name: c.ok for c in checks if c.name != "evidence_readable"},
        "checks": [c.as_evidence() for c in checks],
        "evidence_readable": True,
        "leftovers": [],
    }
    written = writer.write("TEARDOWN_PROOF_PATH_PATTERN", proof)
    return TeardownResult(tuple(checks), proof, written)
