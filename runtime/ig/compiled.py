"""Compiles the simple JSON Schemas of envelopes and payloads into plain Python checks.

jsonschema costs ~125 us per event for envelope + payload; IG validates every event of every
batch, so the gate compiles the subset of keywords our event schemas use (type, required,
properties, additionalProperties: false, enum, const, pattern, min/maxLength, minimum/maximum,
items, min/maxItems, format date-time, allOf, if/then/else) into closures once, at start. Patterns
have their JSON Schema (ECMA-262) meaning, as in runtime.contracts.schemas: `$` is the real end. A schema using any other
keyword is not compiled: the caller falls back to the jsonschema validator for it. Tests prove the
compiled check agrees with jsonschema on valid and broken documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from runtime.contracts.schemas import ecma_regex

#: instance -> None when valid, else "path: message"
Check = Callable[[Any, str], str | None]

_META = {"$schema", "$id", "title", "description", "$comment", "examples", "default"}
_SUPPORTED = _META | {"type", "required", "properties", "additionalProperties", "enum", "const", "pattern", "minLength",
                      "maxLength", "minimum", "maximum", "items", "minItems", "maxItems", "format", "allOf", "if",
                      "then", "else"}
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)


class Unsupported(Exception):
    """The schema uses a keyword this compiler does not implement."""


def _is_type(value: Any, name: str) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float))
    raise Unsupported(f"type {name}")


def _date_time_ok(value: str) -> bool:
    if not _DATE_TIME.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def compile_schema(schema: dict[str, Any]) -> Check:
    """A check for `schema`; Unsupported when it uses a keyword outside the compiled subset."""
    unknown = set(schema) - _SUPPORTED
    if unknown:
        raise Unsupported(", ".join(sorted(unknown)))
    checks: list[Check] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        for t in types:
            _is_type(None, t)  # Unsupported for unknown type names

        is_type = _type_predicate(types)

        def check_type(v: Any, at: str, types: list[str] = types) -> str | None:
            return None if is_type(v) else f"{at}: {v!r:.60} is not of type {' or '.join(types)}"
        checks.append(check_type)
    if "enum" in schema:
        options = schema["enum"]

        def check_enum(v: Any, at: str) -> str | None:
            return None if any((v == o and type(v) is type(o)) or (_num(v) and _num(o) and v == o) for o in options) \
                else f"{at}: {v!r:.60} is not one of {options}"
        checks.append(check_enum)
    if "const" in schema:
        const = schema["const"]

        def check_const(v: Any, at: str) -> str | None:
            return None if v == const and type(v) is type(const) else f"{at}: {const!r} was expected"
        checks.append(check_const)
    _string_checks(schema, checks)
    _number_checks(schema, checks)
    _object_checks(schema, checks)
    _array_checks(schema, checks)
    _combinator_checks(schema, checks)

    if len(checks) == 1:  # most sub-schemas: the check itself, one call less per value
        only = checks[0]

        def run_one(v: Any, at: str = "(root)") -> str | None:
            return only(v, at)
        return run_one

    def run(v: Any, at: str = "(root)") -> str | None:
        for c in checks:
            problem = c(v, at)
            if problem:
                return problem
        return None
    return run


#: Python types that satisfy a JSON type by isinstance alone (bool is an int in Python: handled apart).
_PLAIN_TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "object": dict, "array": list, "boolean": bool}


def _type_predicate(types: list[str]) -> Callable[[Any], bool]:
    """One predicate for a `type` keyword: a single isinstance for the plain types, `_is_type` otherwise."""
    if all(t in _PLAIN_TYPES for t in types):
        plain = tuple(_PLAIN_TYPES[t] for t in types)
        kinds: type | tuple[type, ...] = plain[0] if len(plain) == 1 else plain  # type: ignore[assignment]
        return lambda v: isinstance(v, kinds)
    return lambda v: any(_is_type(v, t) for t in types)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _string_checks(schema: dict[str, Any], checks: list[Check]) -> None:
    if "pattern" in schema:
        rx = ecma_regex(schema["pattern"])

        def check_pattern(v: Any, at: str) -> str | None:
            return None if not isinstance(v, str) or rx.search(v) else f"{at}: {v!r:.60} does not match {rx.pattern!r}"
        checks.append(check_pattern)
    if "minLength" in schema or "maxLength" in schema:
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")

        def check_len(v: Any, at: str) -> str | None:
            if not isinstance(v, str):
                return None
            if len(v) < lo:
                return f"{at}: {v!r:.60} is shorter than {lo}"
            if hi is not None and len(v) > hi:
                return f"{at}: {v!r:.60} is longer than {hi}"
            return None
        checks.append(check_len)
    if "format" in schema:
        if schema["format"] != "date-time":
            raise Unsupported(f"format {schema['format']}")

        def check_dt(v: Any, at: str) -> str | None:
            return None if not isinstance(v, str) or _date_time_ok(v) else f"{at}: {v!r:.60} is not a 'date-time'"
        checks.append(check_dt)


def _number_checks(schema: dict[str, Any], checks: list[Check]) -> None:
    if "minimum" in schema or "maximum" in schema:
        lo, hi = schema.get("minimum"), schema.get("maximum")

        def check_range(v: Any, at: str) -> str | None:
            if not _num(v):
                return None
            if lo is not None and v < lo:
                return f"{at}: {v} is less than the minimum of {lo}"
            if hi is not None and v > hi:
                return f"{at}: {v} is greater than the maximum of {hi}"
            return None
        checks.append(check_range)


def _object_checks(schema: dict[str, Any], checks: list[Check]) -> None:
    required = list(schema.get("required", []))
    props = {name: compile_schema(sub) for name, sub in schema.get("properties", {}).items()}
    extra = schema.get("additionalProperties", True)
    if not isinstance(extra, bool):
        raise Unsupported("additionalProperties as a schema")
    if not (required or props or extra is False):
        return

    def check_object(v: Any, at: str) -> str | None:
        if not isinstance(v, dict):
            return None
        for name in required:
            if name not in v:
                return f"{at}: '{name}' is a required property"
        for name, value in v.items():
            sub = props.get(name)
            if sub is not None:
                problem = sub(value, name if at == "(root)" else f"{at}/{name}")
                if problem:
                    return problem
            elif extra is False:
                return f"{at}: additional property {name!r} is not allowed"
        return None
    checks.append(check_object)


def _array_checks(schema: dict[str, Any], checks: list[Check]) -> None:
    item = compile_schema(schema["items"]) if "items" in schema else None
    lo, hi = schema.get("minItems"), schema.get("maxItems")
    if item is None and lo is None and hi is None:
        return

    def check_array(v: Any, at: str) -> str | None:
        if not isinstance(v, list):
            return None
        if lo is not None and len(v) < lo:
            return f"{at}: too few items"
        if hi is not None and len(v) > hi:
            return f"{at}: too many items"
        if item is not None:
            for i, x in enumerate(v):
                problem = item(x, f"{at}/{i}")
                if problem:
                    return problem
        return None
    checks.append(check_array)


def _combinator_checks(schema: dict[str, Any], checks: list[Check]) -> None:
    for sub in schema.get("allOf", []):
        checks.append(compile_schema(sub))
    if "if" in schema:
        condition = compile_schema(schema["if"])
        then = compile_schema(schema["then"]) if "then" in schema else None
        otherwise = compile_schema(schema["else"]) if "else" in schema else None

        def check_if(v: Any, at: str) -> str | None:
            branch = then if condition(v, at) is None else otherwise
            return None if branch is None else branch(v, at)
        checks.append(check_if)
