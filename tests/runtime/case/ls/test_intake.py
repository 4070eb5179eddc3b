"""LS's bank view intake over a real engine run's stream views: confirmed fraud is `unknown` before the
bank's report and `fraud` from it on; only admitted events are labelled; a rerun appends nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runtime.case.keys import LabelSubjectKey
from runtime.case.ls.intake import BANK_VIEW_OUTPUT, NothingAdmitted, ingest_bank_view
from runtime.case.ls.store import label_as_of_stored, run_assertions
from runtime.contracts.ids import event_id
from runtime.db.postgres import Database
from runtime.oracle.engine.config import EngineConfig
from runtime.oracle.engine.run import generate
from runtime.settings import load_settings
from runtime.store.local import FolderStore
from runtime.wsp.views import StreamView, StreamViewMissing
from tests.runtime.case.lane import admit
from tests.support.events import random_run_id

TRAFFIC = "s3_event_stream_with_fraud_6B"


@pytest.fixture(scope="module")
def engine_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("oracle") / "run"
    generate(EngineConfig(seed=7, scale=4000, fraud_rate=0.2, files_per_output=1, days=1), root)
    return root


def _publish_views(root: Path, store: FolderStore, run: str, outputs: tuple[str, ...]) -> None:
    """Put engine outputs where the oracle lane's stream sort leaves a run's stream views."""
    registry = load_settings().registry
    for output_id in outputs:
        view = StreamView(registry, store, run, output_id)
        for i, part in enumerate(sorted((root / output_id).glob("part-*.parquet"))):
            store.put(f"{view.prefix}part-{i:06d}.parquet", part.read_bytes(), content_type="application/octet-stream")
        store.put(view.receipt_key, json.dumps({"output_id": output_id}).encode())


@pytest.fixture
def world(engine_root: Path, tmp_path: Path, runtime_dsn: str) -> Iterator[dict[str, Any]]:
    run = random_run_id()
    store = FolderStore(tmp_path / "oracle")
    _publish_views(engine_root, store, run, (TRAFFIC, BANK_VIEW_OUTPUT))
    rows = list(StreamView(load_settings().registry, store, run, TRAFFIC).rows())
    flows: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        flows.setdefault(row["flow_id"], []).append({"event_id": event_id(TRAFFIC, row), "ts_utc": row["ts_utc"]})
    bank = {r["flow_id"]: r for r in StreamView(load_settings().registry, store, run, BANK_VIEW_OUTPUT).rows()}
    with Database(runtime_dsn, name="ls-intake", max_size=1) as db:
        yield {"run": run, "store": store, "db": db, "flows": flows, "bank": bank}


def _admit_all_but(world: dict[str, Any], left_out: set[str]) -> None:
    with world["db"].transaction() as conn:
        admit(conn, world["run"], [e["event_id"] for f, evs in world["flows"].items() if f not in left_out for e in evs])


def test_confirmed_fraud_is_unknown_before_the_report_and_fraud_from_it_on(world: dict[str, Any]) -> None:
    confirmed = sorted(f for f, r in world["bank"].items() if r["bank_label"] == "FRAUD_CONFIRMED" and f in world["flows"])
    disputed = [f for f, r in world["bank"].items() if r["bank_label"] == "CUSTOMER_DISPUTE" and f in world["flows"]]
    left_out = {confirmed[-1]}
    _admit_all_but(world, left_out)
    report = ingest_bank_view(world["db"], world["store"], load_settings().registry, world["run"])
    expected = sum(len(world["flows"][f]) for f in [*confirmed[:-1], *disputed])
    assert report.assertions == report.appended == expected and report.already_held == 0
    assert report.by_source["bank_view"] == sum(len(world["flows"][f]) for f in confirmed[:-1])
    assert report.skipped["not_in_run"] >= 1 and report.skipped["no_claim"] > 0
    checked = 0
    with world["db"].transaction() as conn:
        for flow in confirmed[:20]:
            reported = datetime.fromisoformat(world["bank"][flow]["reported_at_utc"].replace("Z", "+00:00"))
            for event in world["flows"][flow]:
                subject = LabelSubjectKey(world["run"], event["event_id"], "fraud")
                if flow in left_out:
                    assert label_as_of_stored(conn, subject, reported + timedelta(days=365)).value == "unknown"
                    continue
                at = max(reported, datetime.fromisoformat(event["ts_utc"].replace("Z", "+00:00")))
                assert label_as_of_stored(conn, subject, at - timedelta(microseconds=1)).value == "unknown"
                assert label_as_of_stored(conn, subject, at).value == "fraud"
                checked += 1
    assert checked >= 20


def test_a_rerun_appends_nothing(world: dict[str, Any]) -> None:
    _admit_all_but(world, set())
    first = ingest_bank_view(world["db"], world["store"], load_settings().registry, world["run"])
    with world["db"].transaction() as conn:
        held = run_assertions(conn, world["run"])
    again = ingest_bank_view(world["db"], world["store"], load_settings().registry, world["run"])
    with world["db"].transaction() as conn:
        assert run_assertions(conn, world["run"]) == held
    assert first.appended == len(held) > 0 and again.appended == 0 and again.already_held == first.assertions
    assert {a.source for a in held} == {"bank_view", "dispute"}
    assert all(a.observed_at_utc >= a.effective_at_utc for a in held)


def test_a_run_without_admitted_traffic_is_refused(world: dict[str, Any]) -> None:
    with pytest.raises(NothingAdmitted) as e:
        ingest_bank_view(world["db"], world["store"], load_settings().registry, world["run"])
    assert e.value.code == "LS_INTAKE_NO_ADMITTED_TRAFFIC"


def test_a_missing_bank_view_is_refused_and_nothing_is_written(world: dict[str, Any], tmp_path: Path,
                                                                engine_root: Path) -> None:
    _admit_all_but(world, set())
    bare = FolderStore(tmp_path / "bare")
    _publish_views(engine_root, bare, world["run"], (TRAFFIC,))
    with pytest.raises(StreamViewMissing):
        ingest_bank_view(world["db"], bare, load_settings().registry, world["run"])
    with world["db"].transaction() as conn:
        assert run_assertions(conn, world["run"]) == []

