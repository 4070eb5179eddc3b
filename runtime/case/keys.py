"""Subject keys, deterministic ids and input checks shared by CaseTrigger, CM and LS.

A case is keyed by `CASE_SUBJECT_KEY_FIELDS` and a label by `LABEL_SUBJECT_KEY_FIELDS` (both
pinned in handles.registry.yaml; `check_pinned_fields` refuses a registry that composes them
differently from this code). Every id of the plane is a pure function of what it names, so a
replay, a redelivery or the other bus produce the same ids and a store's insert under that key
is idempotent: case id = H(case subject key), trigger id = H(decision, subject), timeline event
id = H(case, kind, basis), assertion id = H(label subject key, source, observed time).

Timestamps are normalised to one RFC 3339 form (UTC, microseconds, trailing Z) so that ids and
digests do not depend on how a producer spelled a time, and so that string order is time order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from runtime.contracts.canonical import canonical_digest
from runtime.errors import PermanentError

CASE_SUBJECT_KEY_FIELDS: tuple[str, ...] = ("platform_run_id", "event_class", "event_id")
LABEL_SUBJECT_KEY_FIELDS: tuple[str, ...] = ("platform_run_id", "event_id", "label_type")

#: Length of every id the plane derives (hex characters of a sha256), like the platform's event ids.
ID_LENGTH = 32

_HEX_ID_RE = re.compile(r"[0-9a-f]{32,64}", re.ASCII)
_RUN_ID_RE = re.compile(r"platform_\d{8}T\d{6}Z", re.ASCII)
_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}", re.ASCII)


class CaseInputInvalid(PermanentError):
    """A value handed to the case/labels domain breaks its contract (missing field, bad id, bad time)."""

    code = "CASE_INPUT_INVALID"
    next_step = "the record is dead-lettered with its reason; fix the producer of this record"


class SubjectKeyDrift(PermanentError):
    """handles.registry.yaml composes a subject key differently from the code that derives ids from it."""

    code = "SUBJECT_KEY_DRIFT"
    next_step = ("case and label ids are hashes of the pinned key fields: restore the registry's "
                 "CASE_SUBJECT_KEY_FIELDS / LABEL_SUBJECT_KEY_FIELDS or migrate the plane deliberately")


def stable_id(kind: str, document: Mapping[str, Any]) -> str:
    """The deterministic id of `document` within id family `kind` (32 hex of a canonical sha256)."""
    return canonical_digest({"kind": kind, "of": dict(document)})[:ID_LENGTH]


def norm_ts(value: Any, what: str, error: type[PermanentError] = CaseInputInvalid) -> str:
    """`value` (RFC 3339 string with a zone, or an aware datetime) as `YYYY-MM-DDTHH:MM:SS.ffffffZ`."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value)
        except ValueError:
            raise error(f"{what} is not an RFC 3339 timestamp: {value!r}") from None
    else:
        raise error(f"{what} is not a timestamp: {value!r}")
    if moment.tzinfo is None:
        raise error(f"{what} has no time zone: {value!r}")
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def hex_id(value: Any, what: str, error: type[PermanentError] = CaseInputInvalid) -> str:
    """`value` when it is a lower-case hex id of 32..64 characters, else `error`."""
    if not isinstance(value, str) or not _HEX_ID_RE.fullmatch(value):
        raise error(f"{what} is not a hex id: {value!r}")
    return value


def run_id(value: Any, what: str = "platform_run_id", error: type[PermanentError] = CaseInputInvalid) -> str:
    """`value` when it has the platform_run_id shape, else `error`."""
    if not isinstance(value, str) or not _RUN_ID_RE.fullmatch(value):
        raise error(f"{what} is not a platform_run_id: {value!r}")
    return value


def name(value: Any, what: str, error: type[PermanentError] = CaseInputInvalid) -> str:
    """`value` when it is a snake_case name (event class, label type, actor, queue), else `error`."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise error(f"{what} is not a snake_case name: {value!r}")
    return value


class _SubjectKey:
    """What both subject keys share: the pinned field order, their JSON form and reading it back."""

    FIELDS: ClassVar[tuple[str, ...]] = ()

    def as_dict(self) -> dict[str, str]:
        """The key as a JSON object, fields in the pinned order."""
        return {f: getattr(self, f) for f in self.FIELDS}

    @classmethod
    def from_dict(cls, value: Any) -> Self:
        """The key of a JSON object with exactly the pinned fields."""
        if not isinstance(value, Mapping) or set(value) != set(cls.FIELDS):
            raise CaseInputInvalid(f"{cls.__name__} must have exactly {list(cls.FIELDS)}: {value!r}")
        return cls(**{f: value[f] for f in cls.FIELDS})


@dataclass(frozen=True, order=True)
class CaseSubjectKey(_SubjectKey):
    """What a case is about: one admitted event of one run (CASE_SUBJECT_KEY_FIELDS)."""

    FIELDS: ClassVar[tuple[str, ...]] = CASE_SUBJECT_KEY_FIELDS
    platform_run_id: str
    event_class: str
    event_id: str

    def __post_init__(self) -> None:
        run_id(self.platform_run_id)
        name(self.event_class, "event_class")
        hex_id(self.event_id, "event_id")

    @property
    def case_id(self) -> str:
        """case id = H(case subject key): every trigger for this subject joins this one case."""
        return stable_id("case", self.as_dict())


@dataclass(frozen=True, order=True)
class LabelSubjectKey(_SubjectKey):
    """What a label is about: one event of one run and the kind of label (LABEL_SUBJECT_KEY_FIELDS)."""

    FIELDS: ClassVar[tuple[str, ...]] = LABEL_SUBJECT_KEY_FIELDS
    platform_run_id: str
    event_id: str
    label_type: str

    def __post_init__(self) -> None:
        run_id(self.platform_run_id)
        hex_id(self.event_id, "event_id")
        name(self.label_type, "label_type")


def check_pinned_fields(case_fields: Sequence[str], label_fields: Sequence[str]) -> None:
    """Refuse (SubjectKeyDrift) a registry whose subject key compositions differ from this code's."""
    if tuple(case_fields) != CASE_SUBJECT_KEY_FIELDS:
        raise SubjectKeyDrift(f"CASE_SUBJECT_KEY_FIELDS is {list(case_fields)}, the code derives case ids "
                              f"from {list(CASE_SUBJECT_KEY_FIELDS)}")
    if tuple(label_fields) != LABEL_SUBJECT_KEY_FIELDS:
        raise SubjectKeyDrift(f"LABEL_SUBJECT_KEY_FIELDS is {list(label_fields)}, the code derives assertion ids "
                              f"from {list(LABEL_SUBJECT_KEY_FIELDS)}")
