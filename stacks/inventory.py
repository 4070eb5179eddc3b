"""Read synthesised Terraform JSON back: which resources each stack declares, and their names.

Used by `fp stacks show`, the handles lint (rule 4) and the policy tests, so they all see the
stacks the same way: as the JSON Terraform would apply.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import PlatformError

#: resource type -> (kind of name, attribute holding the name). The kinds lint rule 4 checks.
NAMED_KINDS: dict[str, tuple[str, str]] = {
    "aws_s3_bucket": ("bucket", "bucket"),
    "confluent_kafka_topic": ("topic", "topic_name"),
    "aws_kinesis_stream": ("topic", "name"),
    "aws_ecs_service": ("service", "name"),
    "aws_ecs_task_definition": ("task definition", "family"),
    "aws_iam_role": ("role", "name"),
    "aws_ssm_parameter": ("SSM path", "name"),
}
#: Other name-bearing attributes shown by `fp stacks show`.
_SHOWN_NAME_ATTRS = ("name", "bucket", "family", "topic_name", "display_name", "identifier", "cidr_block")


@dataclass(frozen=True)
class Resource:
    """One resource block of a stack."""

    stack: str
    type: str
    logical_id: str
    body: dict[str, Any]

    @property
    def name(self) -> str:
        """The resource's own name (the registry value for named kinds), or ''."""
        if self.type in NAMED_KINDS:
            return str(self.body.get(NAMED_KINDS[self.type][1], ""))
        for attr in _SHOWN_NAME_ATTRS:
            value = self.body.get(attr)
            if isinstance(value, str):
                return value
        tags = self.body.get("tags")
        return str(tags.get("Name", "")) if isinstance(tags, dict) else ""


def load_stack(path: Path) -> dict[str, Any]:
    """The parsed `cdk.tf.json`; a clear error when it is missing or not JSON."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlatformError(f"no synthesised stack at {path}", code="STACK_NOT_SYNTHESISED",
                            next_step="run `fp stacks synth`") from None
    except json.JSONDecodeError as e:
        raise PlatformError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})", code="STACK_JSON_INVALID",
                            next_step="run `fp stacks synth` again") from None
    if not isinstance(document, dict):
        raise PlatformError(f"{path}: not a Terraform JSON document", code="STACK_JSON_INVALID")
    return document


def resources(stack: str, document: dict[str, Any]) -> Iterator[Resource]:
    """Every resource block of a stack, in file order."""
    for rtype, blocks in (document.get("resource") or {}).items():
        for logical_id, body in blocks.items():
            yield Resource(stack, rtype, logical_id, body)
