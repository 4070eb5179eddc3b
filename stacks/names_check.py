"""Lint rule 4: the synthesised stacks and the registry name exactly the same resources.

Every bucket, topic/stream, ECS service, task definition, IAM role and SSM parameter in the
Terraform JSON must be a registry value of its kind for the stack's environment, and every
registry handle of those kinds must be synthesised somewhere. Daemon task definitions take the
family of their service (SVC_*), jobs their TD_* name. SVC_*/TD_* handles that no entry of the
component map (runtime/components.py) uses are reserved for components not built yet: nothing
synthesises them until their entry lands, and that is not a finding. The stacks are synthesised into a
temporary directory when `cdktn.out` is absent or older than the registry / stack sources.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from runtime.components import COMPONENTS
from runtime.contracts.handle_keys import ENVIRONMENTS
from runtime.contracts.registry import Registry, load_registry
from stacks.inventory import NAMED_KINDS, load_stack, resources
from stacks.synth import DEFAULT_OUT, STACKS_BY_ENV, is_current, source_digest, stack_file, synth

_MEMO: dict[str, tuple[str, list[NameFinding]]] = {}
#: A fixed commit for lint synthesis: names never depend on the image tag.
_LINT_SHA = "0" * 40


@dataclass(frozen=True)
class NameFinding:
    """A name mismatch between the stacks and the registry, at a file and line."""

    path: str
    line: int
    message: str


def expected_names(registry: Registry) -> dict[str, dict[str, str]]:
    """kind -> {registry value -> handle key} for the kinds rule 4 checks."""
    kinds: dict[str, dict[str, str]] = {kind: {} for kind, _ in NAMED_KINDS.values()}
    built = {c.ecs_key for c in COMPONENTS.values()}
    for handle in registry.handles():
        key, value, group = handle.key, handle.value, handle.group
        if value is None:
            continue
        if group == "buckets" or key == "TF_STATE_BUCKET":
            kinds["bucket"][str(value)] = key
        elif group == "topics":
            kinds["topic"][str(value["name"])] = key
        elif group == "ssm":
            kinds["SSM path"][str(value)] = key
        elif group == "iam" and key.startswith("ROLE_"):
            kinds["role"][str(value)] = key
        elif group == "ecs" and key.startswith(("SVC_", "TD_")) and key not in built:
            continue
        elif group == "ecs" and key.startswith("SVC_"):
            kinds["service"][str(value)] = key
            kinds["task definition"][str(value)] = key
        elif group == "ecs" and key.startswith("TD_"):
            kinds["task definition"][str(value)] = key
    return kinds


def synthesised_name_findings(registry_file: Path, out_dir: Path | None = None) -> list[NameFinding]:
    """Every synthesised name that is not a registry value, and every registry name never synthesised."""
    all_stacks = tuple(s for env in ENVIRONMENTS for s in STACKS_BY_ENV[env])
    if out_dir is not None:
        return _findings(registry_file, out_dir)
    if is_current(DEFAULT_OUT, registry_file, all_stacks):
        return _findings(registry_file, DEFAULT_OUT)
    digest = source_digest(registry_file)
    if digest not in _MEMO:  # one synthesis per process per registry content (lint tests copy the registry)
        with tempfile.TemporaryDirectory(prefix="fp-lint-synth-") as tmp:
            synth(environments=tuple(ENVIRONMENTS), out_dir=Path(tmp), registry_file=registry_file, sha=_LINT_SHA,
                  window_end_utc="lint")
            _MEMO[digest] = (str(registry_file), _findings(registry_file, Path(tmp)))
    source, findings = _MEMO[digest]
    return [NameFinding(str(registry_file) if f.path == source else f.path, f.line, f.message) for f in findings]


def _findings(registry_file: Path, directory: Path) -> list[NameFinding]:
    findings: list[NameFinding] = []
    for environment in ENVIRONMENTS:
        registry = load_registry(environment, registry_file)
        expected = expected_names(registry)
        seen: dict[str, set[str]] = {kind: set() for kind in expected}
        for stack in STACKS_BY_ENV[environment]:
            path = stack_file(directory, stack)
            for resource in resources(stack, load_stack(path)):
                if resource.type not in NAMED_KINDS:
                    continue
                kind = NAMED_KINDS[resource.type][0]
                name = resource.name
                seen[kind].add(name)
                if name not in expected[kind]:
                    findings.append(NameFinding(f"{path}", 1, f"stack {stack}: {kind} {name!r} ({resource.type}.{resource.logical_id}) "
                                                              f"is not a registry value of {environment}"))
        for kind, names in expected.items():
            for name, key in names.items():
                if name not in seen[kind]:
                    line = registry.handle(key).line
                    findings.append(NameFinding(str(registry_file), line, f"{environment}: {kind} {key} ({name!r}) is in the "
                                                                          "registry but no stack synthesises it"))
    return findings
