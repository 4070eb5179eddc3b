"""Where the repository's contract files live (registry, schemas, migrations)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMAS_DIR = REPO_ROOT / "schemas"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "db" / "migrations"


def registry_path() -> Path:
    """The handles registry in force: `FP_HANDLES_REGISTRY` if set, else the repository's."""
    override = os.environ.get("FP_HANDLES_REGISTRY")
    return Path(override) if override else REPO_ROOT / "handles.registry.yaml"
