"""SIGKILL drill: IG is killed three times while WSP streams 20k events, and restarted each time.

After WSP resumes and finishes: admitted == unique events, every admitted event is on its topic,
and an event id appears twice on the topics only if its receipts say PUBLISH_AMBIGUOUS.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter

import psycopg
import pytest

from controller.substrate.processes import free_port
from runtime.bus.port import OutboundRecord
from runtime.evidence.writer import BundleTarget
from runtime.wsp.run import WspOptions, run_wsp
from tests.runtime.ig.conftest import API_KEY
from tests.support.events import SCENARIO
from tests.support.ig_server import IgProcess
from tests.support.kafka_bus import read_all
from tests.support.views import FRAUD_OUTPUTS, ready_message, write_view

ROWS_PER_OUTPUT = 5000  # 4 outputs: 20k events


def _admitted(dsn: str, run_id: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM ig_receipts WHERE platform_run_id = %s AND outcome = 'ADMIT'",
                            (run_id,)).fetchone()[0]


@pytest.mark.slow
def test_ig_killed_three_times_during_20k_stream(settings, store, bucket, run_id, migrated_dsn, moto_endpoint, kafka_bootstrap,
                                                 bus_topics, ready_pub, control_topic, ready_consumer, checkpoint, tmp_path):
    for output_id in FRAUD_OUTPUTS:
        write_view(settings.registry, store, run_id, output_id, ROWS_PER_OUTPUT, parts=3)
    ready_pub.publish([OutboundRecord(control_topic, run_id, ready_message(run_id, SCENARIO))])
    port = free_port()
    env = {**os.environ, "FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint, "FP_DB_DSN": migrated_dsn,
           "FP_BUS": "kafka", "FP_KAFKA_BOOTSTRAP": kafka_bootstrap, "FP_IG_API_KEY": API_KEY,
           "REQUIRED_PLATFORM_RUN_ID": run_id, "IG_TEST_BUCKET": bucket, "IG_TEST_PORT": str(port)}
    ig = IgProcess(env, port, tmp_path / "ig.log")
    ig.start()
    outcome: dict[str, object] = {}

    def stream() -> None:
        try:
            outcome["result"] = run_wsp(
                settings, run_id, ready_consumer, ig_base_url=f"http://127.0.0.1:{port}", api_key=API_KEY,
                checkpoint=checkpoint, oracle_store=store, evidence_targets=[BundleTarget(store, f"evidence/runs/{run_id}/")],
                options=WspOptions(batch_size=100, retry_max_attempts=15, retry_backoff_ms=200, ready_timeout_s=30),
                progress=lambda line: None)
        except Exception as e:
            outcome["error"] = e

    wsp = threading.Thread(target=stream)
    wsp.start()
    kills = 0
    try:
        for threshold in (2500, 8000, 13500):
            deadline = time.monotonic() + 120
            while _admitted(migrated_dsn, run_id) < threshold and wsp.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not wsp.is_alive():
                break
            ig.kill()
            kills += 1
            time.sleep(0.3)
            ig.start()
        wsp.join(300)
    finally:
        if ig.proc and ig.proc.poll() is None:
            ig.kill()
    assert kills == 3, "the stream finished before IG was killed three times"
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert [s.emitted for s in result.per_output] == [ROWS_PER_OUTPUT] * 4  # type: ignore[attr-defined]

    with psycopg.connect(migrated_dsn) as conn:
        admitted_ids = conn.execute(
            "SELECT event_id FROM ig_receipts WHERE platform_run_id = %s AND outcome = 'ADMIT'", (run_id,)).fetchall()
        ambiguous = {r[0] for r in conn.execute(
            "SELECT event_id FROM ig_receipts WHERE platform_run_id = %s AND outcome = 'PUBLISH_AMBIGUOUS'", (run_id,))}
        admissions = conn.execute("SELECT count(*) FROM ig_admissions WHERE platform_run_id = %s AND state = 'ADMITTED'",
                                  (run_id,)).fetchone()[0]
    assert len(admitted_ids) == len({r[0] for r in admitted_ids}) == 4 * ROWS_PER_OUTPUT == admissions

    topics = [bus_topics[c] for c in ("traffic_fraud", "context_arrival_events", "context_arrival_entities",
                                      "context_flow_anchor_fraud")]
    seen = Counter()
    for record in read_all(kafka_bootstrap, topics, timeout_s=30.0):
        doc = json.loads(record.value)
        if doc["platform_run_id"] == run_id:
            seen[doc["event_id"]] += 1
    assert set(seen) == {r[0] for r in admitted_ids}
    twice = {e for e, n in seen.items() if n > 1}
    print(f"kill drill: kills={kills} admitted={len(admitted_ids)} ambiguous={len(ambiguous)} on_topics_twice={len(twice)}")
    assert twice <= ambiguous, f"{len(twice - ambiguous)} events on the topics twice without a PUBLISH_AMBIGUOUS receipt"
