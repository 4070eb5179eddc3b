"""WSP's HTTP edge: the bytes it sends IG, and how it classes IG's answers."""

from __future__ import annotations

import json
import math

import httpx
import pytest

from runtime.wsp.sender import IgClient, NonRetryableSend, RetryableSend
from tests.support.events import envelope

RUN = "platform_20310101T000000Z"


def _client(answer: httpx.Response, sent: list[httpx.Request]) -> IgClient:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer

    return IgClient("http://ig.test", "/v1/ingest/push", "X-IG-Api-Key", "k" * 24, transport=httpx.MockTransport(handler))


def _ok(count: int) -> httpx.Response:
    return httpx.Response(200, json={"results": [{"index": i, "outcome": "ADMIT"} for i in range(count)]})


@pytest.mark.parametrize("events", [
    [envelope(RUN, n) for n in range(50)],
    [{**envelope(RUN, 1), "payload": {"text": "caf\u00e9 \u2603 \"quoted\"\n", "big": 2**70, "tiny": 1e-300, "neg": -0.0}}],
])
def test_a_push_sends_the_bytes_httpx_json_would_send(events):
    sent: list[httpx.Request] = []
    assert len(_client(_ok(len(events)), sent).push(events)) == len(events)
    expected = httpx.Request("POST", "http://ig.test/v1/ingest/push", json={"events": events})
    assert sent[0].content == expected.content
    assert sent[0].headers["content-type"] == "application/json"
    assert sent[0].headers["x-ig-api-key"] == "k" * 24


def test_a_non_finite_number_reaches_ig_as_nan_for_ig_to_refuse_by_name():
    sent: list[httpx.Request] = []
    refusal = httpx.Response(400, json={"error": "MALFORMED_JSON", "message": "NaN is not JSON"})
    with pytest.raises(NonRetryableSend) as e:
        _client(refusal, sent).push([{**envelope(RUN, 2), "payload": {"amount": math.nan}}])
    assert b'"amount":NaN' in sent[0].content
    assert e.value.code == "WSP_NONRETRYABLE_400" and "MALFORMED_JSON" in e.value.message


@pytest.mark.parametrize("answer", [
    httpx.Response(200, content=b"<html>not json</html>"),
    httpx.Response(200, content=b"[1, 2]"),
    httpx.Response(200, json={"results": [{"index": 0}]}),  # one result for two events
    httpx.Response(503, json={"error": "IG_UNAVAILABLE", "message": "db down"}),
    httpx.Response(429, content=b"slow down"),
])
def test_an_answer_without_one_result_per_event_or_a_5xx_is_retryable(answer):
    with pytest.raises(RetryableSend):
        _client(answer, []).push([envelope(RUN, 3), envelope(RUN, 4)])


def test_the_results_come_back_in_the_order_ig_gave_them():
    answer = httpx.Response(200, content=json.dumps({"results": [{"index": 1}, {"index": 0}]}).encode())
    assert [r["index"] for r in _client(answer, []).push([envelope(RUN, 5), envelope(RUN, 6)])] == [1, 0]
