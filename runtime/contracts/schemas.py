r"""Loads the JSON Schemas under `schemas/` and compiles their validators once.

Validators are compiled once per schema (Draft 2020-12, format checking on); callers never pay a
meta-schema check per document.

`pattern` follows ECMA-262, the dialect JSON Schema names, not Python's `re`: in Python `$` also
matches before a trailing newline and `\d`/`\w` match non-ASCII digits and letters, so
`"<32 hex>\n"` would pass `^[0-9a-f]{32}$`. Every validator built here (and IG's compiled checks)
uses `ecma_regex`, which anchors `$` to the real end of the string and keeps classes ASCII.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
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


@lru_cache(maxsize=512)
def ecma_regex(pattern: str) -> re.Pattern[str]:
    r"""`pattern` compiled with ECMA-262 meaning: `$` (outside a class) is the end of the string, `\d`/`\w`/`\s` ASCII."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        elif ch == "$" and not in_class:
            ch = r"\Z"
        out.append(ch)
        i += 1
    return re.compile("".join(out), re.ASCII)


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


#: Draft 2020-12 with ECMA-262 `pattern` semantics: the validator class of every schema in the project.
SchemaValidator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


def validator_for(schema: dict[str, Any]) -> Validator:
    """A compiled Draft 2020-12 validator that checks formats, resolves local $refs and reads patterns as ECMA-262."""
    return SchemaValidator(
        schema, registry=_reference_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


@lru_cache(maxsize=256)
def compiled_validator(name: str) -> Validator:
    """The cached validator of schema `name`."""
    return validator_for(load_schema(name))


def all_schema_files() -> list[Path]:
    """Every schema file in the repository."""
    return sorted(SCHEMAS_DIR.rglob("*.schema.json"))
