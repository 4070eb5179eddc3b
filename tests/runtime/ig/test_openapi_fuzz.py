"""Schemathesis against IG's served OpenAPI document: generated requests never cause a server error.

The spec is fetched from the served app (with the key); every case is sent to a real uvicorn with
the key, so generated bodies reach validation, dedupe and the bus. Example count is bounded.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from controller.substrate.processes import free_port
from runtime.ig.app import create_app
from tests.runtime.ig.conftest import API_KEY
from tests.support.ig_server import ThreadServer

MAX_EXAMPLES = 30


def test_generated_requests_never_cause_a_server_error(ig_settings, publisher, store):
    app = create_app(ig_settings, publisher, receipts_store=store, quarantine_store=store)
    with ThreadServer(app, free_port()) as server:
        spec = httpx.get(f"{server.url}/openapi.json", headers={"X-IG-Api-Key": API_KEY}).json()
        schema = schemathesis.openapi.from_dict(spec)
        failures: list[str] = []
        statuses: list[int] = []
        operations = [op.ok() for op in schema.get_all_operations()]
        assert {op.path for op in operations} == {"/v1/ops/health", "/v1/ingest/push"}
        for operation in operations:
            modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if operation.method.upper() == "POST" else [])
            for mode in modes:
                _fuzz(operation, server.url, failures, statuses, mode)
    assert failures == []
    assert len(statuses) >= MAX_EXAMPLES  # the cases were really sent
    assert 200 in statuses and set(statuses) & {400, 422}  # both valid and refused bodies were generated


def _fuzz(operation, base_url: str, failures: list[str], statuses: list[int], mode: GenerationMode) -> None:
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(mode))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers={"X-IG-Api-Key": API_KEY}, timeout=30)
        statuses.append(response.status_code)
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except Exception as e:
            failures.append(f"{operation.method} {operation.path}: {response.status_code} {str(e)[:300]}")

    check()


@pytest.mark.parametrize("path", ["/openapi.json"])
def test_openapi_document_declares_the_error_answers(client, path):
    spec = client.get(path).json()
    push = spec["paths"]["/v1/ingest/push"]["post"]
    assert {"401", "413", "422", "503"} <= set(push["responses"])
    assert "requestBody" in push
