"""The stream worker's durable positions read against the run's admissions: how far each group is behind."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from runtime.db.postgres import Database
from runtime.worker.store import admission_lags, group_positions

TOPIC, OTHER = "fp.bus.traffic.fraud.v1", "fp.bus.context.arrival_events.v1"


@pytest.fixture
def db(runtime_dsn: str) -> Iterator[Database]:
    database = Database(runtime_dsn, name="worker store test", max_size=1)
    yield database
    database.close()


def _admit(conn, run: str, topic: str, partition: int, offset: int) -> None:
    conn.execute("INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, state, eb_ref)"
                 " VALUES (%s, 'traffic_fraud', %s, 'h', 'ADMITTED', %s)",
                 (run, uuid.uuid4().hex, json.dumps({"topic": topic, "partition": partition, "offset": offset})))


def test_admission_lags_are_the_admitted_records_each_group_has_not_applied_per_partition(db: Database) -> None:
    run = f"platform_20260101T{uuid.uuid4().int % 1000000:06d}Z"
    ieg, ofp = f"ieg-{uuid.uuid4().hex[:8]}", f"ofp-{uuid.uuid4().hex[:8]}"
    with db.transaction() as conn:
        for offset in range(10, 20):
            _admit(conn, run, TOPIC, 0, offset)
        for offset in range(0, 4):
            _admit(conn, run, TOPIC, 1, offset)
            _admit(conn, run, OTHER, 0, offset)
        _admit(conn, "platform_20990101T000000Z", TOPIC, 0, 500)  # another run's admission counts for nothing
        conn.execute("INSERT INTO worker_positions (consumer_group, topic, partition, position) VALUES"
                     " (%s, %s, '0', 15), (%s, %s, '0', 19)", (ieg, TOPIC, ofp, TOPIC))
        lags = admission_lags(conn, run, {ieg: [TOPIC, OTHER], ofp: [TOPIC]})
        assert group_positions(conn, ieg) == {(TOPIC, "0"): 15}
    assert lags == {(ieg, TOPIC, "0"): 4, (ieg, TOPIC, "1"): 4, (ieg, OTHER, "0"): 4,
                    (ofp, TOPIC, "0"): 0, (ofp, TOPIC, "1"): 4}


def test_a_run_without_admissions_has_no_lag_to_report(db: Database) -> None:
    with db.transaction() as conn:
        assert admission_lags(conn, "platform_20260101T999999Z", {"fp-df-x": [TOPIC]}) == {}
        assert admission_lags(conn, "platform_20260101T999999Z", {}) == {}
