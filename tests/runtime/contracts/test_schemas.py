"""Every schema in schemas/ is a valid Draft 2020-12 schema and resolves its references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from runtime.contracts.schemas import all_schema_files, compiled_validator
from runtime.evidence.catalog import CATALOG, OTHER_SCHEMAS
from runtime.paths import SCHEMAS_DIR


@pytest.mark.parametrize("path", all_schema_files(), ids=lambda p: str(p.relative_to(SCHEMAS_DIR)))
def test_schema_passes_the_draft_2020_12_meta_schema(path: Path) -> None:
    document = json.loads(path.read_text())
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_catalogued_evidence_file_has_a_schema() -> None:
    names = {e.schema for e in CATALOG} | set(OTHER_SCHEMAS.values())
    for name in names:
        assert (SCHEMAS_DIR / "evidence" / f"{name}.schema.json").is_file(), name


def test_evidence_schema_requires_the_common_fields() -> None:
    validator = compiled_validator("evidence/run_started.schema.json")
    errors = [e.message for e in validator.iter_errors({"started_at_utc": "2026-01-01T00:00:00Z"})]
    for field in ("platform_run_id", "written_at_utc", "phase_id", "source_handles"):
        assert any(field in m for m in errors), field
