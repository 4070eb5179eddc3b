"""Every `pattern` in schemas/, found by walking the schema files, and a shortest string each one accepts.

Tests derive the patterned fields from the schemas themselves, so a new patterned field is tested
without anybody listing it.
"""

from __future__ import annotations

import json
import re
import re._constants as sre_c
import re._parser as sre_parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runtime.paths import SCHEMAS_DIR


@dataclass(frozen=True)
class PatternedField:
    """One `pattern` keyword: its schema file, JSON pointer and property path (None when not under properties)."""

    schema: str
    pointer: str
    pattern: str
    property_path: tuple[str, ...] | None


def _walk(node: Any, pointer: str, props: tuple[str, ...] | None) -> Iterator[tuple[str, str, tuple[str, ...] | None]]:
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield pointer, node["pattern"], props
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    yield from _walk(sub, f"{pointer}/properties/{name}", None if props is None else (*props, name))
            elif key != "pattern":
                yield from _walk(value, f"{pointer}/{key}", None)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{pointer}/{i}", None)


def patterned_fields() -> list[PatternedField]:
    """Every pattern of every schema file under schemas/."""
    out = []
    for path in sorted(SCHEMAS_DIR.rglob("*.json")):
        name = str(path.relative_to(SCHEMAS_DIR))
        for pointer, pattern, props in _walk(json.loads(path.read_text(encoding="utf-8")), "", ()):
            out.append(PatternedField(name, pointer or "/", pattern, props))
    return out


def _one_char(items: list[Any]) -> str:
    negate = any(op is sre_c.NEGATE for op, _ in items)
    candidates = [chr(c) for c in range(0x21, 0x7f)]
    for ch in candidates:
        hit = False
        for op, arg in items:
            if op is sre_c.LITERAL:
                hit |= ord(ch) == arg
            elif op is sre_c.RANGE:
                hit |= arg[0] <= ord(ch) <= arg[1]
            elif op is sre_c.CATEGORY:
                hit |= bool(re.fullmatch({sre_c.CATEGORY_DIGIT: r"\d", sre_c.CATEGORY_SPACE: r"\s",
                                          sre_c.CATEGORY_WORD: r"\w"}[arg], ch, re.ASCII))
        if hit != negate:
            return ch
    raise ValueError(f"no printable character for {items}")


def _emit(parsed: Any) -> str:
    out = []
    for op, arg in parsed:
        if op is sre_c.LITERAL:
            out.append(chr(arg))
        elif op is sre_c.IN:
            out.append(_one_char(arg))
        elif op is sre_c.ANY:
            out.append("x")
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            low, _high, sub = arg
            out.append(_emit(sub) * low)
        elif op is sre_c.SUBPATTERN:
            out.append(_emit(arg[-1]))
        elif op is sre_c.BRANCH:
            out.append(_emit(arg[1][0]))
        elif op is sre_c.AT:
            continue
        else:
            raise ValueError(f"sample generator does not know {op}")
    return "".join(out)


def sample(pattern: str) -> str:
    """A short string `pattern` accepts (checked with an anchored ASCII match)."""
    text = _emit(sre_parse.parse(pattern))
    if not re.search(pattern, text, re.ASCII):
        raise ValueError(f"generated {text!r} does not match {pattern!r}")
    return text
