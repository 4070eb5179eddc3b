"""Composition smoke test: what each compute backend would start is a command the image can run.

For every daemon and job the argv each backend would execute is built the way that backend builds
it, then run as a subprocess with `--help` appended (typer answers before any command body runs,
so nothing touches the network or a database):

- local: the pack supervisor's daemon argv and the job argv of the local backend;
- ECS: the image's ENTRYPOINT (read from the Dockerfile) followed by the container `command` of
  the synthesised demo stack's task definitions, of the revision the ECS backend registers for a
  run, and of the `run_task` override it sends for a job. ECS replaces only CMD, so the container
  command must be just the argv after the entrypoint.

Where a Docker engine exists the same argv runs in the real image named by FP_TEST_IMAGE (skipped
without an engine or an image).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from moto import mock_aws
from moto.moto_api import state_manager

from controller.compute.local_backend import LocalBackend, daemon_commands
from runtime.components import (
    COMPONENTS,
    ENTRYPOINT,
    Component,
    cli_apps,
    consumer_group_id,
    of_kind,
    pack_daemons,
    pack_of,
    unbuilt_members,
)
from runtime.contracts.registry import load_registry
from runtime.errors import PlatformError
from runtime.paths import REPO_ROOT
from tests.stacks.conftest import Synthesised, synthesised  # noqa: F401  (session fixture)
from tests.support.ecs_account import ecs_account

RUN = "platform_20261123T120000Z"
#: job -> every command phases run under its task definition.
JOB_COMMANDS: dict[str, list[list[str]]] = {j.name: [list(c) for c in j.commands] for j in of_kind("job")}


def image_entrypoint() -> list[str]:
    """The exec-form ENTRYPOINT of the Dockerfile."""
    lines = [line for line in (REPO_ROOT / "Dockerfile").read_text().splitlines() if line.startswith("ENTRYPOINT ")]
    assert len(lines) == 1, "the Dockerfile needs exactly one ENTRYPOINT"
    entrypoint = json.loads(lines[0].removeprefix("ENTRYPOINT "))
    assert isinstance(entrypoint, list) and entrypoint, "ENTRYPOINT must be the exec (JSON) form"
    return [str(a) for a in entrypoint]


def assert_parses(argv: list[str], where: str) -> None:
    """Run `argv --help` here (`python` is this interpreter, as in the image); exit 0 or fail naming `where`."""
    command = [sys.executable if argv[0] == "python" else argv[0], *argv[1:], "--help"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=dict(os.environ))
    assert done.returncode == 0, f"{where}: {' '.join(argv)} --help exited {done.returncode}: {done.stderr.strip()[-400:]}"


def _stack_containers(synth: Synthesised) -> dict[str, dict[str, Any]]:
    """family -> its single container definition, as the demo stack synthesises it."""
    out = {}
    for body in synth.stacks["demo"]["resource"]["aws_ecs_task_definition"].values():
        containers = json.loads(body["container_definitions"])
        assert len(containers) == 1
        out[body["family"]] = containers[0]
    return out


# --- the map itself ------------------------------------------------------------------------------

def test_the_dockerfile_entrypoint_is_the_maps_entrypoint() -> None:
    assert tuple(image_entrypoint()) == ENTRYPOINT


def test_every_component_resolves_to_a_typer_app_serving_its_commands() -> None:
    """Each command goes to the app of its first word (the dispatcher's routing): a job may run
    another component's command on its task (the reporter's task runs IG's `ig ready-check`)."""
    apps = cli_apps()
    words: dict[str, set[str]] = {}
    for name, app_path in apps.items():
        module_name, attribute = app_path.split(":")
        app = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(app, typer.Typer), app_path
        words[name] = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands if c.callback}
    for entry in COMPONENTS.values():
        for command in entry.commands:
            assert command[0] in apps, f"{entry.name}: no app serves {command[0]!r}"
            assert len(command) < 2 or command[1] in words[command[0]], \
                f"{entry.name}: {apps[command[0]]} has no command {command[1]!r}"


def test_every_pack_member_is_built_or_its_pack_fails_closed_naming_it() -> None:
    registry = load_registry("local_parity")
    for pack, members in registry.mapping("PACKS").items():
        unbuilt = [m for m in members if m not in COMPONENTS]
        if not unbuilt:  # a member whose code is not in this build (Component.requires) is left out of its pack
            assert [d.name for d in pack_daemons(registry, pack)] == [
                m for m in members if COMPONENTS[m].kind == "daemon" and COMPONENTS[m].built]
            assert unbuilt_members(registry, pack) == [m for m in members if not COMPONENTS[m].built]
            continue
        with pytest.raises(PlatformError) as e:
            pack_daemons(registry, pack)
        assert e.value.code == "PHASE_NOT_BUILT" and all(m in e.value.message for m in unbuilt)
    assert all(pack_of(registry, d.name) for d in of_kind("daemon")), "every daemon runs in a pack"


def test_a_daemon_or_job_without_its_handles_is_refused_at_import() -> None:
    with pytest.raises(PlatformError) as e:
        Component(name="x", kind="job", app="runtime.sr.cli:app", argv=("sr", "run"), ecs_key="TD_SR")
    assert e.value.code == "COMPONENT_MAP_INVALID"


@pytest.mark.parametrize("environment", ["local_parity", "dev_min"])
def test_consumer_group_is_one_per_component_and_run(environment: str) -> None:
    registry = load_registry(environment)
    assert consumer_group_id(registry, "wsp", RUN) == f"fp-wsp-{RUN}"
    other_run = "platform_20261124T000000Z"
    groups = {consumer_group_id(registry, c, r) for c in COMPONENTS for r in (RUN, other_run)}
    assert len(groups) == 2 * len(COMPONENTS)  # no two components or runs share offsets


@pytest.mark.parametrize("name,run,code", [("no_such_component", RUN, "UNKNOWN_COMPONENT"), ("wsp", "wsp-run", "RUN_ID_INVALID")])
def test_consumer_group_of_an_unknown_component_or_run_is_refused(name: str, run: str, code: str) -> None:
    with pytest.raises(PlatformError) as e:
        consumer_group_id(load_registry("dev_min"), name, run)
    assert e.value.code == code


# --- local backend ----------------------------------------------------------------------------

def test_local_pack_daemons_parse_as_the_supervisor_starts_them() -> None:
    registry = load_registry("local_parity")
    built = [p for p, members in registry.mapping("PACKS").items() if all(m in COMPONENTS for m in members)]
    assert "control_ingress" in built
    for pack in built:
        for name, argv in daemon_commands(registry, pack).items():
            assert_parses(argv, f"local daemon {name} of pack {pack}")


def test_local_jobs_parse_as_the_local_backend_runs_them(tmp_path: Path) -> None:
    backend = LocalBackend(load_registry("local_parity"), tmp_path, {})
    for component, commands in JOB_COMMANDS.items():
        for command in commands:
            result = backend.run_job(component, [*command, "--help"], RUN, timeout=120, check=False)
            assert result.exit_code == 0, f"local job {component}: {Path(result.log_location).read_text()[-400:]}"


# --- ECS: image entrypoint + container command --------------------------------------------------

def test_every_demo_task_definition_command_parses_after_the_image_entrypoint(synthesised: Synthesised) -> None:  # noqa: F811
    entrypoint = image_entrypoint()
    containers = _stack_containers(synthesised)
    registry = load_registry("dev_min")
    expected = {registry.text(str(c.ecs_key)) for c in COMPONENTS.values() if c.kind != "cli"}
    assert set(containers) == expected
    for family, container in sorted(containers.items()):
        assert_parses([*entrypoint, *container["command"]], f"demo stack task definition {family}")


@pytest.fixture
def stack_account(synthesised: Synthesised) -> Iterator[Any]:  # noqa: F811
    """A mocked dev_min account whose task definitions are the synthesised ones (moto needs container memory)."""
    registry = load_registry("dev_min")
    containers = _stack_containers(synthesised)
    with mock_aws(), ecs_account(registry) as env:
        for family, container in containers.items():
            arn = env.ecs.register_task_definition(
                family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
                containerDefinitions=[{**container, "memory": 512}])["taskDefinition"]["taskDefinitionArn"]
            if family in {registry.text(str(d.ecs_key)) for d in of_kind("daemon")}:
                env.ecs.update_service(cluster=env.cluster, service=family, taskDefinition=arn)
        yield env


def _play_scheduler(env: Any, pack: str) -> Any:
    """Progress callback doing what ECS's scheduler would: start a task of each scaled-up service's revision."""
    started: set[str] = set()

    def on_progress(_: str) -> None:
        for _component, name in env.backend.pack_services(pack):
            service = env.ecs.describe_services(cluster=env.cluster, services=[name])["services"][0]
            if service["desiredCount"] == 1 and service["taskDefinition"] not in started:
                started.add(service["taskDefinition"])
                env.schedule(name)

    return on_progress


def test_ecs_backend_service_revision_and_job_override_parse_after_the_image_entrypoint(stack_account: Any) -> None:
    env = stack_account
    entrypoint = image_entrypoint()
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
    try:
        env.backend.start_pack("control_ingress", RUN, progress=_play_scheduler(env, "control_ingress"))
    finally:
        state_manager.unset_transition("ecs::task")
    for component, name in env.backend.pack_services("control_ingress"):
        arn = env.ecs.describe_services(cluster=env.cluster, services=[name])["services"][0]["taskDefinition"]
        container = env.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"][0]
        assert_parses([*entrypoint, *container["command"]], f"ECS backend revision of service {name} ({component})")
    for component, commands in JOB_COMMANDS.items():
        for command in commands:
            result = env.backend.run_job(component, command, RUN)
            task = env.ecs.describe_tasks(cluster=env.cluster, tasks=[result.task_arn])["tasks"][0]
            override = task["overrides"]["containerOverrides"][0]["command"]
            assert_parses([*entrypoint, *override], f"ECS backend run_task override of job {component}")


def _docker_engine() -> bool:
    """A Docker CLI that reaches a running engine."""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(not _docker_engine(), reason="no Docker engine on this machine")
def test_real_image_runs_every_container_command_with_help(synthesised: Synthesised) -> None:  # noqa: F811
    image = os.environ.get("FP_TEST_IMAGE")
    if not image:
        pytest.skip("set FP_TEST_IMAGE to a built image (fp devmin package) to run it")
    for family, container in sorted(_stack_containers(synthesised).items()):
        done = subprocess.run(["docker", "run", "--rm", "--network", "none", image, *container["command"], "--help"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"image {image}, {family}: {done.stderr.strip()[-400:]}"


def test_a_worker_whose_handler_is_absent_is_listed_but_not_built_and_its_pack_starts_without_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    registry = load_registry("local_parity")
    absent = Component(name="ofp", kind="daemon", app="runtime.worker.cli:ofp_app", argv=("ofp", "run"),
                       ecs_key="SVC_RTDL_CORE_OFP", role_key="ROLE_RTDL_CORE", requires="runtime.rtdl.ofp.handler_absent")
    monkeypatch.setitem(COMPONENTS, "ofp", absent)
    assert not absent.built and COMPONENTS["archive_writer"].built
    assert "ofp" not in [d.name for d in pack_daemons(registry, "rtdl_core")]
    assert "ofp" in unbuilt_members(registry, "rtdl_core")
    for name in ("archive_writer", "ieg", "csfb"):
        monkeypatch.setitem(COMPONENTS, name, Component(**{**COMPONENTS[name].__dict__, "requires": "runtime.absent.handler"}))
    with pytest.raises(PlatformError) as e:
        pack_daemons(registry, "rtdl_core")
    assert e.value.code == "PHASE_NOT_BUILT" and "archive_writer" in e.value.message


def test_session_names_say_the_component_and_fit_postgres_limit() -> None:
    from runtime.components import SESSION_NAME_ENV, session_name_env

    assert session_name_env("case_trigger") == {SESSION_NAME_ENV: "fp-case_trigger"}
    assert len(session_name_env("x" * 100)[SESSION_NAME_ENV]) == 63  # PostgreSQL's NAMEDATALEN - 1
