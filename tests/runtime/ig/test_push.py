"""IG push end to end on the real servers: admit -> receipts -> topic, dedupe, anomaly, bad input."""

from __future__ import annotations

import json

import psycopg
import pytest

from runtime.store.s3 import S3Store
from tests.runtime.ig.conftest import push
from tests.support.events import envelope
from tests.support.kafka_bus import read_all

JSON = {"content-type": "application/json"}


def run_records(bootstrap: str, topics: list[str], run_id: str, expected: int) -> list[dict]:
    out = []
    for record in read_all(bootstrap, topics, timeout_s=30.0):
        doc = json.loads(record.value)
        if doc["platform_run_id"] == run_id:
            out.append({**doc, "_ref": record.eb_ref})
    return out


def admissions(dsn: str, run_id: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM ig_admissions WHERE platform_run_id = %s AND state = 'ADMITTED'",
                            (run_id,)).fetchone()[0]


def test_batch_is_admitted_published_and_receipted(client, run_id, kafka_bootstrap, bus_topics, store: S3Store, migrated_dsn):
    events = [envelope(run_id, n) for n in range(20)] + [envelope(run_id, n, "context_arrival_events") for n in range(5)]
    r = push(client, {"events": events})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["counts"] == {"ADMIT": 25}
    refs = [res["receipt"]["eb_ref"] for res in body["results"]]
    assert all(ref["offset_kind"] == "kafka_offset" for ref in refs)
    on_bus = run_records(kafka_bootstrap, [bus_topics["traffic_fraud"], bus_topics["context_arrival_events"]], run_id, 25)
    assert sorted(d["event_id"] for d in on_bus) == sorted(e["event_id"] for e in events)
    by_id = {d["event_id"]: d for d in on_bus}
    for res, event in zip(body["results"], events, strict=True):
        landed = by_id[event["event_id"]]
        assert landed["_ref"].offset == res["receipt"]["eb_ref"]["offset"]
        assert landed["payload_hash"] == res["receipt"]["payload_hash"]
    keys = [o.key for o in store.list(f"platform/{run_id}/ig/receipts/")]
    assert len(keys) == 1  # one batch object per request, not one per receipt
    stored = json.loads(store.get(keys[0]))
    assert [x["receipt_id"] for x in stored["receipts"]] == [res["receipt"]["receipt_id"] for res in body["results"]]
    assert admissions(migrated_dsn, run_id) == 25


def test_repush_admits_nothing_and_returns_original_receipts(client, run_id, kafka_bootstrap, bus_topics, migrated_dsn):
    events = [envelope(run_id, n) for n in range(10)]
    first = push(client, {"events": events}).json()
    second = push(client, {"events": events})
    assert second.status_code == 200
    assert second.json()["counts"] == {"DUPLICATE": 10}
    for a, b in zip(first["results"], second.json()["results"], strict=True):
        assert b["receipt"]["original_receipt_id"] == a["receipt"]["receipt_id"]
        assert b["original_receipt"]["eb_ref"] == a["receipt"]["eb_ref"]
    on_bus = run_records(kafka_bootstrap, [bus_topics["traffic_fraud"]], run_id, 10)
    assert len(on_bus) == 10
    assert admissions(migrated_dsn, run_id) == 10


def test_changed_payload_under_same_identity_is_anomaly_and_first_payload_kept(client, run_id, kafka_bootstrap, bus_topics,
                                                                               store: S3Store):
    original = envelope(run_id, 1)
    push(client, original)
    changed = envelope(run_id, 1)
    changed["payload"] = {**changed["payload"], "amount": 999999.0}
    r = push(client, changed).json()
    assert r["counts"] == {"ANOMALY": 1}
    result = r["results"][0]
    assert result["error"]["code"] == "PAYLOAD_HASH_MISMATCH"
    qkey = result["receipt"]["quarantine_ref"]["bucket_key"]
    kept = json.loads(store.get(qkey))["items"][result["receipt"]["quarantine_ref"]["index"]]
    assert kept["event"]["payload"]["amount"] == 999999.0
    on_bus = run_records(kafka_bootstrap, [bus_topics["traffic_fraud"]], run_id, 1)
    assert len(on_bus) == 1 and on_bus[0]["payload"]["amount"] == original["payload"]["amount"]


def test_same_identity_twice_in_one_batch(client, run_id):
    a = envelope(run_id, 3)
    b = envelope(run_id, 3)
    b["payload"] = {**b["payload"], "amount": 1.0}
    r = push(client, {"events": [a, a, b]}).json()
    assert [x["outcome"] for x in r["results"]] == ["ADMIT", "DUPLICATE", "ANOMALY"]
    assert r["results"][1]["receipt"]["original_receipt_id"] == r["results"][0]["receipt"]["receipt_id"]


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda e: e.pop("event_id"), "EVENT_ID_MISSING"),
        (lambda e: e.update(event_class="nope"), "UNKNOWN_EVENT_CLASS"),
        (lambda e: e.update(event_class={"a": 1}), "UNKNOWN_EVENT_CLASS"),
        (lambda e: e.update(event_class=["traffic_fraud"]), "UNKNOWN_EVENT_CLASS"),
        (lambda e: e.update(event_type=7), "ENVELOPE_INVALID"),
        (lambda e: e["payload"].update(amount="ten"), "PAYLOAD_INVALID"),
        (lambda e: e["payload"].pop("flow_id"), "PAYLOAD_INVALID"),
        (lambda e: e.update(platform_run_id="platform_19990101T000000Z"), "RUN_PIN_MISMATCH"),
        (lambda e: e.update(extra_field=1), "ENVELOPE_INVALID"),
    ],
)
def test_bad_event_gets_its_specific_error_and_is_quarantined_not_admitted(client, run_id, migrated_dsn, store, mutate, code):
    event = envelope(run_id, 5)
    mutate(event)
    good = envelope(run_id, 6)
    r = push(client, {"events": [event, good]})
    assert r.status_code == 200
    bad_result, good_result = r.json()["results"]
    assert bad_result["outcome"] == "QUARANTINE"
    assert bad_result["error"]["code"] == code
    assert good_result["outcome"] == "ADMIT"
    assert admissions(migrated_dsn, run_id) == 1
    qref = bad_result["receipt"]["quarantine_ref"]
    assert json.loads(store.get(qref["bucket_key"]))["items"][qref["index"]]["event"] == event  # nothing lost


def test_non_object_event_in_batch(client, run_id):
    r = push(client, {"events": ["hello", 3]})
    assert [x["error"]["code"] for x in r.json()["results"]] == ["ENVELOPE_NOT_OBJECT", "ENVELOPE_NOT_OBJECT"]


def test_malformed_json_is_400(client):
    r = client.post("/v1/ingest/push", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "MALFORMED_JSON"


@pytest.mark.parametrize("body", [[], "x", 5, {"events": "x"}, {"events": []}, {"events": [], "more": 1}])
def test_wrong_body_shapes_are_422(client, body):
    r = push(client, body)
    assert r.status_code == 422


@pytest.mark.parametrize("field", ["payload_hash", "receipt_id", "eb_ref", "admitted_at_utc"])
def test_server_owned_fields_are_422_and_nothing_admitted(client, run_id, migrated_dsn, field):
    event = envelope(run_id, 1, **{field: "x"})
    r = push(client, {"events": [envelope(run_id, 2), event]})
    assert r.status_code == 422 and r.json()["error"] == "SERVER_OWNED_FIELD"
    assert admissions(migrated_dsn, run_id) == 0


def test_too_many_events_is_413(client, run_id, migrated_dsn):
    r = push(client, {"events": [envelope(run_id, n) for n in range(501)]})
    assert r.status_code == 413 and r.json()["error"] == "BATCH_TOO_LARGE"
    assert admissions(migrated_dsn, run_id) == 0


def test_oversized_body_is_413_by_content_length(client):
    r = client.post("/v1/ingest/push", content=b" " * (4 * 1024 * 1024 + 1), headers=JSON)
    assert r.status_code == 413 and r.json()["error"] == "BODY_TOO_LARGE"


def test_oversized_streamed_body_without_length_is_413(client):
    def chunks():
        for _ in range(80):
            yield b" " * 65536

    r = client.post("/v1/ingest/push", content=chunks(), headers=JSON)
    assert r.status_code == 413


def test_oversized_single_event_is_quarantined(client, run_id):
    event = envelope(run_id, 9)
    event["payload"]["notes"] = "x" * 70000
    r = push(client, event).json()
    assert r["results"][0]["error"]["code"] == "EVENT_TOO_LARGE"


def test_retry_of_an_identity_left_pending_republishes_and_flags_it(client, run_id, migrated_dsn, kafka_bootstrap, bus_topics):
    event = envelope(run_id, 77)
    with psycopg.connect(migrated_dsn) as conn:  # what a killed IG leaves behind: a claim, outcome unknown
        from runtime.ig.domain import payload_hash

        conn.execute("INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, state)"
                     " VALUES (%s, %s, %s, %s, 'PENDING')",
                     (run_id, "traffic_fraud", event["event_id"], payload_hash(event["payload"])))
    r = push(client, event).json()
    assert r["counts"] == {"ADMIT": 1}
    receipt = r["results"][0]["receipt"]
    assert receipt["republished"] is True and receipt["reconciles_receipt_id"]
    with psycopg.connect(migrated_dsn) as conn:
        outcomes = sorted(row[0] for row in conn.execute(
            "SELECT outcome FROM ig_receipts WHERE platform_run_id = %s", (run_id,)))
    assert outcomes == ["ADMIT", "PUBLISH_AMBIGUOUS"]
    assert push(client, event).json()["counts"] == {"DUPLICATE": 1}


class AckLostPublisher:
    """Publishes for real but, once, loses the acknowledgement: the outcome IG sees is unknown."""

    def __init__(self, inner):
        self.inner, self.lost = inner, False

    def publish(self, records):
        results = self.inner.publish(records)
        if not self.lost:
            self.lost = True
            from runtime.errors import PublishAmbiguous

            return [PublishAmbiguous("acknowledgement lost") for _ in results]
        return results

    def close(self):
        self.inner.close()


def test_lost_acknowledgement_is_publish_ambiguous_then_reconciled(ig_settings, publisher, store, run_id, kafka_bootstrap,
                                                                   bus_topics, migrated_dsn):
    from fastapi.testclient import TestClient

    from runtime.ig.app import create_app
    from tests.runtime.ig.conftest import API_KEY

    app = create_app(ig_settings, AckLostPublisher(publisher), receipts_store=store, quarantine_store=store)
    event = envelope(run_id, 5)
    with TestClient(app, headers={"X-IG-Api-Key": API_KEY}) as c:
        first = push(c, event).json()
        assert first["counts"] == {"PUBLISH_AMBIGUOUS": 1}
        assert c.get("/v1/ops/health").json()["state"] == "AMBER"
        second = push(c, event).json()
    assert second["counts"] == {"ADMIT": 1} and second["results"][0]["receipt"]["republished"] is True
    on_bus = run_records(kafka_bootstrap, [bus_topics["traffic_fraud"]], run_id, 2)
    assert [d["event_id"] for d in on_bus] == [event["event_id"]] * 2  # twice on the topic, and the receipts say why
    with psycopg.connect(migrated_dsn) as conn:
        outcomes = sorted(row[0] for row in conn.execute(
            "SELECT outcome FROM ig_receipts WHERE platform_run_id = %s", (run_id,)))
    assert outcomes == ["ADMIT", "PUBLISH_AMBIGUOUS"]  # one receipt per attempt
    assert second["results"][0]["receipt"]["reconciles_receipt_id"] == first["results"][0]["receipt"]["receipt_id"]


@pytest.mark.parametrize("text", [b'"a\\u0000b"', b'"\\ud9f0x"', b'"\\uDC00"'])
def test_nul_and_lone_surrogates_are_422_and_nothing_admitted(client, run_id, migrated_dsn, text):
    event = envelope(run_id, 1)
    raw = json.dumps({"events": [envelope(run_id, 2), event]}).replace('"producer": "test"', '"producer": ' + text.decode())
    r = client.post("/v1/ingest/push", content=raw.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "UNSTORABLE_TEXT"
    assert admissions(migrated_dsn, run_id) == 0


def test_escaped_backslash_and_surrogate_pairs_are_fine(client, run_id):
    event = envelope(run_id, 1)
    event["payload"]["note"] = "a\\u0000 literal and an emoji \U0001f600"
    r = client.post("/v1/ingest/push", content=json.dumps(event).encode(), headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["counts"] == {"ADMIT": 1}


@pytest.mark.parametrize("raw", [b'{"events": [NaN]}', b'{"a": Infinity}', b'{"a": 1e999}', b"[" * 5000 + b"]" * 5000,
                                 b'{"a": ' + b"9" * 5000 + b"}", b"\xff\xfe", b""])
def test_unparsable_or_non_finite_json_is_400(client, raw):
    r = client.post("/v1/ingest/push", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "MALFORMED_JSON"


def test_event_id_with_a_trailing_newline_is_not_a_new_identity(client, run_id, migrated_dsn):
    event = envelope(run_id, 11)
    assert push(client, event).json()["counts"] == {"ADMIT": 1}
    r = push(client, {**event, "event_id": event["event_id"] + "\n"}).json()
    assert r["counts"] == {"QUARANTINE": 1} and r["results"][0]["error"]["code"] == "ENVELOPE_INVALID"
    r = push(client, envelope(run_id, 12, payload=None) | {"payload": {**envelope(run_id, 12)["payload"], "currency": "GBP\n"}}).json()
    assert r["counts"] == {"QUARANTINE": 1} and r["results"][0]["error"]["code"] == "PAYLOAD_INVALID"
    assert admissions(migrated_dsn, run_id) == 1


def receipts_of(dsn: str, run_id: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return sorted(r[0] for r in conn.execute("SELECT outcome FROM ig_receipts WHERE platform_run_id = %s", (run_id,)))


@pytest.mark.parametrize("body", [
    '{"events": [{"event_id": "a", "event_id": "b"}]}',
    '{"events": [], "events": []}',
    "envelope",  # a valid envelope that repeats one of its keys
])
def test_duplicate_keys_in_an_object_are_refused_and_nothing_is_written(client, run_id, migrated_dsn, body):
    if body == "envelope":
        body = json.dumps(envelope(run_id, 31))[:-1] + ', "event_type": "auth_request"}'
    r = client.post("/v1/ingest/push", content=body.encode(), headers=JSON)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "DUPLICATE_JSON_KEY" and r.json()["next_step"]
    assert receipts_of(migrated_dsn, run_id) == [] and admissions(migrated_dsn, run_id) == 0


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/jsonx"])
def test_a_body_not_declared_json_is_415_and_nothing_is_written(client, run_id, migrated_dsn, content_type):
    headers = {} if content_type is None else {"content-type": content_type}
    r = client.post("/v1/ingest/push", content=json.dumps(envelope(run_id, 32)).encode(), headers=headers)
    assert r.status_code == 415, r.text
    assert r.json()["error"] == "UNSUPPORTED_MEDIA_TYPE" and r.json()["next_step"]
    assert receipts_of(migrated_dsn, run_id) == []


def test_json_with_a_charset_parameter_is_accepted(client, run_id):
    r = client.post("/v1/ingest/push", content=json.dumps(envelope(run_id, 33)).encode(),
                    headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 200 and r.json()["counts"] == {"ADMIT": 1}


@pytest.mark.parametrize(("event_class", "event_type"), [
    ("traffic_fraud", "context_arrival_events"), ("traffic_fraud", "traffic_fraud"), ("traffic_baseline", "arrival"),
    ("context_arrival_events", "auth_request"), ("context_flow_anchor_fraud", "context_flow_anchor_baseline"),
])
def test_an_event_type_of_another_class_is_quarantined_not_admitted(client, run_id, migrated_dsn, event_class, event_type):
    r = push(client, envelope(run_id, 34, event_class, event_type=event_type)).json()
    assert r["counts"] == {"QUARANTINE": 1}
    assert r["results"][0]["error"]["code"] == "EVENT_TYPE_NOT_OF_CLASS"
    assert admissions(migrated_dsn, run_id) == 0


def test_an_oversized_invalid_event_keeps_only_a_bounded_excerpt_in_quarantine(client, run_id, store: S3Store):
    big = {"event_id": "not-hex", "junk": "y" * (3 * 1024 * 1024)}
    r = push(client, {"events": [envelope(run_id, 35), big]}).json()
    assert r["counts"] == {"ADMIT": 1, "QUARANTINE": 1}
    assert r["results"][1]["error"]["code"] == "EVENT_TOO_LARGE"
    keys = list(store.list(f"quarantine/{run_id}/"))
    assert len(keys) == 1 and keys[0].size < 16 * 1024, keys
    kept = json.loads(store.get(keys[0].key))["items"][0]["event"]
    assert kept["truncated"] is True and kept["bytes"] > 3 * 1024 * 1024 and len(kept["sha256"]) == 64
    assert len(kept["excerpt"]) <= 1024


def test_an_oversized_valid_event_keeps_only_a_bounded_excerpt_in_quarantine(client, run_id, store: S3Store):
    event = envelope(run_id, 36)
    event["payload"]["notes"] = "x" * 70000
    r = push(client, event).json()
    assert r["results"][0]["error"]["code"] == "EVENT_TOO_LARGE"
    keys = list(store.list(f"quarantine/{run_id}/"))
    assert len(keys) == 1 and keys[0].size < 8 * 1024


def test_health_is_red_with_the_reason_when_the_object_store_is_gone(ig_settings, publisher, moto_endpoint):
    from fastapi.testclient import TestClient

    from runtime.ig.app import create_app
    from runtime.store.s3 import s3_client
    from tests.runtime.ig.conftest import API_KEY

    gone = S3Store("fp-bucket-that-does-not-exist", client=s3_client(moto_endpoint, "us-east-1"))
    app = create_app(ig_settings, publisher, receipts_store=gone, quarantine_store=gone)
    with TestClient(app, headers={"X-IG-Api-Key": API_KEY}) as c:
        health = c.get("/v1/ops/health").json()
    assert health["state"] == "RED"
    assert {"RECEIPTS_STORE_UNAVAILABLE", "QUARANTINE_STORE_UNAVAILABLE"} <= set(health["reasons"])
    assert health["object_store"]["RECEIPTS_STORE_UNAVAILABLE"] != "ok"


def test_health_is_amber_when_only_the_quarantine_store_is_gone(ig_settings, publisher, moto_endpoint, store):
    from fastapi.testclient import TestClient

    from runtime.ig.app import create_app
    from runtime.store.s3 import s3_client
    from tests.runtime.ig.conftest import API_KEY

    gone = S3Store("fp-bucket-that-does-not-exist", client=s3_client(moto_endpoint, "us-east-1"))
    app = create_app(ig_settings, publisher, receipts_store=store, quarantine_store=gone)
    with TestClient(app, headers={"X-IG-Api-Key": API_KEY}) as c:
        health = c.get("/v1/ops/health").json()
    assert health["state"] == "AMBER" and "QUARANTINE_STORE_UNAVAILABLE" in health["reasons"]
    assert health["object_store"]["RECEIPTS_STORE_UNAVAILABLE"] == "ok"


class SlowReceiptsStore:
    """The run's real bucket, whose receipts writes take a while and look, just before they land, at what
    the database already shows of the run; or fail, when told to."""

    def __init__(self, inner: S3Store, dsn: str, run_id: str):
        self.inner, self.dsn, self.run_id = inner, dsn, run_id
        self.seen_before_put: list[int] = []
        self.fail = False

    def put(self, key, data, **options):
        if "/ig/receipts/" in key:
            import time

            from runtime.errors import ObjectStoreUnavailable

            time.sleep(0.3)  # the transaction's statements are done well before this
            with psycopg.connect(self.dsn) as conn:
                self.seen_before_put.append(conn.execute(
                    "SELECT count(*) FROM ig_receipts WHERE platform_run_id = %s", (self.run_id,)).fetchone()[0])
            if self.fail:
                raise ObjectStoreUnavailable("receipts bucket refused the write")
        return self.inner.put(key, data, **options)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_receipt_rows_commit_only_after_the_receipts_object_is_written(ig_settings, publisher, store, run_id,
                                                                       migrated_dsn, kafka_bootstrap, bus_topics):
    from fastapi.testclient import TestClient

    from runtime.ig.app import create_app
    from tests.runtime.ig.conftest import API_KEY

    slow = SlowReceiptsStore(store, migrated_dsn, run_id)
    app = create_app(ig_settings, publisher, receipts_store=slow, quarantine_store=store)
    events = [envelope(run_id, n) for n in range(10)]
    with TestClient(app, headers={"X-IG-Api-Key": API_KEY}) as c:
        slow.fail = True
        failed = push(c, {"events": events})
        assert failed.status_code == 503 and failed.json()["error"] == "IG_UNAVAILABLE"
        assert "receipts" in failed.json()["message"]
        assert receipts_of(migrated_dsn, run_id) == [] and admissions(migrated_dsn, run_id) == 0
        assert list(store.list(f"platform/{run_id}/ig/receipts/")) == []
        slow.fail = False
        retried = push(c, {"events": events}).json()
    assert retried["counts"] == {"ADMIT": 10}
    assert not any(r["receipt"]["republished"] for r in retried["results"])  # kept PUBLISHED: not sent again
    assert slow.seen_before_put == [0, 0]  # nothing of either request committed while its object was being written
    assert admissions(migrated_dsn, run_id) == 10 and len(receipts_of(migrated_dsn, run_id)) == 10
    assert len(run_records(kafka_bootstrap, [bus_topics["traffic_fraud"]], run_id, 10)) == 10
