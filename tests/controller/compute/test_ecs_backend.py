"""The ECS adapter against moto's in-process ECS/EC2: jobs waited and checked, services scaled and scoped.

How moto behaves (moto 5.2.5, moto/ecs/models.py), which these tests rely on and work around:
- a task starts RUNNING and moves one state per `describe_tasks` (RUNNING -> DEACTIVATING ->
  STOPPING -> DEPROVISIONING -> STOPPED): it does stop by itself after four polls. Tests that need
  a task to stay up freeze that progression with moto's state manager.
- every container reports `exitCode: 0`, hard-coded, also after `stop_task`; real ECS reports the
  process's code (137 after a SIGKILL) or none when the container never started. Tests set the
  code on moto's task model to say what the real container did.
- services never launch tasks, `update_service(desiredCount=n)` sets `runningCount=n` at once, and
  `list_tasks(serviceName=...)` ignores the service. Tests play ECS's scheduler by starting a task
  with group `service:<name>` from the service's current task definition.
- `run_task` needs container-level memory and a VPC with DNS hostnames (the demo VPC has both on).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.moto_api import state_manager

from controller.compute.ecs_backend import EcsBackend
from controller.compute.factory import backend_for
from controller.compute.local_backend import LocalBackend
from controller.compute.port import ComputeBackend
from controller.devmin.aws import AwsClients
from runtime.components import COMPONENTS
from runtime.contracts.registry import load_registry
from runtime.errors import PlatformError
from runtime.evidence.writer import BundleTarget, EvidenceWriter
from runtime.store.local import FolderStore
from tests.support.ecs_account import PLANNED_DAEMONS, Env, ecs_account, planned_daemon, register_task_definition

RUN = "platform_20261123T120000Z"
OTHER_RUN = "platform_20261123T130000Z"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """The mocked account, with stand-ins for the daemons of later planes so packs of several services exist."""
    for name in PLANNED_DAEMONS:
        monkeypatch.setitem(COMPONENTS, name, planned_daemon(name))
    with mock_aws(), ecs_account(load_registry("dev_min")) as account:
        yield account


@pytest.fixture
def tasks_stay_up() -> Iterator[None]:
    """Freeze moto's task progression: a task stays RUNNING until stop_task."""
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
    yield
    state_manager.unset_transition("ecs::task")


class FakeClock:
    """A clock the wait loop reads; each sleep advances it, so timeouts take no real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 1.0)


# --- jobs ---------------------------------------------------------------------------------

def test_job_runs_as_fargate_task_with_run_scope_and_is_waited_to_stopped(env: Env) -> None:
    result = env.backend.run_job("oracle_seed", ["oracle", "seed", "--gate", "20"], RUN, progress=env.progress.append)
    assert result.exit_code == 0 and result.task_arn and result.pid is None
    task = env.ecs.describe_tasks(cluster=env.cluster, tasks=[result.task_arn])["tasks"][0]
    assert task["lastStatus"] == "STOPPED" and task["launchType"] == "FARGATE"
    assert task["taskDefinitionArn"].rsplit("/", 1)[-1].startswith(env.registry.text("TD_ORACLE_SEED") + ":")
    override = task["overrides"]["containerOverrides"][0]
    assert override["name"] == "oracle_seed"
    assert override["command"] == ["oracle", "seed", "--gate", "20"]  # after the image ENTRYPOINT, never repeating it
    assert {"name": "REQUIRED_PLATFORM_RUN_ID", "value": RUN} in override["environment"]
    assert {"name": "PGAPPNAME", "value": "fp-oracle_seed"} in override["environment"]  # its sessions say who they are
    assert task["startedBy"] == RUN
    assert result.log_location.startswith(f"cloudwatch:/logs/{env.registry.text('TD_ORACLE_SEED')}/oracle_seed/")
    assert env.progress and env.progress[-1].endswith("STOPPED")  # progress reported while waiting


def test_job_network_comes_from_registry_subnets_and_security_groups(env: Env) -> None:
    network = env.backend.network()["awsvpcConfiguration"]
    assert network["subnets"] == env.subnet_ids and network["securityGroups"] == [env.sg_id]
    assert network["assignPublicIp"] == "ENABLED"  # public subnets, no NAT


def _stop_with(env: Env, exit_code: int | None, reason: str) -> Any:
    """A progress callback that, on the first poll, makes the running task end the way a real one would."""
    done: list[bool] = []

    def on_progress(line: str) -> None:
        if done:
            return
        done.append(True)
        arn = env.ecs.list_tasks(cluster=env.cluster)["taskArns"][-1]
        env.moto_task(arn).containers[0].exitCode = exit_code
        env.ecs.stop_task(cluster=env.cluster, task=arn, reason=reason)

    return on_progress


@pytest.mark.usefixtures("tasks_stay_up")
def test_task_stopped_with_non_zero_exit_is_ecs_task_failed_naming_arn_and_reason(env: Env) -> None:
    with pytest.raises(PlatformError) as e:
        env.backend.run_job("sr", ["sr", "run"], RUN, progress=_stop_with(env, 137, "drill: stopped by operator"))
    arn = env.ecs.list_tasks(cluster=env.cluster)["taskArns"][-1]
    assert e.value.code == "ECS_TASK_FAILED"
    assert arn in e.value.message and "exited 137" in e.value.message and "drill: stopped by operator" in e.value.message


@pytest.mark.usefixtures("tasks_stay_up")
def test_failed_task_carries_the_jobs_own_error_code_from_its_awslogs_stream(env: Env) -> None:
    region = env.registry.text("AWS_REGION")
    logs = boto3.client("logs", region_name=region)
    family = env.registry.text("TD_SR")
    logs.create_log_group(logGroupName=f"/logs/{family}")
    stop = _stop_with(env, 1, "Essential container exited")

    def on_progress(line: str) -> None:
        arn = env.ecs.list_tasks(cluster=env.cluster)["taskArns"][-1]
        stream = f"sr/sr/{arn.rsplit('/', 1)[-1]}"
        if not logs.describe_log_streams(logGroupName=f"/logs/{family}", logStreamNamePrefix=stream)["logStreams"]:
            logs.create_log_stream(logGroupName=f"/logs/{family}", logStreamName=stream)
            now_ms = int(time.time() * 1000)
            logs.put_log_events(logGroupName=f"/logs/{family}", logStreamName=stream, logEvents=[
                {"timestamp": now_ms, "message": "checking the seal"},
                {"timestamp": now_ms + 1, "message": "error LEASE_BUSY: scenario lease held by another run -> wait for the TTL"}])
        stop(line)

    with pytest.raises(PlatformError) as e:
        env.backend.run_job("sr", ["sr", "run"], RUN, progress=on_progress)
    assert e.value.code == "LEASE_BUSY" and e.value.next_step == "wait for the TTL"
    assert "exited 1" in e.value.message and "lease held" in e.value.message


@pytest.mark.usefixtures("tasks_stay_up")
def test_failed_task_without_a_readable_log_is_ecs_task_failed(env: Env) -> None:
    result = env.backend.run_job("sr", ["sr", "run"], RUN, check=False, progress=_stop_with(env, 1, "Essential container exited"))
    assert result.exit_code == 1 and result.failure is None


@pytest.mark.usefixtures("tasks_stay_up")
def test_non_zero_exit_is_returned_when_not_checked(env: Env) -> None:
    result = env.backend.run_job("sr", ["sr", "run"], RUN, check=False, progress=_stop_with(env, 3, "Essential container exited"))
    assert result.exit_code == 3 and result.stopped_reason == "Essential container exited"


@pytest.mark.usefixtures("tasks_stay_up")
def test_task_stopped_without_exit_code_is_ecs_task_failed(env: Env) -> None:
    with pytest.raises(PlatformError) as e:
        env.backend.run_job("wsp", ["wsp", "run"], RUN, check=False,
                            progress=_stop_with(env, None, "CannotPullContainerError: image not found"))
    assert e.value.code == "ECS_TASK_FAILED" and "without an exit code" in e.value.message
    assert "CannotPullContainerError" in e.value.message and "arn:aws:ecs:" in e.value.message


@pytest.mark.usefixtures("tasks_stay_up")
def test_stop_task_in_moto_reports_exit_code_zero(env: Env) -> None:
    """What moto itself says after stop_task (so tests above set the code a real container would have)."""
    arn = env.schedule(env.registry.text("SVC_IG"))
    env.ecs.stop_task(cluster=env.cluster, task=arn, reason="manual")
    task = env.ecs.describe_tasks(cluster=env.cluster, tasks=[arn])["tasks"][0]
    assert task["lastStatus"] == "STOPPED" and task["stoppedReason"] == "manual"
    assert task["containers"][0]["exitCode"] == 0


@pytest.mark.usefixtures("tasks_stay_up")
def test_task_that_never_stops_is_ecs_task_timeout_after_the_bound(env: Env) -> None:
    clock = FakeClock()
    backend = EcsBackend(env.registry, env.backend.clients, poll_seconds=5.0, clock=clock, sleep=clock.sleep)
    with pytest.raises(PlatformError) as e:
        backend.run_job("reporter", ["ig", "ready-check"], RUN, timeout=30.0, progress=env.progress.append)
    assert e.value.code == "ECS_TASK_TIMEOUT" and "RUNNING" in e.value.message and "arn:aws:ecs:" in e.value.message
    assert 30.0 <= clock.now <= 35.0 and len(env.progress) == 7  # polled every 5 s until the bound


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("component,argv,code", [
    ("orcale_seed", ["x"], "UNKNOWN_COMPONENT"),
    ("ig", ["ig"], "UNKNOWN_COMPONENT"),  # a daemon, not a job
    ("sr", [], "JOB_ARGV_INVALID"),
    ("sr", ["sr", ""], "JOB_ARGV_INVALID"),
    ("sr", ["sr", "run", "x" * 8000], "JOB_ARGV_INVALID"),  # above the overrides limit of run_task
    ("sr", ["sr", "lease-clear"], "JOB_ARGV_INVALID"),  # not a command of the sr job
    ("wsp", ["sr", "run"], "JOB_ARGV_INVALID"),  # another job's command
    ("reporter", ["ig", "serve"], "JOB_ARGV_INVALID"),
])
def test_bad_job_input_is_refused_before_any_task_starts(env: Env, component: str, argv: list[str], code: str) -> None:
    with pytest.raises(PlatformError) as e:
        env.backend.run_job(component, argv, RUN)
    assert e.value.code == code
    assert env.ecs.list_tasks(cluster=env.cluster)["taskArns"] == []


@pytest.mark.parametrize("extra", [{"FP_DB_DSN": "postgresql://u:p@h/db"}, {"REQUIRED_PLATFORM_RUN_ID": OTHER_RUN}])
def test_job_env_may_not_carry_secrets_or_another_run_scope(env: Env, extra: dict[str, str]) -> None:
    with pytest.raises(PlatformError) as e:
        env.backend.run_job("sr", ["sr", "run"], RUN, extra_env=extra)
    assert e.value.code == "JOB_ENV_INVALID"
    assert env.ecs.list_tasks(cluster=env.cluster)["taskArns"] == []


def test_task_definition_with_a_plain_secret_is_refused(env: Env) -> None:
    family = env.registry.text("TD_SR")
    register_task_definition(env.ecs, env.registry, "sr", family,
              environment=[{"name": env.registry.text("ENVVAR_IG_API_KEY"), "value": "plain-text-key"}])
    with pytest.raises(PlatformError) as e:
        env.backend.run_job("sr", ["sr", "run"], RUN)
    assert e.value.code == "SECRET_IN_PLAIN_ENV" and "FP_IG_API_KEY" in e.value.message
    assert env.ecs.list_tasks(cluster=env.cluster)["taskArns"] == []


def test_missing_task_definition_and_network_fail_with_clear_codes(env: Env) -> None:
    env.ecs.deregister_task_definition(taskDefinition=f"{env.registry.text('TD_WSP')}:1")
    with pytest.raises(PlatformError) as e:
        env.backend.run_job("wsp", ["wsp", "run"], RUN)
    assert e.value.code == "ECS_TASK_DEFINITION_MISSING" and env.registry.text("TD_WSP") in e.value.message
    ec2 = boto3.client("ec2", region_name=env.registry.text("AWS_REGION"))
    ec2.delete_tags(Resources=[env.subnet_ids[1]], Tags=[{"Key": "Name"}])
    with pytest.raises(PlatformError) as e:
        env.backend.run_job("sr", ["sr", "run"], RUN)
    assert e.value.code == "ECS_NETWORK_MISSING" and env.registry.names("SUBNET_IDS")[1] in e.value.message


def test_registry_without_ecs_handles_fails_naming_the_key() -> None:
    backend = EcsBackend(load_registry("local_parity"), AwsClients(region="us-east-1"))
    with pytest.raises(PlatformError) as e:
        backend.run_job("sr", ["sr", "run"], RUN)
    assert e.value.code == "HANDLE_MISSING" and "TD_SR" in e.value.message


def test_unknown_pack_is_refused(env: Env) -> None:
    with pytest.raises(PlatformError) as e:
        env.backend.start_pack("rtdl", RUN)
    assert e.value.code == "UNKNOWN_PACK"


@pytest.mark.parametrize("run_id", ["", "platform_latest", "20261123T120000Z"])
def test_malformed_run_scope_is_refused_before_anything_changes(env: Env, run_id: str) -> None:
    for call in (lambda: env.backend.run_job("sr", ["sr", "run"], run_id), lambda: env.backend.start_pack("control_ingress", run_id)):
        with pytest.raises(PlatformError) as e:
            call()
        assert e.value.code == "RUN_ID_INVALID"
    assert env.ecs.list_tasks(cluster=env.cluster)["taskArns"] == []
    service = env.ecs.describe_services(cluster=env.cluster, services=[env.registry.text("SVC_IG")])["services"][0]
    assert service["desiredCount"] == 0 and service["taskDefinition"].endswith(":1")


# --- daemons ------------------------------------------------------------------------------

def _scheduler(env: Env, pack: str) -> Any:
    """Progress callback that plays ECS's scheduler once the services were updated."""
    started: set[str] = set()

    def on_progress(line: str) -> None:
        env.progress.append(line)
        for _, name in env.backend.pack_services(pack):
            service = env.ecs.describe_services(cluster=env.cluster, services=[name])["services"][0]
            key = f"{name}@{service['taskDefinition']}"
            if service["desiredCount"] == 1 and key not in started:
                started.add(key)
                env.schedule(name)

    return on_progress


@pytest.mark.usefixtures("tasks_stay_up")
def test_pack_services_scale_to_one_scoped_to_the_run_with_task_arns_in_evidence(env: Env) -> None:
    state = env.backend.start_pack("rtdl_core", RUN, progress=_scheduler(env, "rtdl_core"))
    assert state.running and state.run_scope == RUN and state.state == "RUNNING"
    rows = state.to_evidence()
    assert rows["desired_count"] == rows["running_count"] == 4
    for process in rows["processes"]:
        assert process["task_arn"].startswith("arn:aws:ecs:") and process["service"] and process["pid"] is None
    for _, name in env.backend.pack_services("rtdl_core"):
        service = env.ecs.describe_services(cluster=env.cluster, services=[name])["services"][0]
        assert service["desiredCount"] == 1 and service["runningCount"] == 1
        definition = env.ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        container = definition["containerDefinitions"][0]
        assert {"name": "REQUIRED_PLATFORM_RUN_ID", "value": RUN} in container["environment"]
        assert container["secrets"] and all(s["valueFrom"].startswith("arn:aws:ssm:") for s in container["secrets"])
        assert definition["revision"] == 2  # one new revision: the run scope, nothing else changed
    assert any("running" in line for line in env.progress)


@pytest.mark.usefixtures("tasks_stay_up")
def test_p2_evidence_rows_of_the_ecs_backend_validate_and_carry_task_arns(env: Env, tmp_path: Path) -> None:
    state = env.backend.start_pack("control_ingress", RUN, progress=_scheduler(env, "control_ingress"))
    writer = EvidenceWriter(env.registry, RUN, [BundleTarget(FolderStore(tmp_path), "bundle/")])
    document = {**writer.base_fields("P2", ["PACKS", "REQUIRED_PLATFORM_RUN_ID_ENV_KEY", "DAEMONS_READY_PATH_PATTERN"]),
                "packs": [state.to_evidence()], "all_running": state.running,
                "run_scope": {"env_key": env.backend.scope_key, "value": RUN}}
    writer.write("DAEMONS_READY_PATH_PATTERN", document)
    written = json.loads(next(tmp_path.rglob("daemons_ready.json")).read_text())
    process = written["packs"][0]["processes"][0]
    assert process["task_arn"] == state.processes[0].task_arn and process["service"] == env.registry.text("SVC_IG")


@pytest.mark.usefixtures("tasks_stay_up")
def test_starting_a_running_pack_for_the_same_run_keeps_it(env: Env) -> None:
    first = env.backend.start_pack("control_ingress", RUN, progress=_scheduler(env, "control_ingress"))
    again = env.backend.start_pack("control_ingress", RUN)
    assert again.processes[0].task_arn == first.processes[0].task_arn  # no second task: no duplicate consumer
    name = env.registry.text("SVC_IG")
    definition = env.ecs.describe_services(cluster=env.cluster, services=[name])["services"][0]["taskDefinition"]
    assert definition.endswith(":2")


@pytest.mark.usefixtures("tasks_stay_up")
def test_a_pack_of_another_run_is_rescoped_and_old_tasks_do_not_count(env: Env) -> None:
    env.backend.start_pack("control_ingress", OTHER_RUN, progress=_scheduler(env, "control_ingress"))
    clock = FakeClock()
    backend = EcsBackend(env.registry, env.backend.clients, poll_seconds=5.0, clock=clock, sleep=clock.sleep)
    with pytest.raises(PlatformError) as e:  # nobody starts a task of the new revision: the old run's task is not enough
        backend.start_pack("control_ingress", RUN, timeout=20.0)
    assert e.value.code == "ECS_SERVICE_NOT_RUNNING" and env.registry.text("SVC_IG") in e.value.message
    state = env.backend.start_pack("control_ingress", RUN, progress=_scheduler(env, "control_ingress"))
    assert state.running and state.run_scope == RUN


@pytest.mark.usefixtures("tasks_stay_up")
def test_next_run_scopes_the_familys_latest_revision_so_a_reapplied_image_is_used(env: Env) -> None:
    env.backend.start_pack("control_ingress", OTHER_RUN, progress=_scheduler(env, "control_ingress"))
    name = env.registry.text("SVC_IG")
    # terraform apply of the demo with a new image: a new base revision; the service (ignore_changes) stays put.
    register_task_definition(env.ecs, env.registry, "ig", name, image="repo:git-4567")
    env.backend.start_pack("control_ingress", RUN, progress=_scheduler(env, "control_ingress"))
    current = env.ecs.describe_services(cluster=env.cluster, services=[name])["services"][0]["taskDefinition"]
    (container,) = env.ecs.describe_task_definition(taskDefinition=current)["taskDefinition"]["containerDefinitions"]
    assert container["image"] == "repo:git-4567"
    assert {"name": "REQUIRED_PLATFORM_RUN_ID", "value": RUN} in container["environment"]


@pytest.mark.usefixtures("tasks_stay_up")
def test_service_that_never_reaches_running_times_out_naming_it(env: Env) -> None:
    clock = FakeClock()
    backend = EcsBackend(env.registry, env.backend.clients, poll_seconds=5.0, clock=clock, sleep=clock.sleep)
    ig = env.registry.text("SVC_IG")

    def crash_loop(line: str) -> None:
        env.moto_service(ig).running_count = 0  # the task keeps failing its start: ECS reports 0 running

    with pytest.raises(PlatformError) as e:
        backend.start_pack("control_ingress", RUN, timeout=15.0, progress=crash_loop)
    assert e.value.code == "ECS_SERVICE_NOT_RUNNING" and ig in e.value.message and clock.now >= 15.0


@pytest.mark.usefixtures("tasks_stay_up")
def test_pack_with_one_service_down_is_degraded_not_running(env: Env) -> None:
    env.backend.start_pack("rtdl_core", RUN, progress=_scheduler(env, "rtdl_core"))
    env.moto_service(env.registry.text("SVC_RTDL_CORE_OFP")).running_count = 0
    state = env.backend.pack_state("rtdl_core")
    assert state.state == "DEGRADED" and not state.running
    assert (state.running_count, state.desired_count) == (3, 4)
    assert [p.name for p in state.processes if p.status != "RUNNING"] == ["ofp"]


@pytest.mark.usefixtures("tasks_stay_up")
def test_stop_pack_scales_services_to_zero(env: Env) -> None:
    env.backend.start_pack("case_labels", RUN, progress=_scheduler(env, "case_labels"))
    assert env.backend.stop_pack("case_labels") is True
    for _, name in env.backend.pack_services("case_labels"):
        service = env.ecs.describe_services(cluster=env.cluster, services=[name])["services"][0]
        assert service["desiredCount"] == 0 and service["runningCount"] == 0
    assert env.backend.pack_state("case_labels").state == "STOPPED"
    assert env.backend.stop_pack("case_labels") is False  # nothing was running


def test_pack_with_jobs_gets_services_only_for_its_daemons(env: Env) -> None:
    services = env.backend.pack_services("obs_gov")
    assert services == [("platform_run_reporter", "fp-dev-min-obs-reporter"),
                        ("env_conformance", "fp-dev-min-obs-env-conformance")]  # the reporter job is TD_REPORTER


def test_pack_whose_components_are_not_built_fails_closed_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(COMPONENTS, "archive_writer", raising=False)
    backend = EcsBackend(load_registry("dev_min"), AwsClients(region="eu-west-2"))
    with pytest.raises(PlatformError) as e:
        backend.start_pack("rtdl_core", RUN)
    assert e.value.code == "PHASE_NOT_BUILT" and "archive_writer" in e.value.message


def test_missing_service_is_ecs_service_missing(env: Env) -> None:
    name = env.registry.text("SVC_CM")
    env.ecs.delete_service(cluster=env.cluster, service=name, force=True)
    with pytest.raises(PlatformError) as e:
        env.backend.start_pack("case_labels", RUN)
    assert e.value.code == "ECS_SERVICE_MISSING" and name in e.value.message


# --- factory ------------------------------------------------------------------------------

def test_backend_for_picks_local_for_local_parity_and_ecs_for_dev_min(tmp_path: Any) -> None:
    local = backend_for(load_registry("local_parity"), runs_root=tmp_path, environment={})
    remote = backend_for(load_registry("dev_min"), clients=AwsClients(region="eu-west-2"))
    assert isinstance(local, LocalBackend) and isinstance(remote, EcsBackend)
    assert all(isinstance(b, ComputeBackend) for b in (local, remote))
    with pytest.raises(PlatformError) as e:
        backend_for(load_registry("local_parity"))
    assert e.value.code == "BACKEND_CONFIG_INVALID"



PINNED = "123456789012.dkr.ecr.eu-west-2.amazonaws.com/fp@sha256:" + "d" * 64


def test_a_pinned_image_is_what_every_job_task_runs(env: Env) -> None:
    env.backend.image = PINNED
    result = env.backend.run_job("sr", ["sr", "run"], RUN)
    task = env.ecs.describe_tasks(cluster=env.cluster, tasks=[result.task_arn])["tasks"][0]
    definition = env.ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    assert [c["image"] for c in definition["containerDefinitions"]] == [PINNED]
    assert definition["containerDefinitions"][0]["secrets"]  # SSM references copied, never values
    again = env.backend.run_job("sr", ["sr", "run"], RUN)  # the same run reuses its pinned revision
    task2 = env.ecs.describe_tasks(cluster=env.cluster, tasks=[again.task_arn])["tasks"][0]
    assert task2["taskDefinitionArn"] == task["taskDefinitionArn"]


@pytest.mark.usefixtures("tasks_stay_up")
def test_a_pinned_image_is_what_the_services_of_a_pack_run(env: Env) -> None:
    env.backend.image = PINNED
    state = env.backend.start_pack("control_ingress", RUN, timeout=60, progress=_scheduler(env, "control_ingress"))
    assert state.running and state.run_scope == RUN
    service = env.ecs.describe_services(cluster=env.cluster, services=[env.registry.text("SVC_IG")])["services"][0]
    definition = env.ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert [c["image"] for c in definition["containerDefinitions"]] == [PINNED]
