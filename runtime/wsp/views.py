"""Reads stream views (never raw oracle outputs): the ordered parquet parts of one output.

A view exists when its stream-sort receipt exists (it is written last); the parts are read in key
order, each row turned into plain JSON values (timestamps as RFC 3339 UTC with a Z).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from runtime.contracts.registry import Registry
from runtime.errors import ObjectMissing, PlatformError
from runtime.store.port import ObjectStore


class StreamViewMissing(PlatformError):
    """An output's stream view (receipt or parts) is not there."""

    code = "STREAM_VIEW_MISSING"
    next_step = "run the oracle stream-sort (P3) for this output, then rerun WSP"


def json_value(value: Any) -> Any:
    """A parquet value as a JSON value."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_value(v) for v in value]
    return value


class StreamView:
    """The stream view of one output of one run."""

    def __init__(self, registry: Registry, store: ObjectStore, platform_run_id: str, output_id: str):
        self.output_id = output_id
        self.store = store
        self.prefix = registry.render("S3_STREAM_VIEW_PREFIX_PATTERN", platform_run_id=platform_run_id, output_id=output_id)
        self.receipt_key = registry.render("S3_STREAM_SORT_RECEIPT_PATTERN", platform_run_id=platform_run_id,
                                           output_id=output_id)

    def parts(self) -> list[str]:
        """The part keys in order; STREAM_VIEW_MISSING without a receipt or without parts."""
        try:
            receipt = json.loads(self.store.get(self.receipt_key))
        except ObjectMissing:
            raise StreamViewMissing(f"no stream-sort receipt at {self.store.uri(self.receipt_key)}") from None
        if not isinstance(receipt, dict):
            raise StreamViewMissing(f"the stream-sort receipt {self.store.uri(self.receipt_key)} is not a JSON object")
        keys = sorted(o.key for o in self.store.list(self.prefix)
                      if o.key[len(self.prefix):].startswith("part-") and o.key.endswith(".parquet"))
        if not keys:
            raise StreamViewMissing(f"the stream view {self.store.uri(self.prefix)} has no part-*.parquet")
        return keys

    def rows(self, skip: int = 0, batch_rows: int = 2048) -> Iterator[dict[str, Any]]:
        """Every row in view order, after the first `skip` (a resumed stream)."""
        for key in self.parts():
            reader = pq.ParquetFile(pa.BufferReader(self.store.get(key)))
            count = reader.metadata.num_rows
            if skip >= count:
                skip -= count
                continue
            for batch in reader.iter_batches(batch_size=batch_rows):
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                records = batch.to_pylist()[skip:]
                skip = 0
                for record in records:
                    yield {k: json_value(v) for k, v in record.items()}
