"""IG over HTTP (FastAPI): health, push, OpenAPI - every route behind the API key.

`create_app(settings, publisher)` builds the app; nothing connects at import time. The key is
checked by a small ASGI middleware in constant time before any route (or the OpenAPI document)
runs, so an unauthenticated caller learns nothing but 401. The push body is refused by its
Content-Length when it is too big, and otherwise read chunk by chunk and abandoned at the limit,
so an oversized body never sits in memory.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from runtime.bus.port import Publisher
from runtime.contracts.canonical import orjson_writes_as_json
from runtime.contracts.schemas import load_schema
from runtime.errors import PlatformError
from runtime.ig.domain import EventValidator, Limits, RequestRejected, check_storable, split_request
from runtime.ig.receipts import BatchWriter
from runtime.ig.service import GateUnavailable, IngestService, status_of
from runtime.ig.settings import IgSettings
from runtime.ig.store import AdmissionStore
from runtime.store.port import ObjectStore

log = logging.getLogger("runtime.ig")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class PushResponse(JSONResponse):
    """JSONResponse with the same bytes, written by orjson when it writes them (runtime.contracts.canonical):
    the results of a batch of 500 are ~500 receipts, a few ms of json.dumps per push."""

    def render(self, content: Any) -> bytes:
        """What JSONResponse.render gives (no NaN or Infinity is ever orjson's to write: they fail the check)."""
        if orjson_writes_as_json(content):
            try:
                return orjson.dumps(content)
            except TypeError:
                pass
        return super().render(content)


def error_body(code: str, message: str, next_step: str = "") -> dict[str, Any]:
    """The one error shape of every IG answer."""
    body: dict[str, Any] = {"error": code, "message": message}
    if next_step:
        body["next_step"] = next_step
    return body


class ApiKeyMiddleware:
    """401 {"error":"UNAUTHORIZED"} for any request without the right key, on every path."""

    def __init__(self, app: ASGIApp, *, header: str, key: str):
        self.app = app
        self.header = header.lower().encode("latin-1")
        self.key = key.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", []):
            if name == self.header:
                given = value
                break
        if not hmac.compare_digest(given, self.key):
            response = JSONResponse({"error": "UNAUTHORIZED"}, status_code=401)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _request_schema() -> dict[str, Any]:
    envelope = {k: v for k, v in load_schema("events/envelope.schema.json").items() if k not in ("$schema", "$id")}
    return {
        "required": True,
        "content": {"application/json": {"schema": {"oneOf": [
            envelope,
            {"type": "object", "additionalProperties": False, "required": ["events"],
             "properties": {"events": {"type": "array", "items": envelope, "minItems": 1}}},
        ]}}},
    }


_ERROR = {"description": "error", "content": {"application/json": {"schema": {
    "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}}}}


def create_app(settings: IgSettings, publisher: Publisher, *, receipts_store: ObjectStore | None = None,
               quarantine_store: ObjectStore | None = None, store: AdmissionStore | None = None) -> FastAPI:
    """The IG application for one pinned run; the publisher is injected (any bus adapter)."""
    reg = settings.registry
    limits = Limits.from_registry(reg)
    admission_store = store or AdmissionStore(settings.db_dsn)
    writer = BatchWriter(reg, settings.platform_run_id,
                         receipts_store or settings.base.bucket("S3_EVIDENCE_BUCKET"),
                         quarantine_store or settings.base.bucket("S3_QUARANTINE_BUCKET"))
    service = IngestService(EventValidator(reg, settings.platform_run_id, limits), admission_store, publisher, writer)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        admission_store.open()
        try:
            yield
        finally:
            admission_store.close()
            publisher.close()

    app = FastAPI(title="Ingestion Gate", version="1", lifespan=lifespan,
                  description="Admits canonical envelopes for one pinned platform run; every route needs the API key.",
                  docs_url=None, redoc_url=None)
    app.state.service = service
    app.state.limits = limits

    @app.get(reg.text("IG_HEALTHCHECK_PATH"), responses={401: _ERROR})
    def health() -> dict[str, Any]:
        """AMBER before the bus has acknowledged a publish, GREEN after; RED when PostgreSQL or the receipts
        store is down, AMBER (at least) when only the quarantine store is."""
        h = service.health
        reasons = list(h.reasons)
        state = h.state
        try:
            admission_store.ping()
            db = "ok"
        except PlatformError:
            db, state = "unavailable", "RED"
            reasons.append("DB_UNAVAILABLE")
        stores = writer.probe()
        for reason, problem in stores.items():
            if problem:
                reasons.append(reason)
                if reason == "RECEIPTS_STORE_UNAVAILABLE":
                    state = "RED"
                elif state == "GREEN":
                    state = "AMBER"
        return {"state": state, "reasons": reasons, "platform_run_id": settings.platform_run_id, "db": db,
                "object_store": {k: v or "ok" for k, v in stores.items()},
                "admitted_since_start": h.admitted, "last_publish_utc": h.last_publish_utc}

    @app.post(reg.text("IG_INGEST_PATH"), openapi_extra={"requestBody": _request_schema()},
              responses={400: _ERROR, 401: _ERROR, 413: _ERROR, 422: _ERROR, 503: _ERROR})
    async def push(request: Request) -> JSONResponse:
        """One envelope or {"events": [...]}; one result (with its receipt) per event, in order."""
        try:
            check_json_media_type(request.headers.get("content-type"))
            body = await _read_bounded(request, limits.max_body_bytes)
            document = parse_json(body)
            check_storable(body, document)
            events = split_request(document, limits)
            results = await run_in_threadpool(service.ingest, events, measure_sizes=len(body) > limits.max_event_bytes)
        except RequestRejected as e:
            return JSONResponse(error_body(e.code, e.message, e.next_step), status_code=e.status)
        except GateUnavailable as e:
            log.warning("IG 503: %s", e.message)
            return JSONResponse(error_body(e.code, e.message, e.next_step), status_code=503)
        counts = status_of(results)
        return PushResponse({"platform_run_id": settings.platform_run_id, "counts": counts, "results": results})

    app.add_middleware(ApiKeyMiddleware, header=reg.text("IG_AUTH_HEADER_NAME"), key=settings.api_key)
    return app


def check_json_media_type(content_type: str | None) -> None:
    """415 UNSUPPORTED_MEDIA_TYPE unless the body is declared JSON (application/json or a +json type)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    raise RequestRejected(415, "UNSUPPORTED_MEDIA_TYPE",
                          f"Content-Type {content_type or '(none)'!r:.80} is not JSON; send Content-Type: application/json",
                          next_step="send the body as JSON with Content-Type: application/json; nothing was admitted")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        names = [k for k, _ in pairs]
        repeated = next(k for i, k in enumerate(names) if k in names[:i])
        raise RequestRejected(400, "DUPLICATE_JSON_KEY", f"the body repeats the key {repeated!r:.80} in one object",
                              next_step="send each key once per object; nothing of this request was admitted")
    return obj


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no float overflow, no key twice in an object (400 DUPLICATE_JSON_KEY);
    anything unparsable is 400 MALFORMED_JSON.

    A compact body as orjson writes it (what httpx and WSP send) is parsed by orjson: when
    writing the parsed document again gives the body's own bytes, no key was dropped, no number
    was rounded or widened and no string changed, so it is exactly what the strict parser below
    returns, at under half its cost. Any other body takes the strict parser, which names its fault."""
    fast = _parsed_as_written(body)
    return fast if fast is not _NOT_PARSED else parse_json_strictly(body)


def parse_json_strictly(body: bytes) -> Any:
    """`parse_json` by the standard parser alone, whatever the body's form."""
    try:
        return json.loads(body, parse_float=_finite, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise RequestRejected(400, "MALFORMED_JSON", f"the body is not JSON: {str(e)[:200]}") from None


_NOT_PARSED = object()


def _parsed_as_written(body: bytes) -> Any:
    """The document, when orjson parses `body` and writes it back byte for byte; else _NOT_PARSED."""
    try:
        document = orjson.loads(body)
        again = orjson.dumps(document)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return _NOT_PARSED
    return document if again == body else _NOT_PARSED


async def _read_bounded(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it is known to pass `limit` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise RequestRejected(413, "BODY_TOO_LARGE", f"Content-Length {declared} exceeds IG_MAX_BODY_BYTES={limit}")
        except ValueError:
            raise RequestRejected(400, "BAD_CONTENT_LENGTH", "Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestRejected(413, "BODY_TOO_LARGE", f"the body passed IG_MAX_BODY_BYTES={limit} while streaming")
        chunks.append(chunk)
    return b"".join(chunks)
