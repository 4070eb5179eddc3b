"""Policy checks on the synthesised Terraform JSON (no terraform init: providers cannot be downloaded)."""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import re
from functools import cache
from typing import Any

import pytest

from runtime.components import COMPONENTS, of_kind
from runtime.contracts.registry import load_registry
from stacks.config import RUNTIME_ROLE_KEYS
from tests.stacks.conftest import SHA, Synthesised

TAG_KEYS = {"project": "TAG_PROJECT", "env": "TAG_ENV", "owner": "TAG_OWNER"}
ENV_OF = {"core": "dev_min", "demo": "dev_min", "local_parity": "local_parity"}


def _resources(doc: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return doc.get("resource", {}).get(rtype, {})


@cache
def _taggable(rtype: str) -> bool:
    """True when the AWS provider binding of `rtype` accepts `tags` (read from the binding, not guessed)."""
    module = importlib.import_module(f"cdktn_provider_aws.{rtype.removeprefix('aws_')}")
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if getattr(cls, "TF_RESOURCE_TYPE", None) == rtype:
            return "tags" in inspect.signature(cls.__init__).parameters
    raise AssertionError(f"no binding class for {rtype}")


def _values_of(node: Any, key: str) -> list[Any]:
    """Every value stored under `key` anywhere in a JSON tree."""
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == key] + [x for v in node.values() for x in _values_of(v, key)]
    if isinstance(node, list):
        return [x for v in node for x in _values_of(v, key)]
    return []


def test_no_nat_gateway_in_any_stack(synthesised: Synthesised) -> None:
    for name, doc in synthesised.stacks.items():
        assert "aws_nat_gateway" not in doc.get("resource", {}), name
        assert not [v for v in _values_of(doc, "nat_gateway_id") if v], name


def test_no_load_balancer_of_any_kind(synthesised: Synthesised) -> None:
    lb = re.compile(r"^aws_(lb|alb|elb|elbv2)(_|$)|load_balancer|globalaccelerator|apigatewayv2_vpc_link")
    for name, doc in synthesised.stacks.items():
        assert not [t for t in doc.get("resource", {}) if lb.search(t)], name
        for service in _resources(doc, "aws_ecs_service").values():
            assert "load_balancer" not in service


def test_db_security_group_admits_only_the_app_group_and_db_is_private(synthesised: Synthesised) -> None:
    demo = synthesised.stacks["demo"]
    registry = load_registry("dev_min")
    groups = _resources(demo, "aws_security_group")
    db_sg = next(body for body in groups.values() if body["name"] == registry.text("SECURITY_GROUP_ID_DB"))
    assert db_sg["ingress"], "the DB group must admit the app group"
    for rule in db_sg["ingress"]:
        assert not rule.get("cidr_blocks") and not rule.get("ipv6_cidr_blocks"), rule
        assert rule["security_groups"] == ["${aws_security_group.sg_app.id}"]
    for rtype in ("aws_security_group_rule", "aws_vpc_security_group_ingress_rule"):
        assert not _resources(demo, rtype), f"{rtype} could open the DB outside this test's view"
    for sg in groups.values():
        for rule in sg.get("ingress", []):
            assert "0.0.0.0/0" not in (rule.get("cidr_blocks") or []), sg["name"]
    db = next(iter(_resources(demo, "aws_db_instance").values()))
    assert db["publicly_accessible"] is False
    assert db["vpc_security_group_ids"] == ["${aws_security_group.sg_db.id}"]


def test_every_taggable_resource_carries_the_four_tags(synthesised: Synthesised) -> None:
    checked = 0
    for name, doc in synthesised.stacks.items():
        registry = load_registry(ENV_OF[name])
        want = {tag: registry.text(key) for tag, key in TAG_KEYS.items()}
        for rtype, blocks in doc.get("resource", {}).items():
            if not rtype.startswith("aws_") or not _taggable(rtype):
                continue
            for logical_id, body in blocks.items():
                tags = body.get("tags") or {}
                assert {k: tags.get(k) for k in want} == want, f"{name}: {rtype}.{logical_id} tags {tags}"
                assert tags.get("expires_at"), f"{name}: {rtype}.{logical_id} has no expires_at"
                checked += 1
        provider_tags = doc["provider"]["aws"][0]["default_tags"][0]["tags"]
        assert {k: provider_tags[k] for k in want} == want
    assert checked > 50


def test_demo_resources_expire_at_the_window_end(synthesised: Synthesised) -> None:
    for body in _resources(synthesised.stacks["demo"], "aws_ecs_service").values():
        assert body["tags"]["expires_at"] == "2026-11-23T23:00Z"


def _role_policies(core: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """role name -> its inline policy statements."""
    roles = _resources(core, "aws_iam_role")
    out: dict[str, list[dict[str, Any]]] = {}
    for body in _resources(core, "aws_iam_role_policy").values():
        logical = re.fullmatch(r"\$\{aws_iam_role\.(\w+)\.id\}", body["role"])
        assert logical, body["role"]
        out.setdefault(roles[logical.group(1)]["name"], []).extend(json.loads(body["policy"])["Statement"])
    return out


def test_runtime_roles_have_no_wildcard_action_or_resource(synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    policies = _role_policies(synthesised.stacks["core"])
    for key in RUNTIME_ROLE_KEYS:
        statements = policies[registry.text(key)]
        assert statements, key
        for statement in statements:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert not [a for a in actions if "*" in a], f"{key}: wildcard action in {statement}"
            assert "*" not in resources, f"{key}: wildcard resource in {statement}"
            assert not [a for a in actions if a.startswith("s3:Delete")], key
            for resource in resources:
                if resource.startswith("${aws_s3_bucket."):
                    assert resource.endswith(".arn}") or "/" in resource, f"{key}: whole-bucket object access {resource}"


def test_runtime_roles_are_scoped_to_their_own_buckets(synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    policies = _role_policies(synthesised.stacks["core"])
    text = json.dumps(policies[registry.text("ROLE_WSP_TASK")])
    assert "s3_quarantine_bucket" not in text  # seed 004 C.2: WSP never writes quarantine
    oracle = json.dumps(policies[registry.text("ROLE_ORACLE_JOB")])
    assert registry.text("SSM_CONFLUENT_API_KEY_PATH") not in oracle  # oracle jobs never touch Kafka
    ig = json.dumps(policies[registry.text("ROLE_IG_SERVICE")])
    assert "s3_quarantine_bucket" in ig and registry.text("SSM_IG_API_KEY_PATH") in ig


def test_every_bucket_is_encrypted_and_public_access_blocked(synthesised: Synthesised) -> None:
    buckets_seen = 0
    for name, doc in synthesised.stacks.items():
        encrypted = {b["bucket"] for b in _resources(doc, "aws_s3_bucket_server_side_encryption_configuration").values()
                     if b["rule"][0]["apply_server_side_encryption_by_default"]["sse_algorithm"] in ("aws:kms", "AES256")}
        blocked = {b["bucket"] for b in _resources(doc, "aws_s3_bucket_public_access_block").values()
                   if all(b[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                                "restrict_public_buckets"))}
        for logical_id in _resources(doc, "aws_s3_bucket"):
            ref = f"${{aws_s3_bucket.{logical_id}.id}}"
            assert ref in encrypted, f"{name}: {logical_id} not encrypted"
            assert ref in blocked, f"{name}: {logical_id} not public-access-blocked"
            buckets_seen += 1
    assert buckets_seen == 7  # core: 4 + tfstate; local_parity: 2 distinct local buckets


def test_evidence_bucket_is_versioned_and_denies_object_deletion(synthesised: Synthesised) -> None:
    core = synthesised.stacks["core"]
    versioning = _resources(core, "aws_s3_bucket_versioning")["s3_evidence_bucket_versioning"]
    assert versioning["versioning_configuration"]["status"] == "Enabled"
    policy = json.loads(_resources(core, "aws_s3_bucket_policy")["s3_evidence_bucket_policy"]["policy"])
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny" and "s3:DeleteObject" in s["Action"]]
    assert deny and deny[0]["Principal"] == "*"


def test_lifecycle_expiry_days_come_from_the_registry(synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    lifecycles = _resources(synthesised.stacks["core"], "aws_s3_bucket_lifecycle_configuration")
    for bucket, days_key, prefix_key in (("s3_oracle_bucket", "S3_ORACLE_EXPIRY_DAYS", "S3_ORACLE_PREFIX_PATTERN"),
                                         ("s3_archive_bucket", "S3_ARCHIVE_EXPIRY_DAYS", "S3_ARCHIVE_PREFIX_PATTERN"),
                                         ("s3_quarantine_bucket", "S3_QUARANTINE_EXPIRY_DAYS", "S3_QUARANTINE_PREFIX_PATTERN")):
        rule = next(r for r in lifecycles[f"{bucket}_lifecycle"]["rule"] if r["id"] == "expire-run-data")
        assert rule["expiration"][0]["days"] == registry.integer(days_key)
        assert rule["filter"][0]["prefix"] == registry.text(prefix_key).split("{")[0]
    evidence_rules = lifecycles["s3_evidence_bucket_lifecycle"]["rule"]
    assert not [r for r in evidence_rules if "expiration" in r], "evidence must never expire"


def test_budget_alerts_follow_the_registry_thresholds(synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    budget = next(iter(_resources(synthesised.stacks["core"], "aws_budgets_budget").values()))
    assert budget["limit_amount"] == str(registry.integer("AWS_BUDGET_LIMIT"))
    assert budget["limit_unit"] == registry.text("AWS_BUDGET_CURRENCY")
    assert [n["threshold"] for n in budget["notification"]] == registry.value("AWS_BUDGET_ALERT_THRESHOLDS")
    assert all(n["subscriber_email_addresses"] == ["${var.budget_alert_email}"] for n in budget["notification"])


def test_state_bucket_and_lock_table_are_in_core(synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    core = synthesised.stacks["core"]
    assert registry.text("TF_STATE_BUCKET") in {b["bucket"] for b in _resources(core, "aws_s3_bucket").values()}
    table = next(iter(_resources(core, "aws_dynamodb_table").values()))
    assert table["name"] == registry.text("TF_LOCK_TABLE") and table["hash_key"] == "LockID"
    repo = next(iter(_resources(core, "aws_ecr_repository").values()))
    assert repo["name"] == registry.text("ECR_REPO_NAME") and repo["image_tag_mutability"] == "IMMUTABLE"


def test_every_entrypoint_runs_the_single_image_by_its_immutable_tag(synthesised: Synthesised) -> None:
    demo = synthesised.stacks["demo"]
    definitions = _resources(demo, "aws_ecs_task_definition")
    images = set()
    for body in definitions.values():
        (container,) = json.loads(body["container_definitions"])
        images.add(container["image"])
        # the command is the component's argv alone: the image's ENTRYPOINT is `python -m runtime`
        assert container["command"] == list(COMPONENTS[container["name"]].argv)
        assert body["task_role_arn"].startswith("${data.terraform_remote_state.core.outputs.role_")
    assert images == {f"${{data.terraform_remote_state.core.outputs.ecr_repository_url}}:git-{SHA}"}
    registry = load_registry("dev_min")
    tds = {registry.text(str(j.ecs_key)) for j in of_kind("job")}
    assert tds <= {b["family"] for b in definitions.values()}


def test_daemon_services_are_created_idle_on_fargate(synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    services = _resources(synthesised.stacks["demo"], "aws_ecs_service")
    svc_names = {registry.text(str(d.ecs_key)) for d in of_kind("daemon")}
    assert {s["name"] for s in services.values()} == svc_names
    for body in services.values():
        assert body["desired_count"] == 0  # P2 scales to ECS_SERVICE_DESIRED_COUNT with a run-scoped revision
        assert body["launch_type"] == "FARGATE"
    ig = next(s for s in services.values() if s["name"] == registry.text("SVC_IG"))
    assert "service_registries" in ig


def test_every_service_leaves_task_definition_and_desired_count_to_the_controller(synthesised: Synthesised) -> None:
    services = _resources(synthesised.stacks["demo"], "aws_ecs_service")
    assert services
    for name, body in services.items():
        ignored = body.get("lifecycle", {}).get("ignore_changes")
        assert ignored is not None and set(ignored) == {"task_definition", "desired_count"}, name


def test_rds_is_smallest_single_az_and_leaves_no_final_snapshot(synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    db = next(iter(_resources(synthesised.stacks["demo"], "aws_db_instance").values()))
    assert db["instance_class"] == registry.text("RDS_INSTANCE_CLASS")
    assert db["identifier"] == registry.text("RDS_INSTANCE_ID")
    assert db["multi_az"] is False and db["skip_final_snapshot"] is True and db["deletion_protection"] is False
    assert db["storage_encrypted"] is True
    assert db["password"].startswith("${random_password.")


def test_log_groups_have_the_registry_retention(synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    groups = _resources(synthesised.stacks["demo"], "aws_cloudwatch_log_group")
    assert len(groups) == len(_resources(synthesised.stacks["demo"], "aws_ecs_task_definition"))
    for body in groups.values():
        assert body["retention_in_days"] == registry.integer("CLOUDWATCH_LOG_RETENTION_DAYS")
        assert body["name"].startswith(registry.text("CLOUDWATCH_LOG_GROUP_PREFIX"))


def test_demo_vpc_has_public_subnets_only(synthesised: Synthesised) -> None:
    demo = synthesised.stacks["demo"]
    routes = _resources(demo, "aws_route_table")
    for table in routes.values():
        for route in table["route"]:
            assert route.get("gateway_id", "").startswith("${aws_internet_gateway.")
            assert not route.get("nat_gateway_id")
    assert len(_resources(demo, "aws_subnet")) == len(load_registry("dev_min").names("SUBNET_IDS_PUBLIC"))


def test_topics_have_registry_partitions_and_retention(synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    topics = {t["topic_name"]: t for t in _resources(synthesised.stacks["demo"], "confluent_kafka_topic").values()}
    for topic in registry.topics():
        assert topics[topic.name]["partitions_count"] == topic.partitions
        assert topics[topic.name]["config"]["retention.ms"] == str(topic.retention_hours * 3_600_000)
    local = load_registry("local_parity")
    streams = {s["name"]: s for s in _resources(synthesised.stacks["local_parity"], "aws_kinesis_stream").values()}
    for topic in local.topics():
        assert streams[topic.name]["shard_count"] == topic.partitions


def test_local_parity_points_every_service_at_the_local_endpoint(synthesised: Synthesised) -> None:
    registry = load_registry("local_parity")
    endpoint = f"http://{registry.text('LOCAL_BIND_HOST')}:{registry.integer('LOCAL_MOTO_PORT')}"
    endpoints = synthesised.stacks["local_parity"]["provider"]["aws"][0]["endpoints"][0]
    assert {endpoints[s] for s in ("s3", "kinesis", "ssm")} == {endpoint}


SECRET_PATTERNS = [re.compile(p) for p in (r"AKIA[0-9A-Z]{16}", r"-----BEGIN", r"(?i)aws_secret_access_key",
                                           r"postgres(ql)?://[^:]+:[^$@]+@")]


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def test_no_secret_value_in_the_json(synthesised: Synthesised) -> None:
    for name, doc in synthesised.stacks.items():
        for text in _strings(doc):
            for pattern in SECRET_PATTERNS:
                assert not pattern.search(text), f"{name}: secret-looking value {text[:60]!r}"
        for body in _resources(doc, "aws_ssm_parameter").values():
            assert body["type"] == "SecureString"
            value = body["value"]
            is_reference = value.startswith("${") or "${random_password." in value
            assert is_reference or name == "local_parity" or body["name"].endswith("/user"), f"{name}: {body['name']} holds a literal"
        for variable in doc.get("variable", {}).values():
            assert "default" not in variable and variable.get("sensitive") is True
        assert "password" not in {k for b in _resources(doc, "aws_db_instance").values() for k, v in b.items()
                                  if isinstance(v, str) and not v.startswith("${")}
        provider = doc["provider"]["aws"][0]
        assert "access_key" not in provider and "secret_key" not in provider


# ---- the checks above must be able to fail: break a copy of the JSON and watch them catch it ----

def _broken(synthesised: Synthesised, stack: str) -> dict[str, Any]:
    return copy.deepcopy(synthesised.stacks[stack])


def test_tag_check_catches_a_resource_without_tags(synthesised: Synthesised) -> None:
    doc = _broken(synthesised, "demo")
    del next(iter(doc["resource"]["aws_ecs_cluster"].values()))["tags"]
    broken = Synthesised(synthesised.out_dir, 0.0, {"demo": doc})
    with pytest.raises(AssertionError, match="aws_ecs_cluster"):
        test_every_taggable_resource_carries_the_four_tags(broken)


def test_wildcard_check_catches_a_star_resource_on_a_runtime_role(synthesised: Synthesised) -> None:
    doc = _broken(synthesised, "core")
    policy = doc["resource"]["aws_iam_role_policy"]["role_ig_service_policy"]
    statements = json.loads(policy["policy"])
    statements["Statement"].append({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"})
    policy["policy"] = json.dumps(statements)
    broken = Synthesised(synthesised.out_dir, 0.0, {**synthesised.stacks, "core": doc})
    with pytest.raises(AssertionError, match="ROLE_IG_SERVICE: wildcard resource"):
        test_runtime_roles_have_no_wildcard_action_or_resource(broken)


def test_db_check_catches_open_ingress(synthesised: Synthesised) -> None:
    doc = _broken(synthesised, "demo")
    rule = doc["resource"]["aws_security_group"]["sg_db"]["ingress"][0]
    rule["cidr_blocks"] = ["0.0.0.0/0"]
    broken = Synthesised(synthesised.out_dir, 0.0, {**synthesised.stacks, "demo": doc})
    with pytest.raises(AssertionError):
        test_db_security_group_admits_only_the_app_group_and_db_is_private(broken)


def test_bucket_check_catches_a_bucket_without_encryption(synthesised: Synthesised) -> None:
    doc = _broken(synthesised, "core")
    del doc["resource"]["aws_s3_bucket_server_side_encryption_configuration"]["s3_oracle_bucket_encryption"]
    broken = Synthesised(synthesised.out_dir, 0.0, {**synthesised.stacks, "core": doc})
    with pytest.raises(AssertionError, match="s3_oracle_bucket not encrypted"):
        test_every_bucket_is_encrypted_and_public_access_blocked(broken)


def test_nat_and_lb_checks_catch_them(synthesised: Synthesised) -> None:
    doc = _broken(synthesised, "demo")
    doc["resource"]["aws_nat_gateway"] = {"nat": {"subnet_id": "x"}}
    with pytest.raises(AssertionError):
        test_no_nat_gateway_in_any_stack(Synthesised(synthesised.out_dir, 0.0, {"demo": doc}))
    doc = _broken(synthesised, "demo")
    doc["resource"]["aws_lb"] = {"alb": {"name": "x"}}
    with pytest.raises(AssertionError):
        test_no_load_balancer_of_any_kind(Synthesised(synthesised.out_dir, 0.0, {"demo": doc}))


def test_secret_check_catches_a_literal_secret(synthesised: Synthesised) -> None:
    doc = _broken(synthesised, "demo")
    doc["resource"]["aws_ssm_parameter"]["ssm_ssm_db_password_path"]["value"] = "hunter2-literal"
    with pytest.raises(AssertionError, match="holds a literal"):
        test_no_secret_value_in_the_json(Synthesised(synthesised.out_dir, 0.0, {"demo": doc}))


def test_the_rtdl_core_role_reaches_only_the_archive_prefix_the_evidence_prefix_and_its_parameters(
        synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    rtdl = json.dumps(_role_policies(synthesised.stacks["core"])[registry.text("ROLE_RTDL_CORE")])
    archive_prefix = registry.text("S3_ARCHIVE_PREFIX_PATTERN").split("{", 1)[0]
    evidence_prefix = registry.text("S3_EVIDENCE_PREFIX_PATTERN").split("{", 1)[0]
    assert f"s3_archive_bucket.arn}}/{archive_prefix}" in rtdl and f"s3_evidence_bucket.arn}}/{evidence_prefix}" in rtdl
    assert "s3_quarantine_bucket" not in rtdl and "s3_oracle_bucket" not in rtdl
    assert registry.text("SSM_DB_DSN_PATH") in rtdl and registry.text("SSM_IG_API_KEY_PATH") not in rtdl


def test_the_rtdl_core_workers_are_idle_controller_owned_services_and_p8_has_its_task(synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    services = {s["name"]: s for s in _resources(synthesised.stacks["demo"], "aws_ecs_service").values()}
    for key in ("SVC_RTDL_CORE_ARCHIVE_WRITER", "SVC_RTDL_CORE_IEG", "SVC_RTDL_CORE_OFP", "SVC_RTDL_CORE_CSFB"):
        service = services[registry.text(key)]
        assert service["desired_count"] == 0 and set(service["lifecycle"]["ignore_changes"]) == {"task_definition", "desired_count"}
    families = {b["family"]: b for b in _resources(synthesised.stacks["demo"], "aws_ecs_task_definition").values()}
    (container,) = json.loads(families[registry.text("TD_RTDL_CAUGHT_UP")]["container_definitions"])
    assert container["command"] == ["rtdl", "caught-up"]
    assert "role_rtdl_core" in families[registry.text("TD_RTDL_CAUGHT_UP")]["task_role_arn"]


def test_the_decision_lane_role_reaches_only_the_evidence_prefix_the_audit_prefix_and_its_parameters(
        synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    lane = json.dumps(_role_policies(synthesised.stacks["core"])[registry.text("ROLE_DECISION_LANE")])
    evidence_prefix = registry.text("S3_EVIDENCE_PREFIX_PATTERN").split("{", 1)[0]
    audit = registry.text("DLA_AUDIT_PREFIX_PATTERN").replace("{platform_run_id}", "*")
    assert f"s3_evidence_bucket.arn}}/{evidence_prefix}" in lane and f"s3_evidence_bucket.arn}}/{audit}" in lane
    platform_root = registry.text("PLATFORM_RUN_PREFIX_PATTERN").replace("{platform_run_id}", "*")
    assert f"s3_evidence_bucket.arn}}/{platform_root}*\"" not in lane  # not the whole platform prefix (IG receipts)
    assert "s3_archive_bucket" not in lane and "s3_quarantine_bucket" not in lane and "s3_oracle_bucket" not in lane
    assert registry.text("SSM_DB_DSN_PATH") in lane and registry.text("SSM_IG_API_KEY_PATH") not in lane


def test_the_decision_lane_workers_are_idle_controller_owned_services_and_p9_has_its_task(synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    services = {s["name"]: s for s in _resources(synthesised.stacks["demo"], "aws_ecs_service").values()}
    families = {b["family"]: b for b in _resources(synthesised.stacks["demo"], "aws_ecs_task_definition").values()}
    for key in ("SVC_DECISION_LANE_DL", "SVC_DECISION_LANE_DF", "SVC_DECISION_LANE_AL", "SVC_DECISION_LANE_DLA"):
        service = services[registry.text(key)]
        assert service["desired_count"] == 0 and set(service["lifecycle"]["ignore_changes"]) == {"task_definition", "desired_count"}
        assert "role_decision_lane" in families[registry.text(key)]["task_role_arn"]  # a daemon's family is its service's name
    (container,) = json.loads(families[registry.text("TD_DECISION_COMMITTED")]["container_definitions"])
    assert container["command"] == ["decision", "committed"]
    assert "role_decision_lane" in families[registry.text("TD_DECISION_COMMITTED")]["task_role_arn"]


def test_the_case_labels_workers_are_idle_controller_owned_services_and_p10_has_its_tasks_under_the_case_labels_role(
        synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    services = {s["name"]: s for s in _resources(synthesised.stacks["demo"], "aws_ecs_service").values()}
    for key in ("SVC_CASE_LABELS_CASE_TRIGGER", "SVC_CM", "SVC_LS"):
        service = services[registry.text(key)]
        assert service["desired_count"] == 0 and set(service["lifecycle"]["ignore_changes"]) == {"task_definition", "desired_count"}
    families = {b["family"]: b for b in _resources(synthesised.stacks["demo"], "aws_ecs_task_definition").values()}
    for key, command in (("TD_LS_BANK_VIEW_INTAKE", ["ls", "ingest-bank-view"]), ("TD_CASE_LABELS_COMMITTED", ["case", "committed"]),
                         ("SVC_CM", ["cm", "run"])):
        (container,) = json.loads(families[registry.text(key)]["container_definitions"])
        assert container["command"] == command
        assert "role_case_labels" in families[registry.text(key)]["task_role_arn"]


def test_the_case_labels_role_reaches_the_evidence_prefix_the_stream_views_and_its_parameters_only(
        synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    role = json.dumps(_role_policies(synthesised.stacks["core"])[registry.text("ROLE_CASE_LABELS")])
    evidence_prefix = registry.text("S3_EVIDENCE_PREFIX_PATTERN").split("{", 1)[0]
    views_prefix = registry.text("ORACLE_STREAM_VIEW_ROOT_PATTERN").split("{", 1)[0]
    assert f"s3_evidence_bucket.arn}}/{evidence_prefix}" in role and f"s3_oracle_bucket.arn}}/{views_prefix}" in role
    assert "s3_archive_bucket" not in role and "s3_quarantine_bucket" not in role
    assert registry.text("SSM_DB_DSN_PATH") in role and registry.text("SSM_IG_API_KEY_PATH") not in role
    assert registry.text("SSM_DB_PASSWORD_PATH") not in role  # the owner's credentials stay with the migrations job


def test_the_reporter_role_reads_truth_and_the_archive_writes_evidence_only_and_never_quarantine(
        synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    role = json.dumps(_role_policies(synthesised.stacks["core"])[registry.text("ROLE_REPORTER_SINGLE_WRITER")])
    assert "s3_oracle_bucket" in role and "s3_archive_bucket" in role  # decision quality: truth joined to the traffic
    assert "s3_quarantine_bucket" not in role
    assert registry.text("SSM_DB_DSN_PATH") in role and registry.text("SSM_DB_PASSWORD_PATH") not in role
