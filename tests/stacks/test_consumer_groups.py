"""Every consumer group the runtime creates is allowed by a Kafka ACL of its service account.

The groups are derived, not listed: one per component of the map and run
(`consumer_group_id`, CONSUMER_GROUP_ID_PATTERN) plus the Kafka adapter's offset-range reader. The
ACLs are read from the demo stack as synthesised, with Kafka's matching rules (LITERAL: the
name, PREFIXED: a prefix of it).
"""

from __future__ import annotations

from typing import Any

from runtime.bus.kafka import WATERMARK_GROUP_ID
from runtime.components import COMPONENTS, consumer_group_id
from runtime.contracts.registry import load_registry
from tests.stacks.conftest import Synthesised

RUNS = ("platform_20261123T120000Z", "platform_20270101T000000Z")


def _runtime_group_acls(synthesised: Synthesised) -> list[dict[str, Any]]:
    """The demo stack's GROUP ACLs whose principal is the runtime's service account."""
    registry = load_registry("dev_min")
    resources = synthesised.stacks["demo"]["resource"]
    (account,) = [cid for cid, body in resources["confluent_service_account"].items()
                  if body["display_name"] == registry.text("CONFLUENT_SERVICE_ACCOUNT_NAME")]
    principal = f"User:${{confluent_service_account.{account}.id}}"
    return [acl for acl in resources["confluent_kafka_acl"].values()
            if acl["resource_type"] == "GROUP" and acl["principal"] == principal]


def _allowed(group: str, acls: list[dict[str, Any]]) -> bool:
    """Kafka's check for a consumer joining `group`: an ALLOW READ (or ALL) ACL matching its name."""
    for acl in acls:
        if acl["permission"] != "ALLOW" or acl["operation"] not in ("READ", "ALL"):
            continue
        name = acl["resource_name"]
        if (acl["pattern_type"] == "LITERAL" and name in (group, "*")) or (
                acl["pattern_type"] == "PREFIXED" and group.startswith(name)):
            return True
    return False


def test_every_consumer_group_of_every_component_and_run_is_allowed(synthesised: Synthesised) -> None:
    acls = _runtime_group_acls(synthesised)
    groups = [consumer_group_id(load_registry("dev_min"), name, run) for name in COMPONENTS for run in RUNS]
    groups.append(WATERMARK_GROUP_ID)
    refused = [g for g in groups if not _allowed(g, acls)]
    assert not refused, f"consumer groups with no ACL for the runtime account: {refused}"


def test_the_group_acl_allows_exactly_the_patterns_prefix(synthesised: Synthesised) -> None:
    acls = _runtime_group_acls(synthesised)
    prefix = load_registry("dev_min").text("CONSUMER_GROUP_ID_PATTERN").split("{", 1)[0]
    assert prefix == "fp-"
    assert [(a["resource_name"], a["pattern_type"], a["operation"]) for a in acls] == [(prefix, "PREFIXED", "READ")]
    # what WSP used before (and any group outside the prefix) would be refused by the broker
    assert not _allowed(f"wsp-{RUNS[0]}", acls)
    assert not _allowed("fp", acls)
