"""IG HTTP boundary: auth on every route, health AMBER -> GREEN, 503 when Postgres or the bus is down."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.substrate.processes import free_port
from runtime.ig.app import create_app, parse_json, parse_json_strictly
from runtime.ig.domain import RequestRejected
from runtime.ig.settings import IgConfigInvalid, IgSettings, check_api_key, load_ig_settings
from tests.runtime.ig.conftest import API_KEY
from tests.support.events import envelope
from tests.support.kafka_bus import RealKafkaPublisher

ROUTES = [("GET", "/v1/ops/health"), ("POST", "/v1/ingest/push"), ("GET", "/openapi.json"), ("GET", "/nope"),
          ("GET", "/docs")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("headers", [{}, {"X-IG-Api-Key": "wrong-key-0123456789"}, {"X-IG-Api-Key": ""},
                                     {"x-ig-api-key": API_KEY + "x"}])
def test_every_route_is_401_without_the_right_key(ig_settings, publisher, store, method, path, headers):
    app = create_app(ig_settings, publisher, receipts_store=store, quarantine_store=store)
    with TestClient(app) as c:
        r = c.request(method, path, headers=headers, json={"events": []})
    assert r.status_code == 401
    assert r.json() == {"error": "UNAUTHORIZED"}


def test_health_is_amber_before_traffic_and_green_after_a_publish(client, run_id):
    before = client.get("/v1/ops/health")
    assert before.status_code == 200
    assert before.json()["state"] == "AMBER" and "BUS_HEALTH_UNKNOWN" in before.json()["reasons"]
    client.post("/v1/ingest/push", json=envelope(run_id, 1))
    after = client.get("/v1/ops/health").json()
    assert after["state"] == "GREEN" and after["platform_run_id"] == run_id


def test_openapi_is_served_with_the_key(client):
    spec = client.get("/openapi.json").json()
    assert "/v1/ingest/push" in spec["paths"] and "/v1/ops/health" in spec["paths"]


def _admitted(dsn: str, run_id: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM ig_admissions WHERE platform_run_id = %s", (run_id,)).fetchone()[0]


def test_postgres_down_is_503_and_nothing_published(ig_settings: IgSettings, publisher, store, run_id, migrated_dsn):
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    settings = IgSettings(ig_settings.base, run_id, API_KEY, dead, "127.0.0.1", 0)
    app = create_app(settings, publisher, receipts_store=store, quarantine_store=store)
    with TestClient(app, headers={"X-IG-Api-Key": API_KEY}) as c:
        r = c.post("/v1/ingest/push", json={"events": [envelope(run_id, n) for n in range(3)]})
        health = c.get("/v1/ops/health").json()
    assert r.status_code == 503 and r.json()["error"] == "IG_UNAVAILABLE"
    assert health["state"] == "RED" and "DB_UNAVAILABLE" in health["reasons"]
    assert _admitted(migrated_dsn, run_id) == 0


def test_bus_down_is_503_and_nothing_admitted(ig_settings: IgSettings, store, run_id, migrated_dsn):
    dead_bus = RealKafkaPublisher(f"127.0.0.1:{free_port()}", delivery_timeout_s=2)
    app = create_app(ig_settings, dead_bus, receipts_store=store, quarantine_store=store)
    with TestClient(app, headers={"X-IG-Api-Key": API_KEY}) as c:
        r = c.post("/v1/ingest/push", json={"events": [envelope(run_id, n) for n in range(3)]})
    assert r.status_code == 503 and "bus" in r.json()["message"]
    assert _admitted(migrated_dsn, run_id) == 0
    assert list(store.list(f"platform/{run_id}/")) == []


def test_receipts_and_quarantine_indexes_refuse_update_and_delete(client, run_id, migrated_dsn):
    bad = envelope(run_id, 2)
    bad.pop("event_id")
    client.post("/v1/ingest/push", json={"events": [envelope(run_id, 1), bad]})
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        for sql in ("UPDATE ig_receipts SET outcome = 'DUPLICATE' WHERE platform_run_id = %s",
                    "DELETE FROM ig_receipts WHERE platform_run_id = %s",
                    "UPDATE ig_quarantine SET reason = 'x' WHERE platform_run_id = %s",
                    "DELETE FROM ig_quarantine WHERE platform_run_id = %s"):
            with pytest.raises(psycopg.errors.RaiseException, match="APPEND_ONLY_VIOLATION"):
                conn.execute(sql, (run_id,))
        assert conn.execute("SELECT count(*) FROM ig_receipts WHERE platform_run_id = %s", (run_id,)).fetchone()[0] == 2


@pytest.mark.parametrize("key", [None, "", "changeme", "short", "<set-me>"])
def test_placeholder_or_missing_api_key_is_refused(key):
    with pytest.raises(IgConfigInvalid):
        check_api_key(key, "test")


def test_settings_need_a_run_pin_and_a_dsn(moto_endpoint):
    with pytest.raises(IgConfigInvalid, match="REQUIRED_PLATFORM_RUN_ID"):
        load_ig_settings({"FP_ENV": "local_parity", "FP_IG_API_KEY": API_KEY, "FP_DB_DSN": "postgresql://x"})
    with pytest.raises(IgConfigInvalid, match="FP_DB_DSN"):
        load_ig_settings({"FP_ENV": "local_parity", "FP_IG_API_KEY": API_KEY,
                          "REQUIRED_PLATFORM_RUN_ID": "platform_20260101T000000Z"})


def test_api_key_is_read_from_ssm(moto_endpoint, unique_name):
    import boto3

    env = {"FP_ENV": "local_parity", "FP_OBJECT_STORE_ENDPOINT": moto_endpoint, "FP_DB_DSN": "postgresql://x",
           "REQUIRED_PLATFORM_RUN_ID": "platform_20260101T000000Z"}
    ssm = boto3.client("ssm", endpoint_url=moto_endpoint, region_name="us-east-1")
    from runtime.settings import load_settings

    path = load_settings(env).registry.text("SSM_IG_API_KEY_PATH")
    ssm.put_parameter(Name=path, Value=f"ssm-key-{unique_name}-0123456789", Type="SecureString", Overwrite=True)
    settings = load_ig_settings(env, ssm_client=ssm)
    assert settings.api_key == f"ssm-key-{unique_name}-0123456789"
    assert "ssm-key" not in repr(settings)


# -- the push body's parser: orjson for bodies it writes back byte for byte, the strict parser else --

_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12)


def _outcome(body: bytes, parse: Callable[[bytes], Any]) -> tuple[str, str]:
    try:
        return "ok", json.dumps(parse(body))  # the text tells 1 from 1.0 and 0.0 from -0.0
    except RequestRejected as e:
        return "refused", e.code


def _bodies(document: Any) -> list[bytes]:
    return [json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode(),
            json.dumps(document, ensure_ascii=True).encode(), _compact(document)]


def _compact(document: Any) -> bytes:
    try:
        return orjson.dumps(document)
    except TypeError:  # an integer past 64 bits
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


@settings(max_examples=400, deadline=None)
@given(_JSON_VALUES)
def test_push_bodies_parse_to_what_the_strict_parser_returns(document):
    for body in _bodies(document):
        assert _outcome(body, parse_json) == _outcome(body, parse_json_strictly), body


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=4), _JSON_VALUES, min_size=1, max_size=4), st.data())
def test_a_key_twice_in_a_compact_body_is_refused_as_the_strict_parser_refuses_it(document, data):
    key = data.draw(st.sampled_from(sorted(document)))
    again = _compact({key: data.draw(_JSON_VALUES)})[1:-1]
    body = _compact(document)[:-1] + b"," + again + b"}"
    assert _outcome(body, parse_json) == _outcome(body, parse_json_strictly) == ("refused", "DUPLICATE_JSON_KEY")


@pytest.mark.parametrize("body", [b'{"a":1e400}', b'{"a":NaN}', b'[Infinity]', b'{"a":1,"a":1}', b'"\\ud800"',
                                  b"[123456789012345678901234567890]", b"[-0]", b"[1E5]", b"\xef\xbb\xbf{}", b"[1,]",
                                  b"[" * 2000 + b"]" * 2000, b'{"a":"\xff"}'])
def test_hostile_and_unusual_push_bodies_parse_as_the_strict_parser_parses_them(body):
    assert _outcome(body, parse_json) == _outcome(body, parse_json_strictly)
