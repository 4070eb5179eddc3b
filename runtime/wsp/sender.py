"""The HTTP edge of WSP: push a batch to IG and classify the answer (ok / retryable / stop)."""

from __future__ import annotations

from typing import Any

import httpx

from runtime.bus.json_codec import loads
from runtime.contracts.canonical import compact_json
from runtime.errors import PlatformError


class RetryableSend(PlatformError):
    """A transient failure (connection, timeout, 5xx, 429): retry the same events."""

    code = "WSP_SEND_RETRYABLE"


class NonRetryableSend(PlatformError):
    """IG refused the request (4xx other than 429): WSP stops, fail closed."""

    code = "WSP_NONRETRYABLE"
    next_step = "fix the cause IG names (auth key, limits, envelope), then rerun WSP; event ids are stable"


_JSON = {"content-type": "application/json"}


class IgClient:
    """Pushes batches to IG's ingest path with the API key."""

    def __init__(self, base_url: str, ingest_path: str, header: str, api_key: str, *, timeout_s: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        self.url = base_url.rstrip("/") + ingest_path
        self._client = httpx.Client(headers={header: api_key}, timeout=timeout_s, transport=transport)

    def push(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The per-event results of one push; RetryableSend or NonRetryableSend otherwise."""
        try:
            # The bytes httpx's `json=` writes, at a quarter of its cost (orjson where it writes the same).
            response = self._client.post(self.url, content=compact_json({"events": events}), headers=_JSON)
        except httpx.TransportError as e:
            raise RetryableSend(f"IG unreachable at {self.url}: {type(e).__name__}: {e}") from e
        status = response.status_code
        if status == 200:
            try:
                results = loads(response.content).get("results")
            except (ValueError, AttributeError):
                results = None
            if not isinstance(results, list) or len(results) != len(events):
                raise RetryableSend(f"IG answered 200 without one result per event ({self.url})")
            return results
        detail = _detail(response)
        if status >= 500 or status == 429:
            raise RetryableSend(f"IG answered {status}: {detail}")
        raise NonRetryableSend(f"IG refused the push with {status}: {detail}", code=f"WSP_NONRETRYABLE_{status}")

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('error')}: {body.get('message', '')}".strip()
    except ValueError:
        return response.text[:200]
