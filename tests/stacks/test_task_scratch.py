"""Every demo task has writable scratch on its read-only root filesystem, and the image prepares it.

The oracle seed job generates its engine run in a scratch folder and DuckDB spills to disk; with
`readonlyRootFilesystem` those writes need bind mounts (Fargate ephemeral storage). ECS copies the
image's content and ownership into such a mount only when the image declares the same path as a
VOLUME, so the Dockerfile must declare exactly the mounted paths.
"""

from __future__ import annotations

import json
import re

from runtime.paths import REPO_ROOT
from stacks.demo.stack import SCRATCH_MOUNTS
from tests.stacks.conftest import Synthesised


def test_every_task_definition_mounts_the_scratch_volumes_writable(synthesised: Synthesised) -> None:
    definitions = synthesised.stacks["demo"]["resource"]["aws_ecs_task_definition"]
    assert definitions
    for name, body in definitions.items():
        assert sorted(v["name"] for v in body["volume"]) == sorted(SCRATCH_MOUNTS), name
        (container,) = json.loads(body["container_definitions"])
        assert container["readonlyRootFilesystem"] is True
        mounts = {m["sourceVolume"]: m["containerPath"] for m in container["mountPoints"] if m["readOnly"] is False}
        assert mounts == SCRATCH_MOUNTS, name


def test_the_image_declares_each_scratch_path_as_a_volume() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    declared = re.findall(r'^VOLUME \[(.*)\]$', dockerfile, flags=re.MULTILINE)
    assert len(declared) == 1
    assert sorted(json.loads(f"[{declared[0]}]")) == sorted(SCRATCH_MOUNTS.values())
