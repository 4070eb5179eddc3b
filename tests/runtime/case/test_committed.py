"""P10's job (`case committed`): both summaries only when the plane caught up with the run's published
records, every triggered subject has its case, labels are held, case_trigger/cm/ls are GREEN and dead
letters are 0 or explained; otherwise a specific code, the reasons, and nothing written.

Real PostgreSQL (runtime role) and the moto S3 API; CaseTrigger and CM run on the stream worker
over an in-process bus under the run's own consumer groups, as the pack runs them."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from runtime.bus.memory import MemoryBroker
from runtime.bus.port import OutboundRecord
from runtime.case import committed as committed_module
from runtime.case.cli import app
from runtime.case.cm import commands
from runtime.case.cm.handler import CaseManagementHandler
from runtime.case.cm.store import run_events
from runtime.case.committed import write_committed
from runtime.case.figures import case_labels_state
from runtime.case.trigger.handler import CaseTriggerHandler
from runtime.components import consumer_group_id
from runtime.contracts.canonical import canonical_json
from runtime.contracts.registry import load_registry
from runtime.db.postgres import Database, connect
from runtime.errors import PlatformError
from runtime.evidence.promises import FILE_PROMISES, PASS_PROMISES
from runtime.settings import Settings, load_settings
from runtime.worker.handler import StreamHandler
from runtime.worker.loop import StreamWorker, WorkerConfig
from runtime.worker.run import component_dir
from runtime.worker.store import WorkerStore
from tests.runtime.case.lane import AUDIT_TOPIC, CASE_TOPIC, RTDL_TOPIC, admit, audit_envelope, decisions
from tests.support.events import random_run_id

REG = load_registry("local_parity")
DECISIONS = 16  # outcomes cycle APPROVE, STEP_UP, REVIEW, DECLINE: 8 cases
runner = CliRunner()


@pytest.fixture
def settings(moto_endpoint: str, runtime_dsn: str, s3_client) -> Settings:  # type: ignore[no-untyped-def]
    with contextlib.suppress(s3_client.exceptions.BucketAlreadyOwnedByYou):
        s3_client.create_bucket(Bucket=REG.text("S3_EVIDENCE_BUCKET"))
    return load_settings({"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint, "FP_DB_DSN": runtime_dsn,
                          "FP_BUS": "kafka"})


class Plane:
    """One run's decisions and audit records on an in-process bus, and the plane's workers over them."""

    def __init__(self, settings: Settings, db: Database):
        self.settings, self.db, self.run, self.broker = settings, db, random_run_id(), MemoryBroker()
        for topic in (RTDL_TOPIC, AUDIT_TOPIC, CASE_TOPIC):
            self.broker.admin().ensure_topic(topic, 1, 24)
        self.decisions = decisions(self.run, DECISIONS)
        records = []
        for d in self.decisions:
            records.append(OutboundRecord(RTDL_TOPIC, d["event_id"], canonical_json(d)))
            records.append(OutboundRecord(AUDIT_TOPIC, d["event_id"], canonical_json(audit_envelope(self.run, d))))
        self.broker.publisher().publish(records)
        with db.transaction() as conn:
            admit(conn, self.run, sorted({d["payload"]["event_id"] for d in self.decisions}))

    def drain(self, handler: StreamHandler) -> None:
        group = consumer_group_id(REG, handler.component, self.run)
        consumer = self.broker.consumer(handler.input_topics(), group, self.run)
        worker = StreamWorker(handler, consumer, self.broker.publisher(), self.db.transaction,
                              WorkerStore(group, handler.component, self.run), admin=self.broker.admin(), health=None,
                              health_base=lambda: {}, config=WorkerConfig(batch_size=10, poll_timeout_s=0.01, backoff_initial_s=0.0),
                              sleep=lambda s: None)
        worker.run(threading.Event(), idle_exit_after=2)
        consumer.close()

    def run_workers(self, *, cm: bool = True) -> None:
        self.drain(CaseTriggerHandler(RTDL_TOPIC, AUDIT_TOPIC, CASE_TOPIC, self.run))
        if cm:
            self.drain(CaseManagementHandler(CASE_TOPIC, self.run))

    def close_first_case(self) -> None:
        """An investigator closes one case: CM's closing asserts a label through LS."""
        with self.db.transaction() as conn:
            case_id = min(e.case_id for e in run_events(conn, self.run))
            commands.start_investigation(conn, self.run, case_id, actor="ana", at="2026-02-01T10:00:00Z")
            commands.close(conn, self.run, case_id, actor="ana", outcome="confirmed_fraud", at="2026-02-01T11:00:00Z")

    def health(self, state: str = "GREEN", components: tuple[str, ...] = ("case_trigger", "cm", "ls")) -> None:
        prefix = REG.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=self.run)
        for component in components:
            doc = {"health_state": state, "reasons": [] if state == "GREEN" else ["BUS_UNAVAILABLE: down"]}
            self.settings.bucket("S3_EVIDENCE_BUCKET").put(
                prefix + REG.render("COMPONENT_HEALTH_PATH_PATTERN", component_dir=component_dir(component)),
                json.dumps(doc).encode())

    def written(self) -> dict[str, dict[str, Any]]:
        prefix = REG.render("S3_EVIDENCE_PREFIX_PATTERN", platform_run_id=self.run)
        bucket = self.settings.bucket("S3_EVIDENCE_BUCKET")
        return {o.key[len(prefix):]: json.loads(bucket.get(o.key)) for o in bucket.list(prefix + "case_labels/")}

    def dead_letter(self, component: str, code: str, position: int = 1) -> None:
        ref = {"offset_kind": "kafka_offset", "topic": "fp.bus.labels.events.v1", "partition": 0, "offset": position}
        with connect(self.settings.db_dsn or "") as conn:
            conn.execute("INSERT INTO worker_dead_letters (consumer_group, topic, partition, position, component, platform_run_id,"
                         " reason_code, reason, eb_ref, value_sha256, value_excerpt) VALUES (%s, %s, '0', %s, %s, %s, %s,"
                         " 'refused', %s, 'h', '{}')", (consumer_group_id(REG, component, self.run), ref["topic"], position,
                                                         component, self.run, code, json.dumps(ref)))
            conn.commit()


@pytest.fixture
def plane(settings: Settings, runtime_dsn: str) -> Iterator[Plane]:
    with Database(runtime_dsn, name="case-committed", max_size=2) as db:
        yield Plane(settings, db)


def _fails(plane: Plane, code: str, **kwargs: Any) -> PlatformError:
    lines: list[str] = []
    with pytest.raises(PlatformError) as e:
        write_committed(plane.settings, plane.run, wait_s=kwargs.pop("wait_s", 0.0), progress=lines.append,
                        sleep=lambda s: None, **kwargs)
    assert e.value.code == code, e.value.operator_line()
    assert e.value.next_step
    assert plane.written() == {}  # nothing PASS-looking
    return e.value


def test_a_committed_plane_writes_both_summaries_with_the_stores_figures_and_digests(plane: Plane) -> None:
    plane.run_workers()
    plane.close_first_case()
    plane.health()
    written = write_committed(plane.settings, plane.run, wait_s=0.0)
    assert sorted(w.relative_path for w in written) == ["case_labels/case_summary.json", "case_labels/label_summary.json"]
    docs = plane.written()
    cases, labels = docs["case_labels/case_summary.json"], docs["case_labels/label_summary.json"]
    with plane.db.transaction() as conn:
        state = case_labels_state(conn, plane.run)
    assert cases["case_digest"] == state.case_summary["case_digest"] and labels["label_digest"] == state.label_summary["label_digest"]
    assert cases["counts"]["triggers_published"] == cases["counts"]["triggers_processed"] == cases["counts"]["cases"] == 8
    assert cases["cases_missing"] == 0 and cases["trigger_join"]["awaiting_audit"] == 0
    assert cases["health"] == labels["health"] == "GREEN" and cases["phase_id"] == "P10"
    assert cases["consumer_groups"]["cm"] == consumer_group_id(REG, "cm", plane.run)
    assert labels["assertions_by_source"]["case_closure"] == 1
    assert cases["dead_letters"] == {"total": 0, "explained": 0, "by_component": {"case_trigger": 0, "cm": 0}, "by_code": {}}
    documents = {path: doc for path, doc in docs.items()}
    for path, doc in documents.items():
        assert FILE_PROMISES[path.split("/")[-1].removesuffix(".json")](path, doc, documents, REG) == []
    assert PASS_PROMISES["P10"](documents, REG) == []


def test_an_edited_count_breaks_the_summaries_promises(plane: Plane) -> None:
    plane.run_workers()
    plane.close_first_case()
    plane.health()
    write_committed(plane.settings, plane.run, wait_s=0.0)
    docs = plane.written()
    cases, labels = docs["case_labels/case_summary.json"], docs["case_labels/label_summary.json"]
    cases["cases_by_status"]["open"] += 1
    labels["assertions_by_label"]["fraud"] += 1
    assert any("cases by status" in m for _, m in FILE_PROMISES["case_summary"]("c", cases, docs, REG))
    assert any("assertions by label" in m for _, m in FILE_PROMISES["label_summary"]("l", labels, docs, REG))
    labels["health"] = "AMBER"
    assert any("ls AMBER" in m for _, m in PASS_PROMISES["P10"](docs, REG))


def test_a_published_record_the_trigger_worker_has_not_made_durable_is_not_caught_up(plane: Plane) -> None:
    plane.run_workers()
    plane.close_first_case()
    plane.health()
    # DF published one more decision of the run that CaseTrigger has not consumed yet.
    ref = {"offset_kind": "kafka_offset", "topic": RTDL_TOPIC, "partition": 0, "offset": 10_000}
    with connect(plane.settings.db_dsn or "") as conn:
        conn.execute("INSERT INTO worker_outbox (component, record_id, platform_run_id, topic, key, value, published_at, eb_ref)"
                     " VALUES ('df', 'late', %s, %s, 'k', 'v', now(), %s)", (plane.run, RTDL_TOPIC, json.dumps(ref)))
        conn.commit()
    error = _fails(plane, "CASE_LABELS_NOT_CAUGHT_UP", wait_s=0.01)
    assert "case_trigger:" in error.message and "not yet durable" in error.message


def test_triggers_without_their_cases_fail_cases_missing(plane: Plane) -> None:
    plane.run_workers(cm=False)  # CM never ran
    plane.health()
    error = _fails(plane, "CASE_LABELS_CASES_MISSING")
    assert "8 triggered subject(s) without a case" in error.message


def test_a_red_component_fails_unhealthy(plane: Plane) -> None:
    plane.run_workers()
    plane.close_first_case()
    plane.health()
    plane.health("RED", ("ls",))
    error = _fails(plane, "CASE_LABELS_UNHEALTHY")
    assert "ls: health RED" in error.message


def test_an_unexplained_dead_letter_fails_at_once_and_an_outside_refusal_is_explained(plane: Plane) -> None:
    plane.run_workers()
    plane.close_first_case()
    plane.health()
    plane.dead_letter("ls", "LABEL_SOURCE_NOT_ALLOWED")
    write_committed(plane.settings, plane.run, wait_s=0.0)
    labels = plane.written()["case_labels/label_summary.json"]
    assert labels["dead_letters"] == {"total": 1, "explained": 1, "by_component": {"ls": 1},
                                      "by_code": {"LABEL_SOURCE_NOT_ALLOWED": 1}}
    plane.dead_letter("cm", "CASE_TIMELINE_CONFLICT", position=2)  # a platform fault
    slept: list[float] = []
    with pytest.raises(PlatformError) as e:
        write_committed(plane.settings, plane.run, wait_s=60.0, sleep=slept.append)
    assert e.value.code == "CASE_LABELS_DEAD_LETTERS" and "cm CASE_TIMELINE_CONFLICT=1" in e.value.message
    assert slept == []  # a dead letter never goes away: no waiting


def test_a_run_without_labels_fails_no_labels(plane: Plane) -> None:
    plane.run_workers()  # no case closed, no bank view ingested
    plane.health()
    _fails(plane, "CASE_LABELS_NO_LABELS")


def test_a_run_without_triggers_fails_no_triggers(plane: Plane) -> None:
    plane.health()  # nothing ran: caught up with nothing
    _fails(plane, "CASE_LABELS_NO_TRIGGERS")


def test_the_cli_refuses_a_malformed_run_id() -> None:
    result = runner.invoke(app, ["committed", "--platform-run-id", "nope"])
    assert result.exit_code == 1 and "RUN_ID_INVALID" in result.output


def test_each_failure_code_has_a_next_step() -> None:
    assert set(committed_module.NEXT_STEPS) >= {"CASE_LABELS_NOT_CAUGHT_UP", "CASE_LABELS_AUDIT_MISSING",
                                                "CASE_LABELS_CASES_MISSING", "CASE_LABELS_UNHEALTHY",
                                                "CASE_LABELS_DEAD_LETTERS", "CASE_LABELS_NO_TRIGGERS", "CASE_LABELS_NO_LABELS"}
