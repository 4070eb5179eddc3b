"""The handles registry loader: validation, lookups, errors with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.contracts.handle_keys import ENVIRONMENTS, required_keys
from runtime.contracts.registry import check_document, load_registry
from runtime.errors import HandleMissing, RegistryError
from runtime.paths import registry_path


def _copy_with(tmp_path: Path, old: str, new: str) -> Path:
    text = registry_path().read_text()
    assert old in text, old
    path = tmp_path / "handles.registry.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_repository_registry_defines_every_required_key(environment: str) -> None:
    registry = load_registry(environment)
    for key in required_keys(environment):
        assert key in registry, key


def test_topic_lookup_returns_name_and_partitions() -> None:
    topic = load_registry("dev_min").topic("FP_BUS_TRAFFIC_FRAUD_V1")
    assert topic.name == "fp.bus.traffic.fraud.v1"
    assert topic.partitions >= 1


def test_pattern_render_fills_placeholders_and_refuses_missing_ones() -> None:
    registry = load_registry("local_parity")
    assert registry.render("EVIDENCE_RUN_ROOT_PATTERN", platform_run_id="platform_20260101T000000Z").endswith(
        "platform_20260101T000000Z/"
    )
    with pytest.raises(HandleMissing, match="needs platform_run_id"):
        registry.render("EVIDENCE_RUN_ROOT_PATTERN")


def test_unknown_environment_is_refused_with_its_own_code() -> None:
    with pytest.raises(RegistryError) as info:
        load_registry("prod")
    assert info.value.code == "UNKNOWN_ENV"


def test_missing_handle_names_key_and_environment() -> None:
    with pytest.raises(HandleMissing, match=r"TF_STATE_BUCKET.*local_parity"):
        load_registry("local_parity").handle("TF_STATE_BUCKET")


def test_unknown_key_is_a_finding_with_its_line(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "    IG_PORT: 8081\n", "    IG_PORT: 8081\n    IG_PORTT: 8082\n")
    findings = check_document(path)
    assert len(findings) == 1
    line_no = path.read_text().splitlines().index("    IG_PORTT: 8082") + 1
    assert findings[0].line == line_no
    assert "unknown handle key IG_PORTT" in findings[0].message


def test_missing_required_key_is_a_finding(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "      TF_LOCK_TABLE: fraud-platform-dev-min-tf-lock\n", "")
    assert any("dev_min: required handle key TF_LOCK_TABLE is missing" in f.message for f in check_document(path))


def test_malformed_yaml_is_one_error_with_file_and_line(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "    IG_PORT: 8081\n", "    IG_PORT: [8081\n")
    with pytest.raises(RegistryError, match=r"handles\.registry\.yaml:\d+: malformed YAML"):
        check_document(path)


def test_topic_with_zero_partitions_breaks_the_schema(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "name: fp.bus.rtdl.v1, partitions: 1", "name: fp.bus.rtdl.v1, partitions: 0")
    findings = check_document(path)
    assert findings and "partitions" in findings[0].message
