"""Small stream views for tests: parquet parts + a stream-sort receipt, laid out like the oracle's."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from runtime.contracts.registry import Registry
from runtime.store.port import ObjectStore
from tests.support.events import payload

CLASS_OF = {
    "s3_event_stream_with_fraud_6B": "traffic_fraud",
    "s2_event_stream_baseline_6B": "traffic_baseline",
    "arrival_events_5B": "context_arrival_events",
    "s1_arrival_entities_6B": "context_arrival_entities",
    "s3_flow_anchor_with_fraud_6B": "context_flow_anchor_fraud",
    "s2_flow_anchor_baseline_6B": "context_flow_anchor_baseline",
}
FRAUD_OUTPUTS = ["s3_event_stream_with_fraud_6B", "arrival_events_5B", "s1_arrival_entities_6B", "s3_flow_anchor_with_fraud_6B"]


def write_view(registry: Registry, store: ObjectStore, run_id: str, output_id: str, rows: int, *, parts: int = 2) -> None:
    """A stream view of `rows` rows in ts order over `parts` parquet parts, then its receipt."""
    records = [payload(CLASS_OF[output_id], n) for n in range(rows)]
    for r in records:
        r["ts_utc"] = datetime.fromisoformat(r["ts_utc"].replace("Z", "+00:00")).astimezone(UTC)
    prefix = registry.render("S3_STREAM_VIEW_PREFIX_PATTERN", platform_run_id=run_id, output_id=output_id)
    size = max(1, -(-rows // parts))
    for i in range(parts):
        chunk = records[i * size:(i + 1) * size]
        if not chunk:
            continue
        table = pa.Table.from_pylist(chunk)
        table = table.set_column(table.schema.get_field_index("ts_utc"), "ts_utc",
                                 table.column("ts_utc").cast(pa.timestamp("us", tz="UTC")))
        sink = io.BytesIO()
        pq.write_table(table, sink)
        store.put(f"{prefix}part-{i:05d}.parquet", sink.getvalue(), content_type="application/octet-stream")
    receipt_key = registry.render("S3_STREAM_SORT_RECEIPT_PATTERN", platform_run_id=run_id, output_id=output_id)
    store.put(receipt_key, json.dumps({"output_id": output_id, "rows": rows, "status": "SORTED"}).encode())


def ready_message(run_id: str, scenario_run_id: str) -> bytes:
    """A READY document as SR publishes it (the fields WSP reads, plus refs it carries along)."""
    return json.dumps({"message_type": "READY", "platform_run_id": run_id, "scenario_run_id": scenario_run_id,
                       "facts_view_ref": f"s3://x/platform/{run_id}/sr/run_facts_view.json",
                       "oracle_pack_ref": f"s3://x/oracle/{run_id}/pack/"}).encode()
