"""Schema patterns mean what JSON Schema (ECMA-262) says: `$` is the real end of the string, classes are ASCII.

Python's `re` lets `$` match before a trailing newline, so `"<32 hex>\\n"` used to pass
`^[0-9a-f]{32}$`. Every pattern of every schema file is found by walking schemas/, never listed.
"""

from __future__ import annotations

import pytest

from runtime.contracts.ids import is_platform_run_id
from runtime.contracts.schemas import validator_for
from tests.support.patterns import PatternedField, patterned_fields, sample

FIELDS = patterned_fields()


def test_the_schemas_have_patterned_fields_to_test():
    assert len(FIELDS) >= 20
    assert {"events/envelope.schema.json", "events/payloads/traffic_fraud.schema.json",
            "handles.registry.schema.json"} <= {f.schema for f in FIELDS}
    assert any(f.schema.startswith("evidence/") for f in FIELDS)


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f"{f.schema}#{f.pointer}")
def test_every_schema_pattern_refuses_a_trailing_newline(field: PatternedField):
    validator = validator_for({"type": "string", "pattern": field.pattern})
    good = sample(field.pattern)
    assert validator.is_valid(good), good
    for bad in (good + "\n", good + "\r\n", "\n" + good):
        assert not validator.is_valid(bad), f"{field.pattern} accepted {bad!r}"


@pytest.mark.parametrize("field", [f for f in FIELDS if "\\d" in f.pattern], ids=lambda f: f"{f.schema}#{f.pointer}")
def test_digit_classes_accept_only_ascii_digits(field: PatternedField):
    validator = validator_for({"type": "string", "pattern": field.pattern})
    good = sample(field.pattern)
    unicode_digits = good.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert unicode_digits != good
    assert not validator.is_valid(unicode_digits)


def test_platform_run_id_shape_check_refuses_a_trailing_newline():
    assert is_platform_run_id("platform_20260101T000000Z")
    assert not is_platform_run_id("platform_20260101T000000Z\n")
    assert not is_platform_run_id("platform_２０２６0101T000000Z")
