"""The typed loader of `handles.registry.yaml`: the only way code gets a resource name.

`load_registry("local_parity")` reads, schema-validates and flattens the registry for one
environment (shared handles first, the environment's own on top). Every handle remembers its
group and source line so lint findings and errors can point at `file:line`.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from runtime.contracts.handle_keys import ENVIRONMENTS, KNOWN_KEYS, RESOURCE_NAME_GROUPS, required_keys
from runtime.contracts.schemas import load_schema, validator_for
from runtime.errors import HandleMissing, RegistryError
from runtime.paths import registry_path


@dataclass(frozen=True)
class Handle:
    """One registry entry: its key, value, group and where it is written."""

    key: str
    value: Any
    group: str
    line: int

    @property
    def names_a_resource(self) -> bool:
        """True when the value is the name of a real resource (linted as a literal)."""
        return self.group in RESOURCE_NAME_GROUPS


@dataclass(frozen=True)
class Topic:
    """A topic (Kafka) / stream (Kinesis) of the bus, with its sizing."""

    key: str
    name: str
    partitions: int
    retention_hours: int


@dataclass(frozen=True)
class Finding:
    """A registry problem at a place in the file."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _line_index(node: yaml.Node, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map every mapping-key path in the YAML document to its 1-based line."""
    index: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            index[path] = key_node.start_mark.line + 1
            index.update(_line_index(value_node, path))
    return index


def read_document(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """Parse the registry file; malformed YAML is a RegistryError naming file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RegistryError(f"cannot read handles registry {path}: {e.strerror}") from e
    try:
        node = yaml.compose(text)
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise RegistryError(f"{where}: malformed YAML: {problem}") from e
    if not isinstance(document, dict) or node is None:
        raise RegistryError(f"{path}:1: the registry must be a YAML mapping")
    return document, _line_index(node)


def check_document(path: Path) -> list[Finding]:
    """Every schema violation, unknown key and missing required key, each with its line."""
    document, lines = read_document(path)
    findings: list[Finding] = []
    validator = validator_for(load_schema("handles.registry.schema.json"))
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path))):
        where = tuple(str(p) for p in error.absolute_path)
        line = _nearest_line(lines, where)
        location = "/".join(where) or "(root)"
        findings.append(Finding(path, line, f"schema: {location}: {error.message}"))
    if findings:
        return findings
    sections = {"shared": document["shared"], **{f"environments.{e}": document["environments"][e] for e in ENVIRONMENTS}}
    for section_name, groups in sections.items():
        prefix = tuple(section_name.split("."))
        for group, entries in groups.items():
            if not isinstance(entries, dict):
                continue
            for key in entries:
                if key not in KNOWN_KEYS:
                    line = lines.get((*prefix, group, key), 1)
                    findings.append(Finding(path, line, f"unknown handle key {key} (not in runtime/contracts/handle_keys.py)"))
    for environment in ENVIRONMENTS:
        defined = set(_flatten(document, environment))
        env_line = lines.get(("environments", environment), 1)
        for key in required_keys(environment):
            if key not in defined:
                findings.append(Finding(path, env_line, f"{environment}: required handle key {key} is missing"))
    return findings


def _nearest_line(lines: dict[tuple[str, ...], int], where: tuple[str, ...]) -> int:
    for end in range(len(where), 0, -1):
        if where[:end] in lines:
            return lines[where[:end]]
    return 1


def _flatten(document: dict[str, Any], environment: str) -> dict[str, tuple[Any, str, tuple[str, ...]]]:
    flat: dict[str, tuple[Any, str, tuple[str, ...]]] = {}
    for section, groups in (("shared", document["shared"]), (f"environments.{environment}", document["environments"][environment])):
        prefix = tuple(section.split("."))
        for group, entries in groups.items():
            if isinstance(entries, dict):
                for key, value in entries.items():
                    flat[key] = (value, group, (*prefix, group, key))
    return flat


class Registry:
    """The handles of one environment, looked up by key."""

    def __init__(self, environment: str, handles: dict[str, Handle], source: Path, project: str,
                 source_sha256: str | None = None):
        self.environment = environment
        self.source = source
        self.project = project
        #: sha256 of the registry file's bytes when it was loaded: P1 pins it in run.json and P11's
        #: conformance checks the reporter loaded the same file.
        self.source_sha256 = source_sha256
        self._handles = handles

    def __contains__(self, key: str) -> bool:
        return key in self._handles

    def handle(self, key: str) -> Handle:
        """The entry for `key`; HandleMissing names the key and environment."""
        try:
            return self._handles[key]
        except KeyError:
            raise HandleMissing(f"handle {key} is not defined for environment {self.environment}") from None

    def value(self, key: str) -> Any:
        """The raw value of `key`."""
        return self.handle(key).value

    def text(self, key: str) -> str:
        """The value of `key` as a non-empty string."""
        value = self.value(key)
        if value is None or isinstance(value, (dict, list)):
            raise HandleMissing(f"handle {key} has no text value in environment {self.environment}")
        return str(value)

    def integer(self, key: str) -> int:
        """The value of `key` as an integer."""
        value = self.value(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise HandleMissing(f"handle {key} is not an integer in environment {self.environment}")
        return value

    def names(self, key: str) -> list[str]:
        """The value of `key` as a list of strings."""
        value = self.value(key)
        if not isinstance(value, list):
            raise HandleMissing(f"handle {key} is not a list in environment {self.environment}")
        return [str(v) for v in value]

    def mapping(self, key: str) -> dict[str, Any]:
        """The value of `key` as a mapping."""
        value = self.value(key)
        if not isinstance(value, dict):
            raise HandleMissing(f"handle {key} is not a mapping in environment {self.environment}")
        return value

    def topic(self, key: str) -> Topic:
        """The topic/stream behind a `FP_BUS_*` key."""
        handle = self.handle(key)
        if handle.group != "topics":
            raise HandleMissing(f"handle {key} is not a topic")
        v = handle.value
        return Topic(key=key, name=v["name"], partitions=int(v["partitions"]), retention_hours=int(v["retention_hours"]))

    def topics(self) -> list[Topic]:
        """Every topic of the environment, in registry order."""
        return [self.topic(h.key) for h in self._handles.values() if h.group == "topics"]

    def group(self, group: str) -> dict[str, Any]:
        """Every key -> value of one registry group."""
        return {h.key: h.value for h in self._handles.values() if h.group == group}

    def handles(self) -> list[Handle]:
        """All handles of the environment."""
        return list(self._handles.values())

    def render(self, key: str, **params: str) -> str:
        """Fill the `{placeholders}` of a pattern handle; a missing parameter is an error."""
        pattern = self.text(key)
        needed = {name for _, name, _, _ in string.Formatter().parse(pattern) if name}
        missing = sorted(needed - params.keys())
        if missing:
            raise HandleMissing(f"pattern {key} needs {', '.join(missing)}")
        return pattern.format(**params)

    def resource_names(self) -> dict[str, str]:
        """Every resource-name value (topic names included) -> the handle key that owns it."""
        names: dict[str, str] = {}
        for handle in self._handles.values():
            if not handle.names_a_resource:
                continue
            values: list[Any]
            if handle.group == "topics":
                values = [handle.value["name"]]
            elif isinstance(handle.value, list):
                values = handle.value
            else:
                values = [handle.value]
            for v in values:
                if isinstance(v, str) and _is_name_like(v):
                    names.setdefault(v, handle.key)
        return names


_NAME_LIKE = re.compile(r"[A-Za-z]")


def _is_name_like(value: str) -> bool:
    # Placeholders and references ("env:X", "{...}", "terraform-output:x") are not names.
    return bool(_NAME_LIKE.search(value)) and len(value) >= 6 and "{" not in value and ":" not in value


def load_registry(environment: str, path: Path | None = None) -> Registry:
    """Load and validate the registry, then return the handles of `environment`."""
    source = path or registry_path()
    return _load(environment, source.resolve(), source.stat().st_mtime if source.exists() else 0.0)


@lru_cache(maxsize=8)
def _load(environment: str, source: Path, _mtime: float) -> Registry:
    if environment not in ENVIRONMENTS:
        raise RegistryError(
            f"unknown environment {environment!r}; known: {', '.join(ENVIRONMENTS)}",
            code="UNKNOWN_ENV",
            next_step="use --env local_parity or --env dev_min",
        )
    findings = check_document(source)
    if findings:
        raise RegistryError(f"{findings[0]}" + (f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""))
    document, lines = read_document(source)
    flat = _flatten(document, environment)
    handles = {key: Handle(key, value, group, lines.get(where, 1)) for key, (value, group, where) in flat.items()}
    return Registry(environment, handles, source, document["project"], hashlib.sha256(source.read_bytes()).hexdigest())
