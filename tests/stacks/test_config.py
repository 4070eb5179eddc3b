"""Bad registry input stops configuration with one error naming the key (before any cdktn import)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from runtime.components import of_kind
from runtime.errors import PlatformError
from stacks.config import StackConfigInvalid, core_config, demo_config, local_parity_config
from tests.stacks.conftest import SHA, registry_document, write_registry

runner = CliRunner()


def test_repository_registry_configures_every_stack() -> None:
    core = core_config()
    demo = demo_config(git_sha=SHA, window_end_utc="2026-11-23T23:00Z")
    local = local_parity_config()
    assert len(core.buckets) == 4 and core.runtime_roles
    assert demo.image_tag == f"git-{SHA}" and len([t for t in demo.tasks if t.daemon]) == len(of_kind("daemon"))
    assert local.topics


def test_registry_missing_a_handle_names_the_key(tmp_path: Path) -> None:
    doc = registry_document()
    del doc["environments"]["dev_min"]["ecs"]["ECS_CLUSTER_NAME"]
    path = write_registry(tmp_path, doc)
    with pytest.raises(PlatformError) as e:
        demo_config(git_sha=SHA, registry_file=path)
    assert "ECS_CLUSTER_NAME" in e.value.message and "(and" not in e.value.message


def test_topic_with_zero_partitions_names_the_key(tmp_path: Path) -> None:
    doc = registry_document()
    doc["environments"]["dev_min"]["topics"]["FP_BUS_RTDL_V1"]["partitions"] = 0
    path = write_registry(tmp_path, doc)
    with pytest.raises(PlatformError) as e:
        demo_config(git_sha=SHA, registry_file=path)
    assert "FP_BUS_RTDL_V1" in e.value.message


def test_budget_threshold_above_the_cap_names_the_key(tmp_path: Path) -> None:
    doc = registry_document()
    doc["environments"]["dev_min"]["settings"]["AWS_BUDGET_ALERT_THRESHOLDS"] = [10, 20, 45]
    path = write_registry(tmp_path, doc)
    with pytest.raises(StackConfigInvalid) as e:
        core_config(registry_file=path)
    assert "AWS_BUDGET_ALERT_THRESHOLDS" in e.value.message and "45" in e.value.message
    assert e.value.code == "STACK_CONFIG_INVALID"


def test_budget_thresholds_that_are_not_numbers_are_refused(tmp_path: Path) -> None:
    doc = registry_document()
    doc["environments"]["dev_min"]["settings"]["AWS_BUDGET_ALERT_THRESHOLDS"] = ["ten"]
    with pytest.raises(StackConfigInvalid, match="AWS_BUDGET_ALERT_THRESHOLDS"):
        core_config(registry_file=write_registry(tmp_path, doc))


def test_non_hex_git_sha_is_refused() -> None:
    with pytest.raises(StackConfigInvalid, match="IMAGE_TAG_GIT_SHA_PATTERN"):
        demo_config(git_sha="latest")


def test_shared_core_bucket_names_are_refused(tmp_path: Path) -> None:
    doc = registry_document()
    buckets = doc["environments"]["dev_min"]["buckets"]
    buckets["S3_ARCHIVE_BUCKET"] = buckets["S3_EVIDENCE_BUCKET"]
    with pytest.raises(StackConfigInvalid, match="distinct"):
        core_config(registry_file=write_registry(tmp_path, doc))


@pytest.mark.parametrize(("mutate", "key"), [
    (lambda d: d["environments"]["dev_min"]["topics"]["FP_BUS_AUDIT_V1"].update(partitions=0), "FP_BUS_AUDIT_V1"),
    (lambda d: d["environments"]["dev_min"]["settings"].update(AWS_BUDGET_ALERT_THRESHOLDS=[10, 31]), "AWS_BUDGET_ALERT_THRESHOLDS"),
    (lambda d: d["environments"]["dev_min"]["iam"].pop("ROLE_IG_SERVICE"), "ROLE_IG_SERVICE"),
])
def test_fp_stacks_synth_exits_1_with_one_line_naming_the_key_and_writes_nothing(tmp_path: Path, mutate, key) -> None:
    doc = registry_document()
    mutate(doc)
    path = write_registry(tmp_path, doc)
    out = tmp_path / "out"
    result = runner.invoke(app, ["stacks", "synth", "--env", "dev_min", "--registry", str(path), "--out", str(out),
                                 "--git-sha", SHA])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and key in lines[0] and lines[0].startswith("error"), result.output
    assert not out.exists()


@pytest.mark.parametrize("args", [["--stack", "nope"], ["--env", "prod"], ["--env", "local_parity", "--stack", "core"]])
def test_fp_stacks_synth_refuses_unknown_stack_or_env(args: list[str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["stacks", "synth", *args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "UNKNOWN_" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("group", "key", "copy_from"), [
    ("ssm", "SSM_DB_USER_PATH", "SSM_DB_PASSWORD_PATH"),
    ("iam", "ROLE_SR_TASK", "ROLE_WSP_TASK"),
    ("ecs", "TD_SR", "TD_WSP"),
])
def test_two_handles_naming_one_resource_are_refused(tmp_path: Path, group: str, key: str, copy_from: str) -> None:
    doc = registry_document()
    doc["environments"]["dev_min"][group][key] = doc["environments"]["dev_min"][group][copy_from]
    with pytest.raises(StackConfigInvalid) as e:
        core_config(registry_file=write_registry(tmp_path, doc)) if group != "ecs" else \
            demo_config(git_sha=SHA, registry_file=write_registry(tmp_path, doc))
    assert copy_from in e.value.message or key in e.value.message


def test_duplicated_topic_name_is_refused(tmp_path: Path) -> None:
    doc = registry_document()
    topics = doc["environments"]["dev_min"]["topics"]
    topics["FP_BUS_AUDIT_V1"]["name"] = topics["FP_BUS_RTDL_V1"]["name"]
    with pytest.raises(StackConfigInvalid, match=r"FP_BUS_AUDIT_V1.*FP_BUS_RTDL_V1|FP_BUS_RTDL_V1.*FP_BUS_AUDIT_V1"):
        demo_config(git_sha=SHA, registry_file=write_registry(tmp_path, doc))


def test_oversized_partition_count_is_refused_by_the_registry_schema(tmp_path: Path) -> None:
    doc = registry_document()
    doc["environments"]["dev_min"]["topics"]["FP_BUS_RTDL_V1"]["partitions"] = 100_000
    with pytest.raises(PlatformError, match="FP_BUS_RTDL_V1"):
        demo_config(git_sha=SHA, registry_file=write_registry(tmp_path, doc))


@pytest.mark.parametrize("command", [[], ["synth"], ["show"], ["cost"]])
def test_every_stacks_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, ["stacks", *command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_consumer_group_pattern_without_a_literal_prefix_is_refused(tmp_path: Path) -> None:
    doc = registry_document()
    doc["shared"]["packs"]["CONSUMER_GROUP_ID_PATTERN"] = "{component}-{platform_run_id}"
    with pytest.raises(StackConfigInvalid) as e:
        demo_config(git_sha=SHA, registry_file=write_registry(tmp_path, doc))
    assert "CONSUMER_GROUP_ID_PATTERN" in e.value.message


def test_a_daemon_of_the_component_map_in_no_pack_is_refused(tmp_path: Path) -> None:
    doc = registry_document()
    doc["shared"]["packs"]["PACKS"]["control_ingress"] = []
    with pytest.raises(StackConfigInvalid) as e:
        demo_config(git_sha=SHA, registry_file=write_registry(tmp_path, doc))
    assert "PACKS" in e.value.message and "'ig'" in e.value.message
