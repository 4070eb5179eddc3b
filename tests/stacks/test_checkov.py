"""The third-party scanner checkov passes every stack offline, with only the written skips."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import PlatformError
from stacks.checkov_scan import load_skips, scan
from tests.stacks.conftest import Synthesised


@pytest.mark.parametrize("stack", ["core", "demo", "local_parity"])
def test_checkov_finds_no_failed_check(synthesised: Synthesised, stack: str) -> None:
    result = scan(stack, synthesised.file(stack))
    assert result.failed == (), result.failed
    assert result.passed > 20


def test_every_skip_is_justified_and_applies_to_known_stacks() -> None:
    skips = load_skips()
    assert skips
    for skip in skips:
        assert set(skip.stacks) <= {"core", "demo", "local_parity"}
        assert len(skip.justification) > 40


def test_skip_without_justification_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "skips.yaml"
    path.write_text("skips:\n  - id: CKV_AWS_18\n    stacks: [core]\n")
    with pytest.raises(PlatformError) as e:
        load_skips(path)
    assert e.value.code == "CHECKOV_SKIP_UNJUSTIFIED"


def test_checkov_fails_a_stack_that_breaks_a_check(synthesised: Synthesised, tmp_path: Path) -> None:
    import json

    doc = json.loads(synthesised.file("core").read_text())
    repo = next(iter(doc["resource"]["aws_ecr_repository"].values()))
    repo["image_tag_mutability"] = "MUTABLE"
    broken = tmp_path / "cdk.tf.json"
    broken.write_text(json.dumps(doc))
    result = scan("core", broken)
    assert [check for check, _ in result.failed if check == "CKV_AWS_51"], result.failed
