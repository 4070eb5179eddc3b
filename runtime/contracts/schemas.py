"""Loads the JSON Schemas under `schemas/` and compiles their validators once.

Validators are compiled once per schema (Draft 2020-12, format checking on); callers never pay a
meta-schema check per document.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from referencing import Registry as RefRegistry
from referencing import Resource

from runtime.errors import SchemaMissing
from runtime.paths import SCHEMAS_DIR


def schema_path(name: str) -> Path:
    """The file of schema `name` (relative to schemas/, e.g. 'evidence/run.schema.json')."""
    return SCHEMAS_DIR / name


@lru_cache(maxsize=256)
def load_schema(name: str) -> dict[str, Any]:
    """Read schema `name`; a missing or unreadable schema is a SchemaMissing error."""
    path = schema_path(name)
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise SchemaMissing(f"schema {name} not found under {SCHEMAS_DIR}") from None
    except json.JSONDecodeError as e:
        raise SchemaMissing(f"schema {name} is not valid JSON: {e}") from e


@lru_cache(maxsize=1)
def _reference_registry() -> RefRegistry:
    """All schemas by $id, so `$ref` between schema files resolves offline."""
    resources = []
    for path in sorted(SCHEMAS_DIR.rglob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(document, dict) and "$id" in document:
            resources.append((document["$id"], Resource.from_contents(document)))
    return RefRegistry().with_resources(resources)


def validator_for(schema: dict[str, Any]) -> Validator:
    """A compiled Draft 2020-12 validator that checks formats and resolves local $refs."""
    return Draft202012Validator(
        schema, registry=_reference_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


@lru_cache(maxsize=256)
def compiled_validator(name: str) -> Validator:
    """The cached validator of schema `name`."""
    return validator_for(load_schema(name))


def all_schema_files() -> list[Path]:
    """Every schema file in the repository."""
    return sorted(SCHEMAS_DIR.rglob("*.schema.json"))
