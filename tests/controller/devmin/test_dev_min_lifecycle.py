"""`dev-min-up/run --env dev_min` through the phase machine, against moto (ECS, EC2, RDS, S3, SSM,
Budgets in-process) with the Terraform runner and the compute backend as the seams.

What cannot run here is said by the tests too: P(-1) needs a Docker engine (none on this machine),
and jobs on moto's ECS execute nothing, so a job that "exits 0" without evidence must not pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from moto.moto_api import state_manager
from typer.testing import CliRunner

from controller.cli.main import app
from controller.compute.ecs_backend import EcsBackend
from controller.devmin.aws import AwsClients
from controller.devmin.kafka import plaintext_admin
from controller.devmin.terraform import stack_from_registry
from controller.devmin.wiring import DevMinAdapters
from controller.lifecycle import dev_min_down_cloud, dev_min_run_cloud, dev_min_up_cloud, run_writer
from controller.phases.base import RunContext, execute
from controller.phases.machine import Slice
from controller.phases.p00_dev_min import DevMinSubstrateReady
from controller.runs import RunFolders
from runtime.components import COMPONENTS
from runtime.contracts.registry import Registry, load_registry
from runtime.errors import PlatformError
from runtime.evidence.writer import schema_violations
from runtime.settings import load_settings
from tests.controller.devmin.conftest import DevMinWorld
from tests.support.ecs_account import ecs_account


def _record(evidence: Path, registry: Registry, phase_id: str) -> dict[str, Any]:
    return dict(json.loads((evidence / registry.render("PHASE_RECORD_PATH_PATTERN", phase_id=phase_id)).read_text()))


def test_up_without_a_docker_engine_fails_p_minus_1_and_never_applies_demo(dev_min_world: DevMinWorld, tmp_path: Path) -> None:
    w = dev_min_world
    adapters = DevMinAdapters(runner=w.runner, aws=w.aws, kafka_admin=plaintext_admin)
    with pytest.raises(PlatformError) as e:
        dev_min_up_cloud(w.registry, options={"devmin_adapters": adapters}, base=tmp_path)
    assert e.value.code == "DOCKER_ENGINE_UNAVAILABLE"
    assert w.runner.applied == ["core"]  # core holds ECR and evidence; demo (the costly part) never applied
    folders = RunFolders.from_registry(w.registry, tmp_path)
    record = _record(folders.evidence_dir(folders.active_run_id()), w.registry, "P(-1)")
    assert record["state"] == "FAIL" and record["error_code"] == "DOCKER_ENGINE_UNAVAILABLE" and record["next_step"]


def test_dev_min_p0_applies_core_then_demo_and_records_a_valid_snapshot_in_the_run(dev_min_world: DevMinWorld,
                                                                                   tmp_path: Path) -> None:
    w = dev_min_world
    w.runner.apply(stack_from_registry(w.registry, "core"))  # as dev-min-up does before P(-1)
    folders = RunFolders.from_registry(w.registry, tmp_path)
    run_id = folders.new_run()
    settings = load_settings(environment="dev_min")
    ctx = RunContext(w.registry, run_id, folders, run_writer(w.registry, folders, run_id, settings), settings,
                     {"devmin_adapters": DevMinAdapters(runner=w.runner, aws=w.aws, kafka_admin=plaintext_admin)})
    record = execute(DevMinSubstrateReady(), ctx)
    assert record["state"] == "PASS" and w.runner.applied == ["core", "core", "demo"]
    snapshot = json.loads((folders.evidence_dir(run_id) / w.registry.text("SUBSTRATE_SNAPSHOT_PATH_PATTERN")).read_text())
    assert schema_violations("evidence/substrate_snapshot.schema.json", snapshot) == []
    assert snapshot["environment"] == "dev_min" and snapshot["all_ok"] and snapshot["database"]["reachable"]
    assert {c["name"] for c in snapshot["checks"]} >= {"nat_gateways_zero", "load_balancers_zero", "ssm_secrets_present"}
    assert all(b["writable"] for b in snapshot["buckets"])
    assert snapshot["endpoints"]["demo_apply_snapshot"].startswith("s3://")


def test_dev_min_down_destroys_demo_only_and_records_p12_with_its_proof_in_the_run(dev_min_world: DevMinWorld,
                                                                                    tmp_path: Path) -> None:
    w = dev_min_world
    wired = DevMinAdapters(runner=w.runner, aws=w.aws, kafka_admin=plaintext_admin)
    w.runner.apply(stack_from_registry(w.registry, "core"))
    folders = RunFolders.from_registry(w.registry, tmp_path)
    run_id = folders.new_run()
    settings = load_settings(environment="dev_min")
    ctx = RunContext(w.registry, run_id, folders, run_writer(w.registry, folders, run_id, settings), settings,
                     {"devmin_adapters": wired})
    execute(DevMinSubstrateReady(), ctx)
    result = dev_min_down_cloud(w.registry, options={"devmin_adapters": wired}, base=tmp_path)
    assert result.platform_run_id == run_id and result.p12_record["state"] == "PASS"
    assert w.runner.destroyed == ["demo"]
    proof = json.loads((folders.evidence_dir(run_id) / w.registry.text("TEARDOWN_PROOF_PATH_PATTERN")).read_text())
    assert proof["destroy_status"] == "SUCCESS" and proof["leftovers"] == [] and all(proof["confirmed_absent"].values())
    key = w.registry.render("EVIDENCE_RUN_ROOT_PATTERN", platform_run_id=run_id) + w.registry.text("TEARDOWN_PROOF_PATH_PATTERN")
    assert w.clients.client("s3").head_object(Bucket=w.registry.text("S3_EVIDENCE_BUCKET"), Key=key)


def test_dev_min_down_with_a_stray_service_fails_p12_naming_it_and_writes_no_proof(dev_min_world: DevMinWorld,
                                                                                  tmp_path: Path) -> None:
    w = dev_min_world
    wired = DevMinAdapters(runner=w.runner, aws=w.aws, kafka_admin=plaintext_admin)
    w.runner.apply(stack_from_registry(w.registry, "core"))
    w.runner.apply(stack_from_registry(w.registry, "demo"))
    folders = RunFolders.from_registry(w.registry, tmp_path)
    run_id = folders.new_run()
    ecs = w.clients.client("ecs")
    cluster = w.registry.text("ECS_CLUSTER_NAME")
    ecs.create_service(cluster=cluster, serviceName="stray-by-hand", taskDefinition=w.registry.text("TD_SR"), desiredCount=1)
    with pytest.raises(PlatformError) as e:
        dev_min_down_cloud(w.registry, options={"devmin_adapters": wired}, base=tmp_path)
    assert e.value.code == "TEARDOWN_LEFTOVER" and "stray-by-hand" in e.value.message
    record = _record(folders.evidence_dir(run_id), w.registry, "P12")
    assert record["state"] == "FAIL" and record["error_code"] == "TEARDOWN_LEFTOVER"
    assert not (folders.evidence_dir(run_id) / w.registry.text("TEARDOWN_PROOF_PATH_PATTERN")).exists()


# --- dev-min-run on ECS ----------------------------------------------------------------------


class EcsScheduler:
    """Plays ECS's part that moto does not: a service scaled to 1 gets a task of its current
    revision; a one-shot task runs nothing (no image here) and stops with exit code 0."""

    def __init__(self, backend: EcsBackend) -> None:
        self.backend = backend
        self.job_commands: list[tuple[str, list[str], dict[str, str]]] = []
        self.job_images: list[str] = []
        ecs = backend.clients.client("ecs")
        ecs.meta.events.register("after-call.ecs.UpdateService", self._schedule)
        ecs.meta.events.register("after-call.ecs.RunTask", self._finish_job)

    def _schedule(self, parsed: dict[str, Any], **_: Any) -> None:
        service = parsed["service"]
        if service.get("desiredCount"):
            network = self.backend.network()
            self.backend.clients.client("ecs").run_task(
                cluster=self.backend.cluster, taskDefinition=service["taskDefinition"], launchType="FARGATE",
                group=f"service:{service['serviceName']}", networkConfiguration=network)

    def _finish_job(self, parsed: dict[str, Any], **_: Any) -> None:
        for task in parsed.get("tasks", []):
            if str(task.get("group", "")).startswith("service:"):
                continue
            override = task["overrides"]["containerOverrides"][0]
            family = task["taskDefinitionArn"].rsplit("/", 1)[-1].split(":")[0]
            self.job_commands.append((family, override["command"], {e["name"]: e["value"] for e in override["environment"]}))
            definition = self.backend.clients.client("ecs").describe_task_definition(taskDefinition=task["taskDefinitionArn"])
            self.job_images.extend(c["image"] for c in definition["taskDefinition"]["containerDefinitions"])
            self.backend.clients.client("ecs").stop_task(cluster=self.backend.cluster, task=task["taskArn"], reason="done")


def _service_td(backend: EcsBackend, registry: Registry) -> str:
    service = backend.clients.client("ecs").describe_services(cluster=backend.cluster, services=[registry.text("SVC_IG")])
    return str(service["services"][0]["taskDefinition"])


@pytest.fixture
def dev_min_run(tmp_path: Path) -> Any:
    registry = load_registry("dev_min")
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
    try:
        with mock_aws(), ecs_account(registry):
            region = registry.text("AWS_REGION")
            s3 = AwsClients(region=region).client("s3")
            for key in ("S3_EVIDENCE_BUCKET", "S3_ORACLE_BUCKET"):
                s3.create_bucket(Bucket=registry.text(key), CreateBucketConfiguration={"LocationConstraint": region})
            backend = EcsBackend(registry, AwsClients(region=region), poll_seconds=0.0)
            yield registry, backend, EcsScheduler(backend), tmp_path
    finally:
        state_manager.unset_transition("ecs::task")


def _mint_up_run(registry: Registry, base: Path, *, p0_state: str = "PASS") -> str:
    """What a passing `dev-min-up --env dev_min` leaves (P(-1) and P0 records, packaging evidence);
    P(-1) itself needs a Docker engine, which this machine does not have."""
    folders = RunFolders.from_registry(registry, base)
    run_id = folders.new_run()
    writer = run_writer(registry, folders, run_id, load_settings(environment="dev_min"))
    writer.write("PACKAGING_READY_PATH_PATTERN", {
        **writer.base_fields("P(-1)", ["PACKAGING_READY_PATH_PATTERN"]), "environment": "dev_min",
        "image_tag": "git-" + "a" * 40, "image_digest": "sha256:" + "b" * 64, "git_sha": "a" * 40, "git_dirty": False,
        "package_digest": "c" * 64, "smoke_ok": True, "image_reused": False,
        "image_uri": "123456789012.dkr.ecr.eu-west-2.amazonaws.com/fp:git-" + "a" * 40})
    for phase_id, name, state in (("P(-1)", "PACKAGING_READY", "PASS"), ("P0", "SUBSTRATE_READY", p0_state)):
        writer.write("PHASE_RECORD_PATH_PATTERN", {
            **writer.base_fields(phase_id, ["PHASE_RECORD_PATH_PATTERN"]), "name": name, "state": state, "attempt": 1,
            "started_at_utc": "2026-11-23T10:00:00Z", "ended_at_utc": "2026-11-23T10:01:00Z", "evidence": [],
            "bounded_gate": None}, phase_id=phase_id)
    return run_id


def test_dev_min_run_starts_ig_on_ecs_and_runs_p3_as_three_ecs_jobs_then_fails_closed_without_evidence(dev_min_run: Any) -> None:
    registry, backend, scheduler, base = dev_min_run
    run_id = _mint_up_run(registry, base)
    with pytest.raises(PlatformError) as e:
        dev_min_run_cloud(registry, Slice(to="P7"), gate=20, options={"aws_clients": backend.clients, "ecs_poll_seconds": 0.0}, base=base)
    assert e.value.code == "ORACLE_READY_GATE_FAILED" and "pack_sealed" in e.value.message
    evidence = RunFolders.from_registry(registry, base).evidence_dir(run_id)
    assert [_record(evidence, registry, p)["state"] for p in ("P1", "P2", "P3")] == ["PASS", "PASS", "FAIL"]
    assert not (evidence / registry.render("PHASE_RECORD_PATH_PATTERN", phase_id="P4")).exists()
    daemons = json.loads((evidence / registry.text("DAEMONS_READY_PATH_PATTERN")).read_text())
    ig = daemons["packs"][0]["processes"][0]
    assert ig["service"] == registry.text("SVC_IG") and ig["task_arn"].startswith("arn:aws:ecs:")
    scope_key = registry.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")
    families = [family for family, _, _ in scheduler.job_commands]
    assert families == [registry.text(str(COMPONENTS[j].ecs_key))
                        for j in ("db_migrations", "oracle_seed", "oracle_stream_sort", "oracle_checker")]
    assert [cmd[:2] for _, cmd, _ in scheduler.job_commands] == [["db", "migrate"], ["oracle", "seed"], ["oracle", "stream-sort"],
                                                                 ["oracle", "check"]]
    assert all(env[scope_key] == run_id for _, _, env in scheduler.job_commands)
    pinned = "123456789012.dkr.ecr.eu-west-2.amazonaws.com/fp@sha256:" + "b" * 64  # P(-1)'s digest, not the tag
    ig_definition = backend.clients.client("ecs").describe_task_definition(taskDefinition=_service_td(backend, registry))[
        "taskDefinition"]
    assert [c["image"] for c in ig_definition["containerDefinitions"]] == [pinned]
    assert all(image == pinned for image in scheduler.job_images)
    jobs = _record(evidence, registry, "P3")["jobs"]  # the failed phase's record still names every task
    assert [j["component"] for j in jobs] == ["oracle_seed", "oracle_stream_sort", "oracle_checker"]
    assert all(j["task_arn"].startswith("arn:aws:ecs:") and j["exit_code"] == 0 for j in jobs)


def test_dev_min_run_refuses_a_run_whose_p0_did_not_pass(dev_min_run: Any) -> None:
    registry, backend, scheduler, base = dev_min_run
    _mint_up_run(registry, base, p0_state="FAIL")
    with pytest.raises(PlatformError) as e:
        dev_min_run_cloud(registry, Slice(to="P7"), gate=20, options={"aws_clients": backend.clients, "ecs_poll_seconds": 0.0}, base=base)
    assert e.value.code == "RESUME_BEFORE_PASS" and "dev-min-up --env dev_min" in str(e.value.next_step)
    assert scheduler.job_commands == []


def test_dev_min_run_does_not_repin_a_pinned_run(dev_min_run: Any) -> None:
    registry, backend, _, base = dev_min_run
    _mint_up_run(registry, base)
    with pytest.raises(PlatformError):
        dev_min_run_cloud(registry, Slice(to="P3"), gate=20, options={"aws_clients": backend.clients, "ecs_poll_seconds": 0.0}, base=base)
    with pytest.raises(PlatformError) as e:
        dev_min_run_cloud(registry, Slice(to="P3"), gate=20, options={"aws_clients": backend.clients, "ecs_poll_seconds": 0.0}, base=base)
    assert e.value.code == "RUN_ALREADY_PINNED"


def test_dev_min_run_cli_refuses_a_local_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["dev-min-run", "--env", "dev_min", "--bus", "kinesis"])
    assert result.exit_code == 1 and "BUS_MISMATCH" in result.output


def test_dev_min_run_without_any_run_says_to_bring_dev_min_up(tmp_path: Path) -> None:
    with pytest.raises(PlatformError) as e:
        dev_min_run_cloud(load_registry("dev_min"), Slice(to="P7"), gate=20, base=tmp_path)
    assert e.value.code == "RUN_FOLDER_INVALID" and "dev-min-up --env dev_min" in str(e.value.next_step)


def test_p2_starts_the_built_rtdl_core_workers_as_ecs_services_and_p8_runs_its_job_on_ecs_failing_closed_without_evidence(
        dev_min_run: Any) -> None:
    from controller.phases.p02_daemons_ready import DaemonsReady
    from controller.phases.p08_rtdl_caught_up import RtdlCaughtUp
    from runtime.components import pack_daemons, unbuilt_members

    registry, backend, scheduler, base = dev_min_run
    run_id = _mint_up_run(registry, base)
    folders = RunFolders.from_registry(registry, base)
    settings = load_settings(environment="dev_min")
    ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings,
                     {"aws_clients": backend.clients, "ecs_poll_seconds": 0.0, "packs": ["rtdl_core"]})
    p2 = execute(DaemonsReady(), ctx)
    assert p2["state"] == "PASS"
    daemons = json.loads((folders.evidence_dir(run_id) / registry.text("DAEMONS_READY_PATH_PATTERN")).read_text())
    services = {p["service"] for p in daemons["packs"][0]["processes"]}
    assert services == {registry.text(str(d.ecs_key)) for d in pack_daemons(registry, "rtdl_core")}
    assert registry.text("SVC_RTDL_CORE_ARCHIVE_WRITER") in services
    assert not services & {registry.text(str(COMPONENTS[m].ecs_key)) for m in unbuilt_members(registry, "rtdl_core")}
    with pytest.raises(PlatformError) as e:
        execute(RtdlCaughtUp(), ctx)  # moto's task runs nothing: no evidence, so no PASS
    assert e.value.code in ("EVIDENCE_MISSING", "RTDL_CAUGHT_UP_GATE_FAILED", "PHASE_GATE_FAILED")
    family, command, env = scheduler.job_commands[-1]
    assert family == registry.text("TD_RTDL_CAUGHT_UP")
    assert command == ["rtdl", "caught-up", "--platform-run-id", run_id]
    assert env[registry.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")] == run_id
    assert _record(folders.evidence_dir(run_id), registry, "P8")["state"] == "FAIL"


@pytest.mark.parametrize(("phase_id", "pack", "job"), [("P8", "rtdl_core", "TD_RTDL_CAUGHT_UP"),
                                                      ("P9", "rtdl_decision_lane", "TD_DECISION_COMMITTED"),
                                                      ("P10", "case_labels", "TD_CASE_LABELS_COMMITTED")])
def test_a_gate_phase_of_a_run_whose_p2_did_not_start_its_pack_starts_it_first(dev_min_run: Any, phase_id: str, pack: str,
                                                                                 job: str) -> None:
    from controller.phases.machine import PHASES

    registry, backend, scheduler, base = dev_min_run
    run_id = _mint_up_run(registry, base)
    folders = RunFolders.from_registry(registry, base)
    settings = load_settings(environment="dev_min")
    ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings,
                     {"aws_clients": backend.clients, "ecs_poll_seconds": 0.0})
    assert not backend.pack_state(pack).running
    with pytest.raises(PlatformError):
        execute(PHASES[phase_id](), ctx)
    state = backend.pack_state(pack)
    assert state.running and state.run_scope == run_id
    assert scheduler.job_commands[-1][0] == registry.text(job)


def test_p2_starts_the_decision_lane_as_ecs_services_and_p9_runs_its_job_on_ecs_failing_closed_without_evidence(
        dev_min_run: Any) -> None:
    from controller.phases.p02_daemons_ready import DaemonsReady
    from controller.phases.p09_decision_chain_committed import DecisionChainCommitted
    from runtime.components import pack_daemons

    registry, backend, scheduler, base = dev_min_run
    run_id = _mint_up_run(registry, base)
    folders = RunFolders.from_registry(registry, base)
    settings = load_settings(environment="dev_min")
    ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings,
                     {"aws_clients": backend.clients, "ecs_poll_seconds": 0.0, "packs": ["rtdl_decision_lane"]})
    p2 = execute(DaemonsReady(), ctx)
    assert p2["state"] == "PASS"
    daemons = json.loads((folders.evidence_dir(run_id) / registry.text("DAEMONS_READY_PATH_PATTERN")).read_text())
    services = {p["service"] for p in daemons["packs"][0]["processes"]}
    assert services == {registry.text(k) for k in ("SVC_DECISION_LANE_DL", "SVC_DECISION_LANE_DF", "SVC_DECISION_LANE_AL",
                                                   "SVC_DECISION_LANE_DLA")}
    assert services == {registry.text(str(d.ecs_key)) for d in pack_daemons(registry, "rtdl_decision_lane")}
    with pytest.raises(PlatformError) as e:
        execute(DecisionChainCommitted(), ctx)  # moto's task runs nothing: no evidence, so no PASS
    assert e.value.code in ("EVIDENCE_MISSING", "DECISION_CHAIN_COMMITTED_GATE_FAILED", "PHASE_GATE_FAILED")
    family, command, env = scheduler.job_commands[-1]
    assert family == registry.text("TD_DECISION_COMMITTED")
    assert command == ["decision", "committed", "--platform-run-id", run_id]
    assert env[registry.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")] == run_id
    assert _record(folders.evidence_dir(run_id), registry, "P9")["state"] == "FAIL"


def test_p2_starts_the_case_labels_workers_as_ecs_services_and_p10_runs_the_intake_then_its_gate_job_on_ecs(
        dev_min_run: Any) -> None:
    from controller.phases.p02_daemons_ready import DaemonsReady
    from controller.phases.p10_case_labels_committed import CaseLabelsCommitted
    from runtime.components import pack_daemons

    registry, backend, scheduler, base = dev_min_run
    run_id = _mint_up_run(registry, base)
    folders = RunFolders.from_registry(registry, base)
    settings = load_settings(environment="dev_min")
    ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings,
                     {"aws_clients": backend.clients, "ecs_poll_seconds": 0.0, "packs": ["case_labels"]})
    assert execute(DaemonsReady(), ctx)["state"] == "PASS"
    daemons = json.loads((folders.evidence_dir(run_id) / registry.text("DAEMONS_READY_PATH_PATTERN")).read_text())
    services = {p["service"] for p in daemons["packs"][0]["processes"]}
    assert services == {registry.text(k) for k in ("SVC_CASE_LABELS_CASE_TRIGGER", "SVC_CM", "SVC_LS")}
    assert services == {registry.text(str(d.ecs_key)) for d in pack_daemons(registry, "case_labels")}
    with pytest.raises(PlatformError) as e:
        execute(CaseLabelsCommitted(), ctx)  # moto's tasks run nothing: no evidence, so no PASS
    assert e.value.code in ("EVIDENCE_MISSING", "CASE_LABELS_COMMITTED_GATE_FAILED")
    (intake_family, intake, _), (family, command, env) = scheduler.job_commands[-2:]
    assert (intake_family, intake) == (registry.text("TD_LS_BANK_VIEW_INTAKE"), ["ls", "ingest-bank-view", "--platform-run-id", run_id])
    assert family == registry.text("TD_CASE_LABELS_COMMITTED")
    assert command == ["case", "committed", "--platform-run-id", run_id]
    assert env[registry.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")] == run_id
    record = _record(folders.evidence_dir(run_id), registry, "P10")
    assert record["state"] == "FAIL" and [j["component"] for j in record["jobs"]] == ["ls_bank_view_intake", "case_labels_committed"]


def test_p11_runs_the_reporter_as_the_td_reporter_task_on_ecs_and_fails_closed_without_its_files(dev_min_run: Any) -> None:
    from controller.phases.p11_obs_gov_closed import ObsGovClosed

    registry, backend, scheduler, base = dev_min_run
    run_id = _mint_up_run(registry, base)
    folders = RunFolders.from_registry(registry, base)
    settings = load_settings(environment="dev_min")
    ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings,
                     {"aws_clients": backend.clients, "ecs_poll_seconds": 0.0, "packs": []})
    with pytest.raises(PlatformError) as e:
        execute(ObsGovClosed(), ctx)  # moto's task runs nothing: no closure files, so no PASS
    assert e.value.code == "OBS_GOV_CLOSED_GATE_FAILED" and "run_completed missing" in e.value.message
    family, command, env = scheduler.job_commands[-1]
    assert family == registry.text("TD_REPORTER")
    assert command == ["reporter", "close", "--platform-run-id", run_id]
    assert env[registry.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")] == run_id
    record = _record(folders.evidence_dir(run_id), registry, "P11")
    assert record["state"] == "FAIL" and [j["component"] for j in record["jobs"]] == ["reporter"]


def test_p2_starts_the_obs_gov_daemons_as_ecs_services_and_p11_stops_them_before_the_reporter_task(
        dev_min_run: Any) -> None:
    from controller.phases.p02_daemons_ready import DaemonsReady
    from controller.phases.p11_obs_gov_closed import ObsGovClosed

    registry, backend, scheduler, base = dev_min_run
    run_id = _mint_up_run(registry, base)
    folders = RunFolders.from_registry(registry, base)
    settings = load_settings(environment="dev_min")
    ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings,
                     {"aws_clients": backend.clients, "ecs_poll_seconds": 0.0, "packs": ["obs_gov"]})
    assert execute(DaemonsReady(), ctx)["state"] == "PASS"
    daemons = json.loads((folders.evidence_dir(run_id) / registry.text("DAEMONS_READY_PATH_PATTERN")).read_text())
    assert {p["service"] for p in daemons["packs"][0]["processes"]} == {
        registry.text("SVC_OBS_GOV_REPORTER"), registry.text("SVC_OBS_GOV_ENV_CONFORMANCE")}
    ctx.options["rerun_only"] = "P11"  # `--phase P11` beside the reporter daemon: refused, nothing stopped or run
    with pytest.raises(PlatformError) as e:
        execute(ObsGovClosed(), ctx)
    assert e.value.code == "REPORTER_LOCK_HELD" and backend.pack_state("obs_gov").running
    del ctx.options["rerun_only"]  # the normal flow: stop the pack, then the TD_REPORTER task
    with pytest.raises(PlatformError) as e:
        execute(ObsGovClosed(), ctx)  # moto's task runs nothing: no closure files, so no PASS
    assert e.value.code == "OBS_GOV_CLOSED_GATE_FAILED"
    assert backend.pack_state("obs_gov").state == "STOPPED"
    assert scheduler.job_commands[-1][0] == registry.text("TD_REPORTER")


def test_p11_on_ecs_prices_the_window_and_records_the_images_of_the_runs_task_definitions_for_the_reporter(
        dev_min_run: Any) -> None:
    """dev_min P11 writes obs/close_inputs.json before the TD_REPORTER task: the window from P(-1)'s
    start priced from stacks/prices.yaml, and the image of every task definition scoped to the run,
    which the reporter's conformance holds against the digest P1 pinned (a revision re-pointed to
    another image is a FAIL naming both)."""
    from datetime import UTC, datetime

    from controller.phases.compute import compute_backend
    from controller.phases.p01_run_pinned import RunPinned
    from controller.phases.p02_daemons_ready import DaemonsReady
    from controller.phases.p11_obs_gov_closed import ObsGovClosed
    from runtime.obs.gather import IMAGE_PIN_CHECK, image_pin_check
    from stacks.cost import WINDOW_BASIS, estimate, window_cost

    registry, backend, scheduler, base = dev_min_run
    run_id = _mint_up_run(registry, base)
    folders = RunFolders.from_registry(registry, base)
    settings = load_settings(environment="dev_min")
    ctx = RunContext(registry, run_id, folders, run_writer(registry, folders, run_id, settings), settings,
                     {"aws_clients": backend.clients, "ecs_poll_seconds": 0.0, "packs": ["obs_gov"], "gate": 20})
    assert execute(RunPinned(), ctx)["state"] == "PASS"
    assert execute(DaemonsReady(), ctx)["state"] == "PASS"  # the obs_gov services now run revisions scoped to the run
    ecs = compute_backend(ctx)
    ecs.scoped_revision(registry.text("TD_ORACLE_SEED"), run_id)  # as P3's job did
    with pytest.raises(PlatformError):
        execute(ObsGovClosed(), ctx)  # moto's task runs nothing: no closure files, so no PASS
    assert scheduler.job_commands[-1][0] == registry.text("TD_REPORTER")  # the reporter task ran after the inputs
    inputs = json.loads((folders.evidence_dir(run_id) / registry.text("CLOSE_INPUTS_PATH_PATTERN")).read_text())
    assert schema_violations("evidence/close_inputs.schema.json", inputs) == []
    cost = inputs["window_cost"]
    assert cost["basis"] == WINDOW_BASIS and cost["currency"] == "USD" and cost["upper_bound"]
    assert cost["window_start_utc"] == "2026-11-23T10:00:00Z"  # P(-1)'s start: the stacks are up from dev-min-up
    start = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    end = datetime.fromisoformat(cost["window_end_utc"].replace("Z", "+00:00"))
    expected = window_cost(estimate(registry_file=registry.source), start, end).document()
    assert cost["total"] == expected["total"] > 0
    assert [r["resource"] for r in cost["by_resource"]] == [r["resource"] for r in expected["by_resource"]]
    pinned = "123456789012.dkr.ecr.eu-west-2.amazonaws.com/fp@sha256:" + "b" * 64
    observed = {t["component"]: t for t in inputs["task_definitions"]}
    assert set(observed) == {"db_migrations", "platform_run_reporter", "env_conformance", "oracle_seed"}  # P2 migrated
    assert all(t["images"] == [pinned] for t in observed.values())
    assert observed["platform_run_reporter"]["service"] == registry.text("SVC_OBS_GOV_REPORTER")
    assert registry.text("TD_SR") in inputs["task_definitions_not_of_the_run"]  # never run by this run: not judged
    run = json.loads((folders.evidence_dir(run_id) / registry.text("EVIDENCE_RUN_JSON_KEY")).read_text())
    check = image_pin_check(run, inputs)
    assert check is not None and check.ok and check.name == IMAGE_PIN_CHECK
    # a revision of the run re-pointed at a tag (or another digest) is what the reporter fails, naming both
    definition = backend.clients.client("ecs").describe_task_definition(taskDefinition=registry.text("TD_ORACLE_SEED"))["taskDefinition"]
    retagged = dict(definition["containerDefinitions"][0], image="123456789012.dkr.ecr.eu-west-2.amazonaws.com/fp:latest")
    backend.clients.client("ecs").register_task_definition(
        family=definition["family"], containerDefinitions=[retagged], requiresCompatibilities=["FARGATE"],
        networkMode=definition["networkMode"], cpu=definition["cpu"], memory=definition["memory"])
    tampered = [t.to_evidence() for t in ecs.run_task_definitions(run_id)[0]]
    failed = image_pin_check(run, {"task_definitions": tampered})
    assert failed is not None and not failed.ok
    assert "pinned sha256:" + "b" * 64 in failed.detail and "fp:latest" in failed.detail
