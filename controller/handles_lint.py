"""`fp handles lint`: the registry is the only place a resource name is written.

Rules: (1) the registry matches its schema; (2) every handle key an environment requires is
there and no key is unknown; (3) no registry resource name is written as a literal in code,
stacks, Makefile or docs, unless the line names the handle key beside it (seed 004 B.2).
Tests are outside rule 3: they may spell a value to check the registry itself. (4) every bucket,
topic, service, task definition, role and SSM path in the synthesised stacks is a registry value,
and every registry handle of those kinds is synthesised (stacks/names_check.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runtime.contracts.handle_keys import ENVIRONMENTS
from runtime.contracts.registry import check_document, load_registry

#: Folders and files scanned for literal resource names, relative to the repository root.
SCANNED = ("runtime", "controller", "stacks", "benchmarks", "docs", "README.md", "Makefile", "Dockerfile", ".ci",
           "pyproject.toml")
SCANNED_SUFFIXES = {".py", ".md", ".sh", ".toml", ".yaml", ".yml", ".json", ".txt", ".cfg", ""}
SKIPPED_PARTS = {"__pycache__", ".venv", "cdktn.out", "runs", ".mypy_cache", ".ruff_cache"}


@dataclass(frozen=True)
class LintFinding:
    """One finding: where, and what is wrong."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _scanned_files(root: Path) -> Iterator[Path]:
    for name in SCANNED:
        target = root / name
        if target.is_file():
            yield target
        elif target.is_dir():
            for path in sorted(target.rglob("*")):
                if path.is_file() and path.suffix in SCANNED_SUFFIXES and not SKIPPED_PARTS & set(path.parts):
                    yield path


def literal_findings(root: Path, names: dict[str, str], files: Iterable[Path] | None = None) -> list[LintFinding]:
    """Lines outside the registry that spell a registry resource name without its handle key."""
    if not names:
        return []
    alternatives = "|".join(re.escape(v) for v in sorted(names, key=len, reverse=True))
    pattern = re.compile(rf"(?<![A-Za-z0-9_./-])({alternatives})(?![A-Za-z0-9_/-])")
    findings = []
    for path in files if files is not None else _scanned_files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            for match in pattern.finditer(line):
                value = match.group(1)
                key = names[value]
                if key in line:
                    continue
                shown = path.relative_to(root) if path.is_relative_to(root) else path
                findings.append(LintFinding(str(shown), number, f"literal {value!r} is registry handle {key}; ask the registry for it"))
    return findings


def lint(root: Path, registry_file: Path, *, synthesised: bool = True) -> list[LintFinding]:
    """Every finding of rules 1-4 for the repository at `root` (rule 4 unless `synthesised` is False)."""
    findings = [LintFinding(str(f.path), f.line, f.message) for f in check_document(registry_file)]
    if findings:
        return findings
    names: dict[str, str] = {}
    for environment in ENVIRONMENTS:
        names.update(load_registry(environment, registry_file).resource_names())
    findings += literal_findings(root, names)
    if synthesised:
        from stacks.names_check import synthesised_name_findings  # imports cdktn only when it must synthesise

        findings += [LintFinding(f.path, f.line, f.message) for f in synthesised_name_findings(registry_file)]
    return findings
