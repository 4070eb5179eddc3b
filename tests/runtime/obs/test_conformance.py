"""Environment conformance: each expectation passes on a conforming run and fails naming what broke."""

from __future__ import annotations

import pytest

from runtime.contracts.registry import load_registry
from runtime.evidence import promises
from runtime.evidence.writer import schema_violations
from runtime.obs.conformance import (
    Check,
    environment_conformance,
    handles_resolved,
    no_forbidden_infrastructure,
    pinned_versions_in_use,
    run_scope_enforced,
)

RUN = "platform_20261129T000000Z"
PACKS = {"rtdl_core": ["ofp", "ieg"]}
GROUPS = {"ofp": f"fp-ofp-{RUN}", "ieg": f"fp-ieg-{RUN}"}


def _health(run: str = RUN, group: str | None = None) -> dict[str, dict[str, object]]:
    return {c: {"platform_run_id": run, "consumer_group": group or GROUPS[c]} for c in PACKS["rtdl_core"]}


def _checks() -> list[Check]:
    return [handles_resolved({"A", "B"}, {"x.json": {"source_handles": ["A"]}, "y.json": {"source_handles": ["B"]}}),
            *run_scope_enforced(RUN, PACKS, _health(), GROUPS),
            no_forbidden_infrastructure("local_parity", processes=[{"name": "moto", "started_by_us": True},
                                                                    {"name": "postgres", "started_by_us": True}]),
            pinned_versions_in_use({"policy_digest": "d1", "git_sha": "abc"}, {"policy_digest": ["d1", "d1"], "git_sha": ["abc"]})]


def test_a_conforming_run_passes_and_validates() -> None:
    body = environment_conformance("local_parity", _checks())
    assert body["status"] == "PASS" and body["failed_checks"] == []
    doc = {"phase_id": "P11", "platform_run_id": RUN, "written_at_utc": "2026-11-29T00:00:00Z",
           "source_handles": ["ENV_CONFORMANCE_PATH_PATTERN"], "scenario_run_id": "a" * 32, **body}
    assert schema_violations("evidence/environment_conformance.schema.json", doc) == []
    assert promises.FILE_PROMISES["environment_conformance"]("obs/environment_conformance.json", doc, {},
                                                             load_registry("local_parity")) == []


def test_an_unknown_handle_fails_naming_it() -> None:
    check = handles_resolved({"A"}, {"x.json": {"source_handles": ["A", "NOT_A_HANDLE"]}})
    assert not check.ok and "NOT_A_HANDLE" in check.detail


@pytest.mark.parametrize(("health", "fragment"), [
    (_health(run="platform_other"), "health is for platform_other"),
    (_health(group="fp-ofp-platform_other"), "consumer group fp-ofp-platform_other"),
    ({"ofp": _health()["ofp"]}, "ieg: no health document"),
])
def test_a_pack_out_of_its_run_scope_fails(health: dict[str, dict[str, object]], fragment: str) -> None:
    [check] = run_scope_enforced(RUN, PACKS, health, GROUPS)
    assert not check.ok and fragment in check.detail and check.pack == "rtdl_core"


def test_foreign_processes_and_forbidden_resources_fail() -> None:
    assert not no_forbidden_infrastructure("local_parity", processes=[{"name": "nginx", "started_by_us": True}]).ok
    assert not no_forbidden_infrastructure("local_parity", processes=[{"name": "postgres", "started_by_us": False}]).ok
    check = no_forbidden_infrastructure("dev_min", resource_types=["aws_ecs_service", "aws_nat_gateway"])
    assert not check.ok and "aws_nat_gateway" in check.detail
    assert no_forbidden_infrastructure("dev_min", resource_types=["aws_ecs_service"]).ok


def test_a_pin_not_in_use_or_not_reported_fails() -> None:
    drift = pinned_versions_in_use({"policy_digest": "d1"}, {"policy_digest": ["d1", "d2"]})
    assert not drift.ok and "in use d1, d2" in drift.detail
    assert not pinned_versions_in_use({"policy_digest": "d1"}, {}).ok


def test_a_failed_check_fails_the_file_and_a_missing_category_is_refused() -> None:
    checks = _checks()
    checks[0] = handles_resolved({"A"}, {"x.json": {"source_handles": ["Z"]}})
    body = environment_conformance("local_parity", checks)
    assert body["status"] == "FAIL" and body["failed_checks"] == [checks[0].name]
    with pytest.raises(ValueError, match="pinned_versions_in_use"):
        environment_conformance("local_parity", checks[:-1])
