"""The oracle's output catalogue, read from the registry: ids, kinds, sort keys, required columns.

Every other oracle module asks here, so an output id, its sort key and the payload columns WSP
will need are written down once (registry + payload schemas), never repeated in code.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.contracts.registry import Registry
from runtime.contracts.schemas import load_schema
from runtime.errors import PlatformError
from runtime.oracle.errors import UnknownOutputId

#: Sort-key entries that DuckDB adds from read_parquet(filename=true, file_row_number=true).
TIE_BREAKERS = ("filename", "file_row_number")


@dataclass(frozen=True)
class OutputSpec:
    """One engine output: its id, kind (traffic/context/truth), sort keys and event class."""

    output_id: str
    kind: str
    sort_keys: tuple[str, ...]
    event_class: str | None
    required_columns: tuple[str, ...]

    @property
    def data_keys(self) -> tuple[str, ...]:
        """The sort keys that are columns of the data (tie-breakers removed)."""
        return tuple(k for k in self.sort_keys if k not in TIE_BREAKERS)

    @property
    def time_key(self) -> str | None:
        """The timestamp column the view is ordered by first, when there is one."""
        first = self.data_keys[0] if self.data_keys else None
        return first if first is not None and first.endswith("_utc") else None


class OutputCatalog:
    """Every oracle output of one registry."""

    def __init__(self, registry: Registry):
        self.registry = registry
        kinds = {
            "traffic": registry.names("ORACLE_TRAFFIC_OUTPUT_IDS"),
            "context": registry.names("ORACLE_CONTEXT_OUTPUT_IDS"),
            "truth": registry.names("ORACLE_TRUTH_OUTPUT_IDS"),
        }
        sort_keys = registry.mapping("ORACLE_SORT_KEY_BY_OUTPUT_ID")
        classes = {str(v["output_id"]): str(k) for k, v in registry.mapping("EVENT_CLASS_MAP").items()}
        self._specs: dict[str, OutputSpec] = {}
        for kind, ids in kinds.items():
            for output_id in ids:
                event_class = classes.get(output_id)
                required: tuple[str, ...] = ()
                if event_class is not None:
                    schema = load_schema(f"events/payloads/{event_class}.schema.json")
                    required = tuple(sorted(schema.get("required", [])))
                self._specs[output_id] = OutputSpec(
                    output_id=output_id,
                    kind=kind,
                    sort_keys=tuple(str(k) for k in sort_keys[output_id]),
                    event_class=event_class,
                    required_columns=required,
                )
        self.required_ids: tuple[str, ...] = tuple(registry.names("ORACLE_REQUIRED_OUTPUT_IDS"))

    @property
    def all_ids(self) -> tuple[str, ...]:
        """Every known output id, traffic first, in registry order."""
        return tuple(self._specs)

    def spec(self, output_id: str) -> OutputSpec:
        """The spec of `output_id`; UnknownOutputId names the known ones."""
        try:
            return self._specs[output_id]
        except KeyError:
            raise UnknownOutputId(f"output id {output_id!r} is not an oracle output; known: {', '.join(self._specs)}") from None

    def select(self, output_ids: list[str] | None) -> list[OutputSpec]:
        """The specs of `output_ids` (validated), or of every required output when None/empty."""
        ids = list(output_ids) if output_ids else list(self.required_ids)
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise PlatformError(
                f"output id(s) given more than once: {', '.join(duplicated)}", code="DUPLICATE_OUTPUT_ID", next_step="name each output once"
            )
        return [self.spec(i) for i in ids]
