"""Destroying demo cannot affect core: separate state keys, and demo reaches core only via remote state."""

from __future__ import annotations

import json
import re
from typing import Any

from runtime.contracts.registry import load_registry
from tests.stacks.conftest import Synthesised

REFERENCE = re.compile(r"\$\{([^}]*)\}")
TOKEN = re.compile(r"(?<![\w.\"])[A-Za-z_][\w-]*(?:\.[\w-]+)+")


def _declared(doc: dict[str, Any]) -> set[str]:
    resources = {f"{t}.{n}" for t, blocks in doc.get("resource", {}).items() for n in blocks}
    data = {f"data.{t}.{n}" for t, blocks in doc.get("data", {}).items() for n in blocks}
    variables = {f"var.{n}" for n in doc.get("variable", {})}
    return resources | data | variables


def _references(doc: dict[str, Any]) -> set[str]:
    refs: set[str] = set()
    for expression in REFERENCE.findall(json.dumps(doc)):
        for address in TOKEN.findall(expression):
            head = address.split(".")
            refs.add(".".join(head[:3]) if head[0] == "data" else ".".join(head[:2]))
    return refs


def test_core_and_demo_use_different_state_keys_in_the_same_locked_bucket(synthesised: Synthesised) -> None:
    registry = load_registry("dev_min")
    core = synthesised.stacks["core"]["terraform"]["backend"]["s3"]
    demo = synthesised.stacks["demo"]["terraform"]["backend"]["s3"]
    assert core["key"] == registry.text("TF_STATE_KEY_CORE")
    assert demo["key"] == registry.text("TF_STATE_KEY_DEMO")
    assert core["key"] != demo["key"]
    assert core["bucket"] == demo["bucket"] == registry.text("TF_STATE_BUCKET")
    assert core["dynamodb_table"] == demo["dynamodb_table"] == registry.text("TF_LOCK_TABLE")


def test_demo_references_only_its_own_resources_and_core_remote_state(synthesised: Synthesised) -> None:
    demo = synthesised.stacks["demo"]
    declared = _declared(demo)
    references = _references(demo)
    foreign = {r for r in references if r not in declared and not r.startswith(("each.", "count.", "path.", "self."))}
    assert not foreign, f"demo refers to resources it does not own: {sorted(foreign)}"
    remote = demo["data"]["terraform_remote_state"]
    assert list(remote) == ["core"]
    assert remote["core"]["config"]["key"] == load_registry("dev_min").text("TF_STATE_KEY_CORE")
    assert "data.terraform_remote_state.core" in references


def test_demo_declares_none_of_core_resources(synthesised: Synthesised) -> None:
    core, demo = synthesised.stacks["core"], synthesised.stacks["demo"]
    for rtype in ("aws_s3_bucket", "aws_dynamodb_table", "aws_iam_role", "aws_iam_role_policy", "aws_ecr_repository",
                  "aws_budgets_budget", "aws_s3_bucket_policy"):
        assert rtype not in demo.get("resource", {}), f"demo must not own {rtype}: destroy would delete it"
    def named(doc: dict[str, Any]) -> set[tuple[str, str]]:
        return {(t, body.get("name") or body.get("bucket")) for t, blocks in doc["resource"].items() for body in blocks.values()
                if body.get("name") or body.get("bucket")}

    assert not named(core) & named(demo)


def test_core_exports_what_demo_reads(synthesised: Synthesised) -> None:
    outputs = set(synthesised.stacks["core"].get("output", {}))
    reads = set(re.findall(r"data\.terraform_remote_state\.core\.outputs\.([a-z0-9_]+)", json.dumps(synthesised.stacks["demo"])))
    assert reads and reads <= outputs, sorted(reads - outputs)
