"""The policy bundle: loads and matches its pin, digest over content, tampering and bad bundles refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from runtime.decision.bundle import (
    DEFAULT_POLICY,
    SIGNALS,
    PolicyInvalid,
    PolicyTampered,
    load_policy,
    parse_policy,
    pin_path,
    policy_digest,
    write_pin,
)
from runtime.decision.df.domain import DEFAULT_IDEMPOTENCY_FIELDS
from runtime.settings import load_settings


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / DEFAULT_POLICY.name
    shutil.copy(DEFAULT_POLICY, target)
    shutil.copy(pin_path(DEFAULT_POLICY), pin_path(target))
    return target


def test_the_shipped_policy_loads_and_matches_its_recorded_digest():
    policy = load_policy()
    assert policy.policy_id == "fraud_policy" and policy.version >= 1
    assert pin_path(DEFAULT_POLICY).read_text().split()[0] == policy.digest
    assert {c.signal for r in policy.rules for c in r.when} <= set(SIGNALS)


def test_the_digest_is_over_content_so_comments_and_layout_do_not_count(tmp_path):
    target = _copy(tmp_path)
    target.write_text("# a reviewer's note\n" + target.read_text().replace("\n\n", "\n"))
    assert load_policy(target).digest == load_policy().digest


def test_a_tampered_policy_file_is_refused_with_policy_tampered(tmp_path):
    target = _copy(tmp_path)
    target.write_text(target.read_text().replace("DECLINE: 0.8", "DECLINE: 0.99"))
    with pytest.raises(PolicyTampered) as e:
        load_policy(target)
    assert e.value.code == "POLICY_TAMPERED" and "re-pin" in e.value.next_step
    assert load_policy(target, check_pin=False).thresholds["DECLINE"] == 0.99  # a candidate under review still reads


def test_a_policy_without_its_recorded_digest_is_refused(tmp_path):
    target = _copy(tmp_path)
    pin_path(target).unlink()
    with pytest.raises(PolicyTampered):
        load_policy(target)


def test_re_pinning_a_reviewed_change_makes_it_loadable(tmp_path):
    target = _copy(tmp_path)
    target.write_text(target.read_text().replace("version: 1", "version: 2"))
    digest = write_pin(target)
    assert load_policy(target).digest == digest != load_policy().digest


def _document() -> dict:
    return yaml.safe_load(DEFAULT_POLICY.read_text())


def test_a_rule_naming_an_unknown_signal_is_invalid():
    doc = _document()
    doc["rules"][0]["when"][0]["signal"] = "card.fraud_label"
    with pytest.raises(PolicyInvalid, match="unknown signal"):
        parse_policy(doc)


def test_a_bundle_breaking_its_schema_is_invalid_with_the_place():
    doc = _document()
    doc["rules"][0]["weight"] = 3
    with pytest.raises(PolicyInvalid, match="rules/0/weight"):
        parse_policy(doc)


def test_thresholds_must_rise_step_up_review_decline():
    doc = _document()
    doc["thresholds"]["REVIEW"] = 0.9
    with pytest.raises(PolicyInvalid, match="must rise"):
        parse_policy(doc)


def test_a_red_posture_that_allows_approve_is_invalid():
    doc = _document()
    doc["postures"]["RED"]["min_outcome"] = "APPROVE"
    with pytest.raises(PolicyInvalid, match="RED"):
        parse_policy(doc)


def test_policy_digest_is_the_canonical_sha256_of_the_parsed_document():
    doc = _document()
    assert parse_policy(doc).digest == policy_digest(doc) == load_policy().digest


def test_df_idempotency_fields_are_the_registry_action_idempotency_key_fields():
    registry = load_settings({"FP_ENV": "local_parity"}).registry
    assert tuple(registry.names("ACTION_IDEMPOTENCY_KEY_FIELDS")) == DEFAULT_IDEMPOTENCY_FIELDS
