"""Composition smoke test: what each compute backend would start is a command the image can run.

For every daemon and job the argv each backend would execute is built the way that backend builds
it, then run as a subprocess with `--help` appended (typer answers before any command body runs,
so nothing touches the network or a database):

- local: the pack supervisor's daemon argv and the job argv of the local backend;
- ECS: the image's ENTRYPOINT (read from the Dockerfile) followed by the container `command` of
  the synthesised demo stack's task definitions, of the revision the ECS backend registers for a
  run, and of the `run_task` override it sends for a job. ECS replaces only CMD, so the container
  command must be just the argv after the entrypoint.

Where a Docker engine exists the same argv runs in the real image (skipped otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from moto.moto_api import state_manager

from controller.compute.local_backend import LocalBackend, daemon_commands
from runtime.contracts.registry import load_registry
from runtime.paths import REPO_ROOT
from stacks.config import DAEMONS, JOBS
from tests.stacks.conftest import Synthesised, synthesised  # noqa: F401  (session fixture)
from tests.support.ecs_account import ecs_account

RUN = "platform_20261123T120000Z"
#: The commands the phases run under each job's task definition (P3-P7).
JOB_COMMANDS: dict[str, list[list[str]]] = {
    "oracle_seed": [["oracle", "seed"]], "oracle_stream_sort": [["oracle", "stream-sort"]],
    "oracle_checker": [["oracle", "check"]], "sr": [["sr", "run"]], "wsp": [["wsp", "run"]],
    "reporter": [["ig", "ready-check"], ["ig", "commit-summary"]],
}


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


# --- local backend ----------------------------------------------------------------------------

def test_local_pack_daemons_parse_as_the_supervisor_starts_them() -> None:
    registry = load_registry("local_parity")
    built = [p for p, members in registry.mapping("PACKS").items() if all(m in DAEMONS or m in JOBS for m in members)]
    assert "control_ingress" in built
    for name, argv in daemon_commands(registry, "control_ingress").items():
        assert_parses(argv, f"local daemon {name}")


def test_local_jobs_parse_as_the_local_backend_runs_them(tmp_path: Path) -> None:
    backend = LocalBackend(load_registry("local_parity"), tmp_path, {})
    assert set(JOB_COMMANDS) <= set(JOBS)
    for component, commands in JOB_COMMANDS.items():
        for command in commands:
            result = backend.run_job(component, [*command, "--help"], RUN, timeout=120, check=False)
            assert result.exit_code == 0, f"local job {component}: {Path(result.log_location).read_text()[-400:]}"


# --- ECS: image entrypoint + container command --------------------------------------------------

def test_every_demo_task_definition_command_parses_after_the_image_entrypoint(synthesised: Synthesised) -> None:  # noqa: F811
    entrypoint = image_entrypoint()
    containers = _stack_containers(synthesised)
    registry = load_registry("dev_min")
    expected = {registry.text(k) for k, _ in DAEMONS.values()} | {registry.text(k) for k, _ in JOBS.values()}
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
            if not any(registry.text(k) == family for k, _ in JOBS.values()):
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


@pytest.mark.skipif(shutil.which("docker") is None, reason="no Docker engine on this machine")
def test_real_image_runs_every_container_command_with_help(synthesised: Synthesised) -> None:  # noqa: F811
    image = os.environ.get("FP_TEST_IMAGE")
    if not image:
        pytest.skip("set FP_TEST_IMAGE to a built image (fp devmin package) to run it")
    for family, container in sorted(_stack_containers(synthesised).items()):
        done = subprocess.run(["docker", "run", "--rm", "--network", "none", image, *container["command"], "--help"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"image {image}, {family}: {done.stderr.strip()[-400:]}"
