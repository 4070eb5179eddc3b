"""Hypothesis strategies for JSON-like documents with the values encoders disagree on (floats at the
edges of the exponent range, NaN, integers beyond 64 bits, NUL, DEL, lone surrogates)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(
    [0.0, -0.0, 1e-4, -1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0, 1e15, 1e-5, 1e300, 5e-324, 2.0**63]))
INTS = st.one_of(st.integers(), st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**40]))
TEXT = st.one_of(st.text(), st.sampled_from(["\x00", "\x7f", "\u2028", "\ud800", "a\udfffb", "\U0001f600", '"\\/']))
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), INTS, FLOATS, TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(TEXT, inner, max_size=5)),
    max_leaves=30,
)


def outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """What `fn` returns, or the type of the error it raises (to compare two encoders on any input)."""
    try:
        return fn(*args, **kwargs)
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as e:
        return type(e)
