"""A copy of the handles registry whose local ports (moto, PostgreSQL, Kafka, IG) are free loopback
ports, so a scratch substrate never collides with another one on the machine."""

from __future__ import annotations

import re
from pathlib import Path

from controller.substrate.processes import free_port
from runtime.paths import REPO_ROOT


def free_port_registry(folder: Path) -> Path:
    """Write `folder/handles.registry.yaml` with free local ports; returns its path."""
    text = (REPO_ROOT / "handles.registry.yaml").read_text()
    for key in ("LOCAL_MOTO_PORT", "LOCAL_POSTGRES_PORT", "LOCAL_KAFKA_PORT"):
        text = re.sub(rf"(\n\s+{key}: )\d+", rf"\g<1>{free_port()}", text)
    ig_port = free_port()
    text = re.sub(r"(\n\s+IG_PORT: )\d+", rf"\g<1>{ig_port}", text)
    text = re.sub(r'(\n      IG_BASE_URL: "http://127\.0\.0\.1:)\d+"', rf'\g<1>{ig_port}"', text)
    registry_file = folder / "handles.registry.yaml"
    registry_file.write_text(text)
    return registry_file
