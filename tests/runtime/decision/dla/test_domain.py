"""DLA: lineage outcome -> intent -> decision -> admitted event, and a hash chain that finds edited, removed or reordered batches."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.contracts.canonical import canonical_digest, canonical_json
from runtime.contracts.schemas import compiled_validator
from runtime.decision.al.domain import ActionLayer
from runtime.decision.df.domain import DecisionInputs, action_intents
from runtime.decision.dla.domain import AuditChain, AuditLog, AuditRecordConflict, AuditRecordInvalid, verify_chain
from tests.runtime.decision.support import PROVENANCE, decide_one, habitual_world
from tests.runtime.rtdl.envelopes import traffic


def _lane(n: int = 3) -> tuple[list[dict], list[dict], list[dict]]:
    world = habitual_world()
    decisions, intents, outcomes = [], [], []
    al = ActionLayer()
    for i in range(n):
        event = traffic(600 + i, amount=20.0 + i, seq=10 + i)
        record = decide_one(event, world.inputs(event))
        decisions.append(record.canonical())
        for intent in action_intents(record):
            intents.append(intent.canonical())
            outcomes.append(al.execute(intent.canonical())[0].canonical())
    return decisions, intents, outcomes


def _log(decisions, intents, outcomes) -> AuditLog:
    log = AuditLog()
    for kind, rows in (("outcome", outcomes), ("decision", decisions), ("intent", intents)):  # any arrival order
        for row in rows:
            log.append(kind, row)
    return log


def test_a_complete_lane_resolves_every_lineage():
    log = _log(*_lane())
    assert log.lineage_unresolved_total() == 0 and len(log.records) == 9


def test_an_outcome_for_an_unknown_intent_and_an_intent_for_an_unknown_decision_are_breaks():
    decisions, intents, outcomes = _lane(2)
    log = _log(decisions[1:], intents[1:], outcomes)
    breaks = {(b["kind"], b["break"]) for b in log.unresolved()}
    assert ("outcome", "INTENT_UNKNOWN") in breaks and ("intent", "DECISION_UNKNOWN") not in breaks
    log2 = _log(decisions[1:], intents, outcomes)
    assert ("intent", "DECISION_UNKNOWN") in {(b["kind"], b["break"]) for b in log2.unresolved()}


def test_a_decision_without_its_admitted_event_reference_is_a_break():
    decisions, intents, outcomes = _lane(1)
    decisions[0] = {**decisions[0], "provenance": {**decisions[0]["provenance"], "eb_ref": None}}
    log = _log(decisions, intents, outcomes)
    assert [b["break"] for b in log.unresolved()] == ["ADMITTED_EVENT_UNRESOLVED"]


def test_missing_intents_and_outcomes_are_breaks_only_at_closeout():
    decisions, intents, _ = _lane(1)
    log = _log(decisions, intents, [])
    assert log.lineage_unresolved_total(final=False) == 0
    assert [b["break"] for b in log.unresolved()] == ["OUTCOME_MISSING"]
    log = _log(decisions, [], [])
    assert [b["break"] for b in log.unresolved()] == ["INTENT_MISSING:approve"]


def test_a_redelivered_record_is_logged_once_and_a_changed_one_is_refused():
    decisions, intents, outcomes = _lane(1)
    log = _log(decisions, intents, outcomes)
    assert log.append("decision", dict(decisions[0])) is None and log.duplicates == 1
    with pytest.raises(AuditRecordConflict):
        log.append("decision", {**decisions[0], "outcome": "DECLINE"})
    with pytest.raises(AuditRecordInvalid):
        log.append("intent", {**intents[0], "action_type": "decline"})
    with pytest.raises(AuditRecordInvalid):
        log.append("verdict", decisions[0])


def test_the_chain_of_one_decision_is_found_by_decision_or_event_id():
    decisions, intents, outcomes = _lane(1)
    log = _log(decisions, intents, outcomes)
    by_decision = log.chain(decision_id=decisions[0]["decision_id"])
    by_event = log.chain(event_id=decisions[0]["event_id"])
    assert by_decision == by_event and by_decision is not None
    assert by_decision["admitted_event"]["eb_ref"] == dict(PROVENANCE.eb_ref or {})
    assert [o["action_type"] for o in by_decision["outcomes"]] == ["approve"]
    assert log.chain(event_id="0" * 32) is None


def test_audit_records_meet_their_payload_schema():
    validator = compiled_validator("events/payloads/audit_record.schema.json")
    log = _log(*_lane(1))
    for record in log.records:
        assert list(validator.iter_errors(record)) == []


def _batches(n: int = 4) -> tuple[list[bytes], str]:
    log = _log(*_lane(4))
    chain = AuditChain("platform_20260105T000000Z")
    objects = [chain.seal(log.records[i::n])[0] for i in range(n)]
    return objects, chain.head_sha256


def _codes(objects, head=None, count=None) -> set[str]:
    return {p["code"] for p in verify_chain(objects, head_sha256=head, expected_batches=count).problems}


def test_an_untouched_chain_verifies():
    objects, head = _batches()
    verdict = verify_chain(objects, head_sha256=head, expected_batches=4)
    assert verdict.ok and verdict.batches == 4 and verdict.problems == ()


def test_an_edited_batch_is_found():
    objects, head = _batches()
    batch = json.loads(objects[1])
    batch["records"][0]["record_sha256"] = "f" * 64
    assert "BATCH_EDITED" in _codes([objects[0], canonical_json(batch), *objects[2:]], head, 4)


def test_an_edit_that_recomputes_its_own_digest_is_found_by_the_next_link():
    objects, head = _batches()
    batch = json.loads(objects[1])
    batch["records"] = batch["records"][:-1]
    batch["record_count"] = len(batch["records"])
    batch["records_sha256"] = canonical_digest(batch["records"])
    problems = verify_chain([objects[0], canonical_json(batch), *objects[2:]], head_sha256=head).problems
    assert [(p["code"], p["batch_seq"]) for p in problems] == [("BATCH_EDITED", 1)]


def test_a_removed_batch_is_found():
    objects, head = _batches()
    assert "BATCH_REMOVED" in _codes([objects[0], *objects[2:]], head, 4)
    assert _codes(objects[:-1], head, 4) == {"HEAD_MISMATCH", "BATCH_COUNT_MISMATCH"}  # the tail, against the index


def test_reordered_batches_are_found():
    objects, head = _batches()
    assert "BATCH_REORDERED" in _codes([objects[0], objects[2], objects[1], objects[3]], head, 4)


def test_an_unreadable_batch_is_found():
    objects, head = _batches()
    assert "BATCH_UNREADABLE" in _codes([objects[0], b"not json", *objects[2:]], head, 4)


def test_inputs_missing_decision_still_resolves_when_provenance_is_complete():
    world = habitual_world()
    event = traffic(600, amount=20.0, seq=10)
    record = decide_one(event, DecisionInputs(None, None, None, world.inputs(event).provenance))
    log = AuditLog()
    log.append("decision", record.canonical())
    for intent in action_intents(record):
        log.append("intent", intent.canonical())
        log.append("outcome", ActionLayer().execute(intent.canonical())[0].canonical())
    assert log.lineage_unresolved_total() == 0


def test_a_batch_sealed_from_its_records_bytes_is_the_batch_sealed_from_the_records():
    from runtime.contracts.canonical import canonical_json_embedding
    from runtime.decision.dla.domain import audit_record, seal_batch

    decisions, intents, outcomes = _lane(2)
    decisions[0]["odd_numbers"] = [1e-7, 3e17, 2**70, -0.0, "\u2028"]  # written by the standard encoder, not orjson
    entries, contents = [], []
    for kind, rows in (("decision", decisions), ("intent", intents), ("outcome", outcomes)):
        for row in rows:
            content = canonical_json(row)
            audit = audit_record(kind, row, payload_json=content)
            assert audit == audit_record(kind, row)  # the same digest either way
            entries.append({**audit, "parent_id": None, "eb_ref": {"topic": "t", "partition": 0, "offset": 7}, "record": row})
            contents.append(content)
    encoded = [canonical_json_embedding({k: v for k, v in e.items() if k != "record"}, {"record": c})
               for e, c in zip(entries, contents, strict=True)]
    assert seal_batch("platform_20261130T000000Z", 3, "ab" * 32, entries, encoded=encoded) \
        == seal_batch("platform_20261130T000000Z", 3, "ab" * 32, entries)
    data, _ = seal_batch("platform_20261130T000000Z", 3, "ab" * 32, entries, encoded=encoded)
    assert data == canonical_json({"platform_run_id": "platform_20261130T000000Z", "batch_seq": 3,
                                   "previous_sha256": "ab" * 32, "record_count": len(entries),
                                   "records_sha256": canonical_digest(entries), "records": entries})


def _sealed(records: int) -> tuple[bytes, dict[str, Any]]:
    from runtime.decision.dla.domain import seal_batch

    entries = [{"audit_id": f"{i:032x}", "record": {"n": i, "score": 0.25 * i, "tiny": 1e-7 * (i + 1), "text": "é\u2028"},
                "record_sha256": "0" * 64} for i in range(records)]
    data, _ = seal_batch("platform_20260105T000000Z", 3, "f" * 64, entries)
    return data, json.loads(data)


@pytest.mark.parametrize("reformat", [None, {"indent": 1}, {"separators": (", ", ": ")}, {"sort_keys": False}])
def test_the_records_digest_is_the_parsed_records_digest_however_the_object_is_laid_out(reformat: Any) -> None:
    from runtime.decision.dla.domain import records_digest

    data, batch = _sealed(5)
    laid_out = data if reformat is None else json.dumps(dict(reversed(list(batch.items()))), **reformat).encode()
    assert records_digest(laid_out, json.loads(laid_out)) == canonical_digest(batch["records"])


def test_a_canonical_object_is_digested_from_its_bytes_without_writing_the_records_again(monkeypatch: Any) -> None:
    import runtime.decision.dla.domain as domain

    data, batch = _sealed(5)
    expected = canonical_digest(batch["records"])
    monkeypatch.setattr(domain, "canonical_digest", lambda value: (_ for _ in ()).throw(AssertionError("walked")))
    assert domain.records_digest(data, batch) == expected
