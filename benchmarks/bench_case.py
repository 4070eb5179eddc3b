"""Case and labels workers: CaseTrigger, CM and LS records/s and appends/s, next to the raw consume rate
of the same topics measured in the same run (issue 14).

Decisions decided by the decision domain (tests/runtime/decision/support.py, cycling APPROVE,
STEP_UP, REVIEW, DECLINE) and DLA's audit records of them are published to the registry's rtdl and
audit topics on a private Tansu broker, with a private PostgreSQL (runtime role, migrated).
Baseline: a bare confluent-kafka consumer reading the topic(s) once. Then CaseTrigger drains the
rtdl and audit topics (joins, triggers through the outbox), CM drains the case topic (timeline
appends), and LS drains label_assertion records on the label topic (one dispute per admitted
event; appends through its writer boundary). Size: FP_BENCH_CASE_DECISIONS (default 4000);
`main(smoke=True)` runs 40 decisions once.
"""

from __future__ import annotations

import importlib
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_rtdl import _raw_consume_rate
from controller.substrate.processes import free_port, stop_pid
from controller.substrate.servers import start_postgres, start_tansu
from runtime.bus.factory import consumer as bus_consumer
from runtime.bus.factory import publisher as bus_publisher
from runtime.bus.kafka import KafkaAdmin
from runtime.bus.port import OutboundRecord
from runtime.case.cm.handler import CaseManagementHandler
from runtime.case.keys import LabelSubjectKey
from runtime.case.ls.domain import assertion
from runtime.case.ls.handler import LABEL_ASSERTION, LabelStoreHandler
from runtime.case.trigger.handler import CaseTriggerHandler
from runtime.components import consumer_group_id
from runtime.contracts.canonical import canonical_json
from runtime.contracts.registry import load_registry
from runtime.db.migrate import prepare_database
from runtime.db.postgres import Database, with_credentials
from runtime.decision.lane import lane_envelope
from runtime.settings import load_settings
from runtime.worker.handler import StreamHandler
from runtime.worker.loop import StreamWorker, WorkerConfig
from runtime.worker.store import WorkerStore

RUN = "platform_20260105T000000Z"
REPS = 3


def _publish(settings: Any, records: list[OutboundRecord]) -> None:
    pub = bus_publisher(settings)
    for i in range(0, len(records), 500):
        bad = [r for r in pub.publish(records[i:i + 500]) if isinstance(r, Exception)]
        if bad:
            raise RuntimeError(f"publish failed: {bad[0]}")
    pub.close()


def _drain(settings: Any, db: Database, handler: StreamHandler, expected: int) -> tuple[float, StreamWorker]:
    """Records/s `handler` applies while draining `expected` records (time of the cycles that finished records)."""
    group = consumer_group_id(settings.registry, handler.component, RUN)
    consumer = bus_consumer(settings, handler.input_topics(), group, RUN)
    worker = StreamWorker(handler, consumer, bus_publisher(settings), db.transaction,
                          WorkerStore(group, handler.component, RUN), config=WorkerConfig(batch_size=500, poll_timeout_s=0.5))
    busy, done, deadline = 0.0, 0, time.monotonic() + 900
    while done < expected and time.monotonic() < deadline:
        start = time.perf_counter()
        if worker.step():
            busy += time.perf_counter() - start
        done = worker.counters.applied + worker.counters.dead_lettered
    worker.step()  # publish what the last cycle put in the outbox
    consumer.close()
    return (done / busy if busy > 0 else 0.0), worker


def _lane(n: int) -> tuple[list[OutboundRecord], list[str]]:
    """Decision and audit records of `n` decisions, and the decided event ids."""
    # the test helpers decide with the real decision domain; imported at run time (not a package dependency)
    lane = importlib.import_module("tests.runtime.case.lane")
    registry = load_registry("local_parity")
    rtdl, audit = registry.topic("FP_BUS_RTDL_V1").name, registry.topic("FP_BUS_AUDIT_V1").name
    out: list[OutboundRecord] = []
    events = []
    for d in lane.decisions(RUN, n):
        out.append(OutboundRecord(rtdl, d["event_id"], canonical_json(d)))
        out.append(OutboundRecord(audit, d["event_id"], canonical_json(lane.audit_envelope(RUN, d))))
        events.append(str(d["payload"]["event_id"]))
    return out, events


def _labels(topic: str, event_ids: list[str]) -> list[OutboundRecord]:
    out = []
    for i, event in enumerate(event_ids):
        a = assertion(LabelSubjectKey(RUN, event, "fraud"), source="dispute", value="disputed",
                      observed_at=f"2026-02-{1 + i % 28:02d}T10:00:00Z", effective_at="2026-01-05T00:00:00Z")
        envelope = lane_envelope(LABEL_ASSERTION, a.assertion_id, a.row(), platform_run_id=RUN, scenario_run_id=None,
                                 ts_utc=a.observed_at_utc, producer="bench")
        out.append(OutboundRecord(topic, event, canonical_json(envelope)))
    return out


def _admit(db: Database, event_ids: list[str]) -> None:
    with db.transaction() as conn:
        conn.cursor().executemany(
            "INSERT INTO ig_receipts (receipt_id, platform_run_id, event_class, event_id, outcome, batch_key, batch_index,"
            " receipt) VALUES (%s, %s, 'traffic_fraud', %s, 'ADMIT', 'bench', 0, '{}') ON CONFLICT DO NOTHING",
            [(f"{i:032x}", RUN, e) for i, e in enumerate(event_ids)])


def _raw(bootstrap: str, topics: list[str], expected: int, reps: int) -> float:
    return statistics.median(_raw_consume_rate(bootstrap, topics, expected) for _ in range(reps))


def main(smoke: bool = False) -> int:
    """Start private servers, publish, measure the baselines and the three workers; print the figures."""
    n = 40 if smoke else int(os.environ.get("FP_BENCH_CASE_DECISIONS", "4000"))
    reps = 1 if smoke else REPS
    registry = load_registry("local_parity")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        procs = [start_tansu("127.0.0.1", free_port(), work / "tansu"),
                 start_postgres("127.0.0.1", free_port(), work / "pg", durable=False)]
        try:
            tansu, pg = procs
            bootstrap = f"127.0.0.1:{tansu.port}"
            owner = f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
            password = secrets.token_urlsafe(16)
            prepare_database(owner, registry.text("DB_RUNTIME_ROLE"), password)
            dsn = with_credentials(owner, registry.text("DB_RUNTIME_ROLE"), password)
            settings = load_settings({"FP_ENV": "local_parity", "FP_BUS": "kafka", "FP_KAFKA_BOOTSTRAP": bootstrap,
                                      "FP_DB_DSN": dsn})
            admin = KafkaAdmin(bootstrap)
            for topic in registry.topics():
                admin.ensure_topic(topic.name, topic.partitions, topic.retention_hours)
            names = {k: registry.topic(k).name for k in ("FP_BUS_RTDL_V1", "FP_BUS_AUDIT_V1", "FP_BUS_CASE_TRIGGERS_V1",
                                                         "FP_BUS_LABELS_EVENTS_V1")}
            lane, events = _lane(n)
            _publish(settings, lane)
            with Database(dsn, name="bench-case", max_size=4) as db:
                _admit(db, events)
                raw = _raw(bootstrap, [names["FP_BUS_RTDL_V1"], names["FP_BUS_AUDIT_V1"]], len(lane), reps)
                print(f"case: {n} decisions + {n} audit records; raw consume (bare confluent-kafka): {raw:,.0f} records/s")
                trigger = CaseTriggerHandler(names["FP_BUS_RTDL_V1"], names["FP_BUS_AUDIT_V1"], names["FP_BUS_CASE_TRIGGERS_V1"],
                                             RUN)
                rate, worker = _drain(settings, db, trigger, len(lane))
                published = trigger.counters()["case_trigger_published"]
                busy_s = len(lane) / rate if rate else 0.0
                print(f"  case_trigger {len(lane):>8} records {rate:>10,.0f} records/s {rate / raw:5.2f}x raw"
                      f"  triggers {published} ({published / busy_s if busy_s else 0:,.0f}/s)"
                      f"  dead letters {worker.counters.dead_lettered}")
                raw_case = _raw(bootstrap, [names["FP_BUS_CASE_TRIGGERS_V1"]], published, reps)
                cm = CaseManagementHandler(names["FP_BUS_CASE_TRIGGERS_V1"], RUN)
                rate, worker = _drain(settings, db, cm, published)
                appended = cm.counters()["cm_events_appended"]
                busy_s = published / rate if rate else 0.0
                print(f"  cm           {published:>8} records {rate:>10,.0f} records/s {rate / raw_case:5.2f}x raw"
                      f" ({raw_case:,.0f}/s)  timeline appends {appended} ({appended / busy_s if busy_s else 0:,.0f}/s)")
                labels = _labels(names["FP_BUS_LABELS_EVENTS_V1"], events)
                _publish(settings, labels)
                raw_labels = _raw(bootstrap, [names["FP_BUS_LABELS_EVENTS_V1"]], len(labels), reps)
                ls = LabelStoreHandler(names["FP_BUS_LABELS_EVENTS_V1"], RUN)
                rate, worker = _drain(settings, db, ls, len(labels))
                print(f"  ls           {len(labels):>8} records {rate:>10,.0f} records/s {rate / raw_labels:5.2f}x raw"
                      f" ({raw_labels:,.0f}/s)  label appends {ls.counters()['ls_appended']}")
        finally:
            for proc in procs:
                stop_pid(proc.pid, proc.argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
