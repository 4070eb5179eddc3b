"""Compiles the simple JSON Schemas of events into plain Python checks, for the per-event hot paths.

jsonschema costs ~125 us per event for envelope + payload, and IG checks every event it admits and
DLA every lane record it logs; so the subset of keywords our event schemas use (type, required,
properties, additionalProperties (false or a schema), min/maxProperties, enum, const, pattern,
min/maxLength, minimum/maximum, items, min/maxItems, uniqueItems, format date-time, allOf, oneOf,
if/then/else) is
compiled once per schema: one generated predicate answers valid documents, and closures name the
first problem of an invalid one (`fast_check` puts the two together). Patterns have their JSON
Schema (ECMA-262) meaning, as in runtime.contracts.schemas: `$` is the real end. A schema using
any other keyword is not compiled: `fast_check` falls back to the jsonschema validator for it.
Tests prove the compiled checks agree with jsonschema on valid and broken documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from runtime.contracts.schemas import compiled_validator, ecma_regex, load_schema

#: instance -> None when valid, else "path: message"
Check = Callable[[Any, str], str | None]

_META = {"$schema", "$id", "title", "description", "$comment", "examples", "default"}
_SUPPORTED = _META | {"type", "required", "properties", "additionalProperties", "minProperties", "maxProperties", "enum",
                      "const", "pattern", "minLength", "maxLength", "minimum", "maximum", "items", "minItems", "maxItems",
                      "uniqueItems", "format", "allOf", "oneOf", "if", "then", "else"}
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


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON Schema defines it: 1 == 1.0, but true is not 1; arrays and objects by content."""
    if _num(a) and _num(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _all_unique(items: list[Any]) -> bool:
    """`uniqueItems`: no two items equal (a set for the usual list of strings, pairs otherwise)."""
    if all(type(x) is str for x in items):
        return len(set(items)) == len(items)
    return not any(_json_equal(items[i], items[j]) for i in range(len(items)) for j in range(i + 1, len(items)))


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
    if not isinstance(extra, (bool, dict)):
        raise Unsupported("additionalProperties of another kind than a boolean or a schema")
    other: Check | None = compile_schema(extra) if isinstance(extra, dict) else None
    lo, hi = schema.get("minProperties"), schema.get("maxProperties")
    if not (required or props or extra is not True or lo is not None or hi is not None):
        return

    def check_object(v: Any, at: str) -> str | None:
        if not isinstance(v, dict):
            return None
        if lo is not None and len(v) < lo:
            return f"{at}: should have at least {lo} properties"
        if hi is not None and len(v) > hi:
            return f"{at}: should have at most {hi} properties"
        for name in required:
            if name not in v:
                return f"{at}: '{name}' is a required property"
        for name, value in v.items():
            sub = props.get(name, other)
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
    unique = schema.get("uniqueItems") is True
    if item is None and lo is None and hi is None and not unique:
        return

    def check_array(v: Any, at: str) -> str | None:
        if not isinstance(v, list):
            return None
        if lo is not None and len(v) < lo:
            return f"{at}: too few items"
        if hi is not None and len(v) > hi:
            return f"{at}: too many items"
        if unique and not _all_unique(v):
            return f"{at}: has non-unique elements"
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
    if "oneOf" in schema:
        options = [compile_schema(sub) for sub in schema["oneOf"]]

        def check_one_of(v: Any, at: str) -> str | None:
            matched = sum(1 for option in options if option(v, at) is None)
            if matched == 1:
                return None
            return f"{at}: {v!r:.60} is {'not valid under any' if matched == 0 else 'valid under more than one'} of the given schemas"
        checks.append(check_one_of)


# --- generated predicates ------------------------------------------------------------------------
#
# The closures above give the exact first problem of a document; most documents have none, and for
# them the walk through one closure per keyword per value is the cost (half of IG's CPU per event).
# `compile_predicate` writes one plain Python function per schema instead (straight-line checks, no
# calls per value except `if` conditions, formats and patterns) that answers only valid or not. The
# gate asks it first and asks the closures for the message only when it says invalid, so the
# decision and the message stay the closures' own as long as the two agree, which tests prove on
# valid, broken and random documents.

Predicate = Callable[[Any], bool]

_NUMBER_TEST = "(not isinstance({v}, bool) and isinstance({v}, (int, float)))"
_TYPE_TESTS = {
    "string": "isinstance({v}, str)",
    "object": "isinstance({v}, dict)",
    "array": "isinstance({v}, list)",
    "boolean": "isinstance({v}, bool)",
    "null": "{v} is None",
    "number": _NUMBER_TEST,
    "integer": "(not isinstance({v}, bool) and (isinstance({v}, int) or (isinstance({v}, float) and {v}.is_integer())))",
}


class _Writer:
    """Source of one predicate module: functions, their lines, and the constants they name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"_date_time_ok": _date_time_ok, "_all_unique": _all_unique, "_MISSING": _MISSING}
        self.count = 0

    def name(self, prefix: str) -> str:
        """A fresh local name."""
        self.count += 1
        return f"_{prefix}{self.count}"

    def const(self, value: Any) -> str:
        """A fresh global name bound to `value`."""
        name = self.name("k")
        self.names[name] = value
        return name

    def function(self, schema: dict[str, Any]) -> str:
        """Write `def _fN(v0): ... return True` for `schema`; its name."""
        fname = self.name("f")
        body: list[str] = []
        self.emit(schema, "v0", 1, body)
        self.lines += [f"def {fname}(v0):", *body, "    return True", ""]
        return fname

    def emit(self, schema: dict[str, Any], v: str, depth: int, out: list[str]) -> None:
        """Lines that `return False` when `v` breaks `schema` (and fall through when it does not)."""
        unknown = set(schema) - _SUPPORTED
        if unknown:
            raise Unsupported(", ".join(sorted(unknown)))
        pad = "    " * depth
        known: str | None = None  # the one JSON type `v` is known to have after the type check
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            for t in types:
                if not isinstance(t, str) or t not in _TYPE_TESTS:
                    raise Unsupported(f"type {t}")
            out.append(f"{pad}if not ({' or '.join(_TYPE_TESTS[t].format(v=v) for t in types)}): return False")
            known = types[0] if len(types) == 1 else None
        if "enum" in schema:
            options = schema["enum"]
            if options and all(type(o) is str for o in options):
                out.append(f"{pad}if not (type({v}) is str and {v} in {self.const(frozenset(options))}): return False")
            else:
                out.append(f"{pad}if not {self.const(_enum_test(options))}({v}): return False")
        if "const" in schema:
            const = schema["const"]
            out.append(f"{pad}if not ({v} == {self.const(const)} and type({v}) is {self.const(type(const))}): return False")
        self._strings(schema, v, pad, known == "string", out)
        if "minimum" in schema or "maximum" in schema:
            tests = []
            if schema.get("minimum") is not None:
                tests.append(f"{v} < {self.const(schema['minimum'])}")
            if schema.get("maximum") is not None:
                tests.append(f"{v} > {self.const(schema['maximum'])}")
            if tests:
                out.append(f"{pad}if {_NUMBER_TEST.format(v=v)} and ({' or '.join(tests)}): return False")
        self._object(schema, v, depth, known == "object", out)
        self._array(schema, v, depth, known == "array", out)
        for sub in schema.get("allOf", []):
            self.emit(sub, v, depth, out)
        if "oneOf" in schema:
            options = [self.function(sub) for sub in schema["oneOf"]]
            out.append(f"{pad}if ({' + '.join(f'{o}({v})' for o in options)}) != 1: return False")
        if "if" in schema:
            condition = self.function(schema["if"])
            then, otherwise = schema.get("then"), schema.get("else")
            if then is not None:
                out.append(f"{pad}if {condition}({v}):")
                self.emit(then, v, depth + 1, out)
                out.append(f"{pad}    pass")
            if otherwise is not None:
                out.append(f"{pad}if not {condition}({v}):")
                self.emit(otherwise, v, depth + 1, out)
                out.append(f"{pad}    pass")

    def _strings(self, schema: dict[str, Any], v: str, pad: str, is_str: bool, out: list[str]) -> None:
        tests = []
        if "pattern" in schema:
            tests.append(f"not {self.const(ecma_regex(schema['pattern']))}.search({v})")
        if "minLength" in schema and schema["minLength"] > 0:
            tests.append(f"len({v}) < {self.const(schema['minLength'])}")
        if schema.get("maxLength") is not None:
            tests.append(f"len({v}) > {self.const(schema['maxLength'])}")
        if "format" in schema:
            if schema["format"] != "date-time":
                raise Unsupported(f"format {schema['format']}")
            tests.append(f"not _date_time_ok({v})")
        if tests:
            guard = "" if is_str else f"isinstance({v}, str) and "
            out.append(f"{pad}if {guard}({' or '.join(tests)}): return False")

    def _object(self, schema: dict[str, Any], v: str, depth: int, is_dict: bool, out: list[str]) -> None:
        required = list(schema.get("required", []))
        props: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        lo, hi = schema.get("minProperties"), schema.get("maxProperties")
        if not isinstance(extra, (bool, dict)):
            raise Unsupported("additionalProperties of another kind than a boolean or a schema")
        if not (required or props or extra is not True or lo is not None or hi is not None):
            return
        depth = _guarded("dict", v, depth, is_dict, out)
        pad = "    " * depth
        if lo is not None:
            out.append(f"{pad}if len({v}) < {self.const(lo)}: return False")
        if hi is not None:
            out.append(f"{pad}if len({v}) > {self.const(hi)}: return False")
        if required:
            out.append(f"{pad}if not ({' and '.join(f'{name!r} in {v}' for name in required)}): return False")
        if extra is False:
            allowed = self.const(frozenset(props))
            out.append(f"{pad}for k in {v}:")
            out.append(f"{pad}    if k not in {allowed}: return False")
        elif isinstance(extra, dict):
            allowed, x = self.const(frozenset(props)), self.name("v")
            out.append(f"{pad}for k, {x} in {v}.items():")
            out.append(f"{pad}    if k in {allowed}: continue")
            self.emit(extra, x, depth + 1, out)
        for name, sub in props.items():
            x = self.name("v")
            body: list[str] = []
            if name in required:
                out.append(f"{pad}{x} = {v}[{name!r}]")
                self.emit(sub, x, depth, out)
            else:
                self.emit(sub, x, depth + 1, body)
                if body:
                    out.append(f"{pad}{x} = {v}.get({name!r}, _MISSING)")
                    out.append(f"{pad}if {x} is not _MISSING:")
                    out.extend(body)

    def _array(self, schema: dict[str, Any], v: str, depth: int, is_list: bool, out: list[str]) -> None:
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        unique = schema.get("uniqueItems") is True
        if "items" not in schema and lo is None and hi is None and not unique:
            return
        depth = _guarded("list", v, depth, is_list, out)
        pad = "    " * depth
        if lo is not None:
            out.append(f"{pad}if len({v}) < {self.const(lo)}: return False")
        if hi is not None:
            out.append(f"{pad}if len({v}) > {self.const(hi)}: return False")
        if unique:
            out.append(f"{pad}if not _all_unique({v}): return False")
        if "items" in schema:
            x = self.name("v")
            out.append(f"{pad}for {x} in {v}:")
            out.append(f"{pad}    pass")
            self.emit(schema["items"], x, depth + 1, out)


def _guarded(kind: str, v: str, depth: int, known: bool, out: list[str]) -> int:
    """Open a block that runs only when `v` is a `kind` (unless the type check already made sure);
    the depth of the lines inside it."""
    if not known:
        out.append(f"{'    ' * depth}if isinstance({v}, {kind}):")
        depth += 1
    out.append(f"{'    ' * depth}pass")
    return depth


class _Missing:
    """The value of a property a document does not have."""


_MISSING = _Missing()


def _enum_test(options: list[Any]) -> Predicate:
    def test(v: Any) -> bool:
        return any((v == o and type(v) is type(o)) or (_num(v) and _num(o) and v == o) for o in options)
    return test


def compile_predicate(schema: dict[str, Any]) -> Predicate:
    """One generated function answering whether a document satisfies `schema` (exactly when
    `compile_schema(schema)` finds no problem); Unsupported for keywords outside the compiled subset."""
    writer = _Writer()
    entry = writer.function(schema)
    namespace: dict[str, Any] = dict(writer.names)
    # The source is written from our own schema files, never from request text.
    exec(compile("\n".join(writer.lines), f"<predicate {schema.get('$id', entry)}>", "exec"), namespace)
    predicate: Predicate = namespace[entry]
    return predicate


def fast_check(schema_name: str) -> Check:
    """The compiled check of a schema, or (for keywords outside the compiled subset) one backed by jsonschema.

    A valid document is answered by the schema's generated predicate alone; only a document it
    refuses goes through the closures, which name the first problem ("path: message")."""
    try:
        schema = load_schema(schema_name)
        return checked_by_predicate(compile_predicate(schema), compile_schema(schema))
    except Unsupported:
        validator = compiled_validator(schema_name)

        def check(document: Any, at: str = "(root)") -> str | None:
            return None if validator.is_valid(document) else _first_error(validator, document)
        return check


def checked_by_predicate(valid: Predicate, explain: Check) -> Check:
    """A check answering None when `valid` says so, else the problem `explain` finds."""
    def check(document: Any, at: str = "(root)") -> str | None:
        return None if valid(document) else explain(document, at)
    return check


def _first_error(validator: Any, document: Any) -> str:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return "invalid"
    e = errors[0]
    where = "/".join(str(p) for p in e.absolute_path) or "(root)"
    return f"{where}: {e.message}"[:300]
