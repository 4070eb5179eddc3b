"""DLA's Postgres index: append-only for the runtime role, read by batch, and its lineage counter (the
counts of the whole index, read from the batches written since the last read)."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from runtime.db.postgres import Database
from runtime.decision.dla.store import LineageCounter, index_batch, lineage_breaks
from tests.runtime.decision.support import assert_truth_tables_refuse_change


def test_audit_tables_refuse_update_delete_and_truncate_as_the_runtime_role(runtime_dsn: str) -> None:
    assert_truth_tables_refuse_change(runtime_dsn, ("dla_audit_batches", "dla_audit_records"))


def test_reading_one_audit_batch_of_a_run_uses_the_batch_index_not_a_table_scan(runtime_dsn: str) -> None:
    from runtime.db.postgres import connect

    with connect(runtime_dsn) as conn:
        conn.execute("SET LOCAL enable_seqscan = off")  # an empty table: show which index serves the query
        plan = "\n".join(str(r[0]) for r in conn.execute(
            "EXPLAIN SELECT audit_id, record_sha256, record FROM dla_audit_records WHERE platform_run_id = 'r'"
            " AND batch_seq = 3").fetchall())
        conn.rollback()
    assert "dla_audit_records_batch" in plan, plan

EB_REF = {"topic": "fp.bus.traffic.fraud.v1", "partition": 0, "offset": 1}


@pytest.fixture
def run_id() -> str:
    return "platform_20261130T" + f"{random.randrange(10**6):06d}" + "Z"


def _entry(run: str, kind: str, record_id: str, parent: str | None, decision: str, admitted: bool = True) -> dict[str, Any]:
    provenance = {"eb_ref": EB_REF, "receipt_id": "r" * 32} if admitted else {"eb_ref": None, "receipt_id": None}
    return {"audit_id": uuid.uuid4().hex, "kind": kind, "record_id": record_id, "parent_id": parent,
            "decision_id": decision, "event_id": decision[::-1], "record_sha256": "0" * 64, "eb_ref": EB_REF,
            "record": {"platform_run_id": run, "provenance": provenance}}


def _lane(run: str, decisions: int) -> list[dict[str, Any]]:
    """Per decision: the decision, two intents and their outcomes; every fifth decision lacks its admitted event."""
    out = []
    for n in range(decisions):
        d = f"{n:032x}"
        out.append(_entry(run, "decision", d, None, d, admitted=n % 5 != 0))
        for a in range(2):
            i = f"{n:030x}{a:02x}"[::-1]
            out.append(_entry(run, "intent", i, d, d))
            out.append(_entry(run, "outcome", i[::-1] + "f", i, d))
    return out


def _expected(conn: Any, run: str) -> tuple[int, int]:
    breaks = lineage_breaks(conn, run, final=False)
    unresolvable = sum(1 for b in breaks if b["break"] == "ADMITTED_EVENT_UNRESOLVED")
    return len(breaks) - unresolvable, unresolvable


def _write(conn: Any, run: str, seq: int, entries: list[dict[str, Any]]) -> None:
    index_batch(conn, run, seq, "p" * 64, f"{seq:064x}", f"k/{seq}", entries)


def test_the_counts_read_batch_by_batch_are_those_of_the_whole_index(db: Database, run_id: str) -> None:
    entries = _lane(run_id, 12)
    random.Random(7).shuffle(entries)  # children before parents, parents batches later
    counter = LineageCounter(run_id)
    for seq, start in enumerate(range(0, len(entries), 7)):
        with db.transaction() as conn:
            _write(conn, run_id, seq, entries[start:start + 7])
            assert counter.read(conn, seq) == _expected(conn, run_id)
    with db.transaction() as conn:
        assert counter.read(conn, seq + 1) == _expected(conn, run_id) == (0, 3)


def test_a_batch_whose_transaction_rolls_back_leaves_nothing_in_the_counts(db: Database, run_id: str) -> None:
    entries = _lane(run_id, 4)
    children = [e for e in entries if e["kind"] != "decision"]
    decisions = [e for e in entries if e["kind"] == "decision"]
    counter = LineageCounter(run_id)
    with db.transaction() as conn:
        _write(conn, run_id, 0, [e for e in children if e["kind"] == "outcome"])
        assert counter.read(conn, 0) == (8, 0)
    with pytest.raises(RuntimeError), db.transaction() as conn:  # parents and decisions, then the batch fails
        _write(conn, run_id, 1, [e for e in children if e["kind"] == "intent"] + decisions)
        assert counter.read(conn, 1) == (0, 1)
        raise RuntimeError("the batch's publish failed after the counts were read")
    with db.transaction() as conn:  # the same seq again, with only the intents
        _write(conn, run_id, 1, [e for e in children if e["kind"] == "intent"])
        assert counter.read(conn, 1) == _expected(conn, run_id) == (8, 0)
    with db.transaction() as conn:
        _write(conn, run_id, 2, decisions)
        assert counter.read(conn, 2) == _expected(conn, run_id) == (0, 1)


def test_a_new_counter_reads_everything_once_and_agrees(db: Database, run_id: str) -> None:
    entries = _lane(run_id, 6)
    with db.transaction() as conn:
        _write(conn, run_id, 0, entries[:20])
        _write(conn, run_id, 1, entries[20:31])
    with db.transaction() as conn:
        assert LineageCounter(run_id).read(conn, 2) == _expected(conn, run_id)
