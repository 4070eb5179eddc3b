"""WSP end to end on the real servers: READY -> stream views -> IG (uvicorn) -> receipts -> topics."""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from runtime.bus.port import OutboundRecord
from runtime.evidence.writer import BundleTarget
from runtime.wsp.run import ReadyMissing, WspOptions, run_wsp
from runtime.wsp.stream import RetriesExhausted
from runtime.wsp.views import StreamViewMissing
from tests.support.events import SCENARIO
from tests.support.views import CLASS_OF, FRAUD_OUTPUTS, ready_message, write_view


def _views(settings, store, run_id, rows):
    for output_id in FRAUD_OUTPUTS:
        write_view(settings.registry, store, run_id, output_id, rows)


def _ready(pub, topic, run_id, scenario=SCENARIO):
    [ref] = pub.publish([OutboundRecord(topic, run_id, ready_message(run_id, scenario))])
    assert not isinstance(ref, Exception)


def _wsp(settings, run_id, consumer, url, checkpoint, store, key, **opts):
    opts.setdefault("ready_timeout_s", 20)
    return run_wsp(settings, run_id, consumer, ig_base_url=url, api_key=key, checkpoint=checkpoint, oracle_store=store,
                   evidence_targets=[BundleTarget(store, f"evidence/runs/{run_id}/")], options=WspOptions(**opts),
                   progress=lambda line: None)


def _receipts(dsn, run_id):
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT outcome, count(*) FROM ig_receipts WHERE platform_run_id = %s GROUP BY 1",
                                 (run_id,)).fetchall())


def test_ready_then_all_fraud_outputs_streamed_and_admitted(settings, store, run_id, ig_url, ready_pub, control_topic,
                                                           ready_consumer, checkpoint, migrated_dsn):
    from tests.runtime.ig.conftest import API_KEY

    _views(settings, store, run_id, 30)
    _ready(ready_pub, control_topic, "platform_19990101T000000Z")  # another run's READY: skipped
    _ready(ready_pub, control_topic, run_id)
    result = _wsp(settings, run_id, ready_consumer, ig_url, checkpoint, store, API_KEY)
    assert result.status == "COMPLETED" and result.skipped_other_runs == 1
    assert {s.output_id: s.emitted for s in result.per_output} == dict.fromkeys(FRAUD_OUTPUTS, 30)
    assert _receipts(migrated_dsn, run_id) == {"ADMIT": 120}
    start = json.loads(store.get(f"evidence/runs/{run_id}/wsp/wsp_start.json"))
    summary = json.loads(store.get(f"evidence/runs/{run_id}/wsp/wsp_summary.json"))
    assert start["outputs"] == sorted(FRAUD_OUTPUTS[:1]) + sorted(FRAUD_OUTPUTS[1:])
    assert summary["status"] == "COMPLETED" and summary["totals"]["emitted"] == 120
    assert summary["ready_ref"]["topic"] == control_topic
    with psycopg.connect(migrated_dsn) as conn:
        progress = conn.execute("SELECT output_id, rows_sent, ended FROM wsp_output_progress WHERE platform_run_id = %s",
                                (run_id,)).fetchall()
        unstamped = conn.execute("SELECT count(*) FROM ig_admissions WHERE platform_run_id = %s AND event_ts_micros IS NULL",
                                 (run_id,)).fetchone()
    assert sorted(progress) == [(o, 30, True) for o in sorted(FRAUD_OUTPUTS)]  # every output ran to its end
    assert unstamped == (0,)  # IG kept every admission's event time (DF's completeness cut)


def test_an_output_records_its_event_time_frontier_after_each_answered_batch(settings, store, run_id, ig_url, ready_pub,
                                                                             control_topic, ready_consumer, checkpoint,
                                                                             migrated_dsn):
    from tests.runtime.ig.conftest import API_KEY

    _views(settings, store, run_id, 20)
    _ready(ready_pub, control_topic, run_id)
    _wsp(settings, run_id, ready_consumer, ig_url, checkpoint, store, API_KEY, max_events_per_output=7, batch_size=3)
    with psycopg.connect(migrated_dsn) as conn:
        rows = conn.execute("SELECT output_id, rows_sent, frontier_ts_micros, ended FROM wsp_output_progress"
                            " WHERE platform_run_id = %s ORDER BY output_id", (run_id,)).fetchall()
        seventh = {c: conn.execute("SELECT event_ts_micros FROM ig_admissions WHERE platform_run_id = %s AND event_class = %s"
                                   " ORDER BY event_ts_micros OFFSET 6 LIMIT 1", (run_id, c)).fetchone()[0]
                   for c in {CLASS_OF[r[0]] for r in rows}}
    assert [(r[1], r[3]) for r in rows] == [(7, True)] * 4  # the cap ends an output
    # batches of three: after the second one the first row not answered is the seventh (traffic,
    # which leads nothing, may also have sent shorter batches while the context outputs caught up)
    context = [r for r in rows if r[0] != FRAUD_OUTPUTS[0]]
    assert {r[0]: r[2] for r in context} == {r[0]: seventh[CLASS_OF[r[0]]] for r in context}
    assert [r[2] <= seventh[CLASS_OF[r[0]]] for r in rows if r[0] == FRAUD_OUTPUTS[0]] == [True]


def test_cap_per_output_and_completed_ready_is_skipped(settings, store, run_id, ig_url, ready_pub, control_topic,
                                                       ready_consumer, checkpoint, migrated_dsn):
    from tests.runtime.ig.conftest import API_KEY

    _views(settings, store, run_id, 20)
    _ready(ready_pub, control_topic, run_id)
    first = _wsp(settings, run_id, ready_consumer, ig_url, checkpoint, store, API_KEY, max_events_per_output=7)
    assert [s.emitted for s in first.per_output] == [7, 7, 7, 7]
    _ready(ready_pub, control_topic, run_id)  # the control topic replays READY
    second = _wsp(settings, run_id, ready_consumer, ig_url, checkpoint, store, API_KEY, ready_timeout_s=8)
    assert second.status == "SKIPPED_ALREADY_PROCESSED" and second.skipped_duplicate_ready == 1
    assert _receipts(migrated_dsn, run_id) == {"ADMIT": 28}


def test_rerun_of_the_same_run_admits_nothing_new(settings, store, run_id, ig_url, ready_pub, control_topic,
                                                  kafka_bootstrap, checkpoint, migrated_dsn):
    from tests.runtime.ig.conftest import API_KEY
    from tests.runtime.wsp.conftest import ready_consumer_for

    _views(settings, store, run_id, 15)
    _ready(ready_pub, control_topic, run_id)
    for _ in range(2):  # each rerun in a fresh group, so both read the READY
        consumer = ready_consumer_for(kafka_bootstrap, control_topic, run_id)
        try:
            result = _wsp(settings, run_id, consumer, ig_url, checkpoint, store, API_KEY, restream=True)
        finally:
            consumer.close()
    assert {s.output_id: s.outcomes for s in result.per_output} == {key: {"DUPLICATE": 15} for key in FRAUD_OUTPUTS}
    assert _receipts(migrated_dsn, run_id) == {"ADMIT": 60, "DUPLICATE": 60}


def test_resumes_from_checkpoint_with_the_same_event_ids(settings, store, run_id, ig_url, ready_pub, control_topic,
                                                         ready_consumer, checkpoint, migrated_dsn):
    from tests.runtime.ig.conftest import API_KEY

    _views(settings, store, run_id, 25)
    _ready(ready_pub, control_topic, run_id)
    checkpoint.start(run_id, SCENARIO, {"topic": control_topic, "partition": 0, "offset": 0})
    for output_id in FRAUD_OUTPUTS:
        checkpoint.advance(run_id, SCENARIO, output_id, 10)
    result = _wsp(settings, run_id, ready_consumer, ig_url, checkpoint, store, API_KEY)
    assert [(s.resumed_from, s.emitted, s.outcomes) for s in result.per_output] == [(10, 25, {"ADMIT": 15})] * 4
    assert _receipts(migrated_dsn, run_id) == {"ADMIT": 60}


def test_wrong_key_is_non_retryable_and_stops_the_run(settings, store, run_id, ig_url, ready_pub, control_topic,
                                                     ready_consumer, checkpoint, migrated_dsn):
    _views(settings, store, run_id, 5)
    _ready(ready_pub, control_topic, run_id)
    with pytest.raises(Exception) as caught:
        _wsp(settings, run_id, ready_consumer, ig_url, checkpoint, store, "wrong-key-0123456789abc")
    assert getattr(caught.value, "code", "") == "WSP_NONRETRYABLE_401"
    summary = json.loads(store.get(f"evidence/runs/{run_id}/wsp/wsp_summary.json"))
    assert summary["status"] == "FAILED" and summary["totals"]["retries"] == 0
    assert checkpoint.status(run_id, SCENARIO) == "FAILED"
    assert _receipts(migrated_dsn, run_id) == {}


def test_unreachable_ig_is_retried_with_bounded_attempts(settings, store, run_id, ready_pub, control_topic, ready_consumer,
                                                         checkpoint):
    from controller.substrate.processes import free_port
    from tests.runtime.ig.conftest import API_KEY

    _views(settings, store, run_id, 5)
    _ready(ready_pub, control_topic, run_id)
    with pytest.raises(RetriesExhausted):
        _wsp(settings, run_id, ready_consumer, f"http://127.0.0.1:{free_port()}", checkpoint, store, API_KEY,
             retry_max_attempts=3, retry_backoff_ms=10)
    summary = json.loads(store.get(f"evidence/runs/{run_id}/wsp/wsp_summary.json"))
    assert summary["totals"]["failures"] >= 1 and summary["totals"]["retries"] >= 2


def test_missing_stream_view_fails_before_sending(settings, store, run_id, ig_url, ready_pub, control_topic, ready_consumer,
                                                  checkpoint, migrated_dsn):
    from tests.runtime.ig.conftest import API_KEY

    for output_id in FRAUD_OUTPUTS[:-1]:
        write_view(settings.registry, store, run_id, output_id, 5)
    _ready(ready_pub, control_topic, run_id)
    with pytest.raises(StreamViewMissing):
        _wsp(settings, run_id, ready_consumer, ig_url, checkpoint, store, API_KEY)
    assert _receipts(migrated_dsn, run_id) == {}
    assert checkpoint.status(run_id, SCENARIO) is None


def test_no_ready_for_the_run_streams_nothing(settings, store, run_id, ig_url, ready_pub, control_topic, ready_consumer,
                                              checkpoint):
    from tests.runtime.ig.conftest import API_KEY

    _views(settings, store, run_id, 5)
    _ready(ready_pub, control_topic, "platform_19990101T000000Z")
    with pytest.raises(ReadyMissing):
        _wsp(settings, run_id, ready_consumer, ig_url, checkpoint, store, API_KEY, ready_timeout_s=6)


def test_speedup_paces_by_event_time(settings, store, run_id, ig_url, ready_pub, control_topic, ready_consumer, checkpoint):
    from tests.runtime.ig.conftest import API_KEY

    _views(settings, store, run_id, 11)  # rows are 1 s apart in event time
    _ready(ready_pub, control_topic, run_id)
    t0 = time.monotonic()
    _wsp(settings, run_id, ready_consumer, ig_url, checkpoint, store, API_KEY, speedup=20.0)
    assert time.monotonic() - t0 >= 10 / 20.0
