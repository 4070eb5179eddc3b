"""Environment conformance: did the run happen on the environment it claims, the way it claims?

Four expectations, each a check with what was expected and what was observed (seed 001 section
11): every handle the evidence names resolves in the registry; every pack consumed its own run
only (run scope in its daemons' health, consumer groups named for the run); no forbidden
infrastructure was up (local: only the substrate's own processes; dev_min: no NAT gateway, load
balancer or managed Kafka); and what P1 pinned is what ran, one check per pin: the policy digest
the decisions report, the registry file the reporter loaded, and in dev_min the image digest the
run's ECS task definitions reference (P11 observes them before the reporter job). The reporter
gathers the facts (evidence files, health documents, the decisions' policy digests, P11's close
inputs); these functions judge them. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CATEGORIES = ("handles_resolved", "run_scope_enforced", "no_forbidden_infrastructure", "pinned_versions_in_use",
              "health", "other")
#: Substrate processes a local run may start (controller/substrate/local.py).
LOCAL_SUBSTRATE_PROCESSES = frozenset({"moto", "postgres", "tansu"})
#: Resource types dev_min must never hold (seed 004: no NAT, no load balancer, no managed Kafka).
DEV_MIN_FORBIDDEN_RESOURCE_TYPES = frozenset({
    "aws_nat_gateway", "aws_lb", "aws_alb", "aws_elb", "aws_msk_cluster", "aws_msk_serverless_cluster"})


@dataclass(frozen=True)
class Check:
    """One expectation of the environment and whether the run met it."""

    name: str
    category: str
    ok: bool
    detail: str
    expected: Any = None
    observed: Any = None
    pack: str | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown check category {self.category!r}")

    def document(self) -> dict[str, Any]:
        """The check as environment_conformance.json writes it."""
        return {"name": self.name, "category": self.category, "ok": self.ok, "detail": self.detail,
                "expected": self.expected, "observed": self.observed, "pack": self.pack}


def handles_resolved(registry_keys: Iterable[str], documents: Mapping[str, Mapping[str, Any]]) -> Check:
    """Every handle named in the `source_handles` of an evidence file is a registry key."""
    keys = set(registry_keys)
    named = {h for doc in documents.values() for h in doc.get("source_handles") or [] if isinstance(h, str)}
    unknown = sorted(named - keys)
    detail = (f"{len(named)} handles named by {len(documents)} evidence files, all in the registry" if not unknown
              else f"not in the registry: {', '.join(unknown[:10])}")
    return Check("every handle the evidence names resolves", "handles_resolved", not unknown, detail,
                 expected=len(named), observed=len(named) - len(unknown))


def run_scope_enforced(platform_run_id: str, packs: Mapping[str, Sequence[str]],
                       health: Mapping[str, Mapping[str, Any]], groups: Mapping[str, str]) -> list[Check]:
    """Per pack: each member's health is for this run, its consumer group is the run's, and it
    consumed no record of another run (`skipped_other_run` is counted, never applied)."""
    checks = []
    for pack, members in sorted(packs.items()):
        problems: list[str] = []
        for component in members:
            doc = health.get(component)
            if doc is None:
                problems.append(f"{component}: no health document")
                continue
            if doc.get("platform_run_id") != platform_run_id:
                problems.append(f"{component}: health is for {doc.get('platform_run_id')}")
            group = doc.get("consumer_group")
            if group is not None and group != groups.get(component):
                problems.append(f"{component}: consumer group {group}, expected {groups.get(component)}")
        detail = f"{len(members)} member(s) scoped to {platform_run_id}" if not problems else "; ".join(problems)
        checks.append(Check(f"pack {pack} consumes run {platform_run_id} only", "run_scope_enforced", not problems,
                            detail, expected=platform_run_id, observed=sorted(problems) or platform_run_id, pack=pack))
    return checks


def no_forbidden_infrastructure(environment: str, *, processes: Sequence[Mapping[str, Any]] = (),
                                resource_types: Iterable[str] = ()) -> Check:
    """Local: only the substrate's own processes, all started by us. dev_min: no forbidden resource type."""
    if environment == "local_parity":
        foreign = sorted(str(p.get("name")) for p in processes
                         if p.get("name") not in LOCAL_SUBSTRATE_PROCESSES or not p.get("started_by_us", True))
        return Check("only the local substrate's own servers", "no_forbidden_infrastructure", not foreign,
                     f"{len(processes)} substrate process(es)" if not foreign else f"unexpected: {', '.join(foreign)}",
                     expected=sorted(LOCAL_SUBSTRATE_PROCESSES), observed=sorted(str(p.get("name")) for p in processes))
    found = sorted(set(resource_types) & DEV_MIN_FORBIDDEN_RESOURCE_TYPES)
    return Check("no NAT gateway, load balancer or managed Kafka", "no_forbidden_infrastructure", not found,
                 "none found" if not found else f"forbidden: {', '.join(found)}",
                 expected=[], observed=found)


def pinned_versions_in_use(pinned: Mapping[str, Any], in_use: Mapping[str, Iterable[Any]], *,
                           name: str = "what P1 pinned is what ran") -> Check:
    """Each pin of run.json (e.g. config digest, policy digest, git sha) is the only value the run's
    components report for it; a pin nobody reports is not evidence of use and fails. A mismatch
    names the pin, what P1 pinned and what is in use."""
    problems = []
    observed: dict[str, list[Any]] = {}
    for pin, want in sorted(pinned.items()):
        seen = sorted({str(v) for v in in_use.get(pin, ())})
        observed[pin] = seen
        if not seen:
            problems.append(f"{pin}: no component reports it")
        elif seen != [str(want)]:
            problems.append(f"{pin}: pinned {want}, in use {', '.join(seen)}")
    return Check(name, "pinned_versions_in_use", not problems,
                 f"{len(pinned)} pin(s) in use" if not problems else "; ".join(problems),
                 expected=dict(pinned), observed=observed)


def image_digests(task_definitions: Iterable[Mapping[str, Any]]) -> list[str]:
    """The image digests the run's task definitions reference: `repo@sha256:...` gives its digest;
    an image referenced by tag (`repo:tag`, which can be re-pointed) is kept whole, so it never
    matches a pinned digest."""
    out = []
    for definition in task_definitions:
        for image in definition.get("images") or []:
            out.append(str(image).split("@", 1)[1] if "@" in str(image) else str(image))
    return out


def environment_conformance(environment: str, checks: Sequence[Check]) -> dict[str, Any]:
    """The body of environment_conformance.json: PASS only when every check is ok and every
    required category was checked."""
    missing = [c for c in CATEGORIES[:4] if c not in {check.category for check in checks}]
    if missing:
        raise ValueError(f"no check of category {', '.join(missing)}")
    names = [c.name for c in checks]
    if len(set(names)) != len(names):
        raise ValueError("check names must be unique")
    failed = [c.name for c in checks if not c.ok]
    return {"status": "FAIL" if failed else "PASS", "environment": environment,
            "checks": [c.document() for c in checks], "failed_checks": failed}
