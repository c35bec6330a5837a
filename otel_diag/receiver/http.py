"""OTLP/HTTP ``POST /v1/traces`` and ``/v1/logs``: protobuf or JSON, optionally gzip, on the API's port.

Authentication and admission come before the body is read; the body is then read in chunks
against the size limit (a ``Content-Length`` over it is refused before a byte is read) and
against a minimum rate, while holding an in-flight slot that counts its bytes, so memory
stays bounded and a slow upload (1 byte / 5 s) is cut within seconds instead of holding a
slot. The answer uses the request's encoding: an ``ExportTraceServiceResponse`` on success,
a ``google.rpc.Status`` on failure, ``Retry-After`` on 503, as the OTLP spec asks.
:func:`otlp_endpoint` is signal-agnostic: traces and logs share it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from otel_diag.receiver.admission import Slot
from otel_diag.receiver.errors import IngestError, SlowUpload, TooLarge, UnsupportedMediaType
from otel_diag.receiver.ingest import JSON, LOGS, PROTOBUF, TRACES, Ingestor, IngestOutcome
from otel_diag.tenancy import Tenancy, Unauthenticated

TRANSPORT = "http"
CONTENT_TYPES = {"application/x-protobuf": PROTOBUF, "application/json": JSON}
UPLOAD_GRACE_S = 2.0
"""Time a body may take before the minimum upload rate applies (connection ramp-up)."""

ProcessFn = Callable[[bytearray, str, str | None, str | None], Awaitable[Response]]
"""Store one body (body, format, content encoding, tenant or None); returns the 200 answer."""


def _media_type(request: Request) -> str | None:
    raw = request.headers.get("content-type", "")
    return CONTENT_TYPES.get(raw.split(";", 1)[0].strip().lower())


def _outcome_response(outcome: IngestOutcome, fmt: str, signal: str = TRACES) -> Response:
    message: Message
    if signal == LOGS:
        message = ExportLogsServiceResponse()
        if outcome.rejected or outcome.error_message:
            message.partial_success.CopyFrom(
                ExportLogsPartialSuccess(
                    rejected_log_records=outcome.rejected, error_message=outcome.error_message
                )
            )
    else:
        message = ExportTraceServiceResponse()
        if outcome.rejected or outcome.error_message:
            message.partial_success.CopyFrom(
                ExportTracePartialSuccess(
                    rejected_spans=outcome.rejected, error_message=outcome.error_message
                )
            )
    if fmt == JSON:
        return Response(
            json.dumps(json_format.MessageToDict(message)), media_type="application/json"
        )
    return Response(message.SerializeToString(), media_type="application/x-protobuf")


def _status_response(
    http_status: int, grpc_code: str, message: str, fmt: str | None, retry_after: float | None
) -> Response:
    status = status_pb2.Status(code=getattr(code_pb2, grpc_code, code_pb2.UNKNOWN), message=message)
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
    if fmt == PROTOBUF:
        return Response(
            status.SerializeToString(),
            status_code=http_status,
            media_type="application/x-protobuf",
            headers=headers,
        )
    return Response(
        json.dumps(json_format.MessageToDict(status)),
        status_code=http_status,
        media_type="application/json",
        headers=headers,
    )


async def _next_chunk(chunks: AsyncIterator[bytes], timeout: float) -> bytes | None:
    try:
        return await asyncio.wait_for(anext(chunks), max(0.0, timeout))
    except StopAsyncIteration:
        return None


async def read_body(
    request: Request, slot: Slot, limit: int, min_rate: float, timeout: float
) -> bytearray:
    """The whole body, or an :class:`IngestError`: over ``limit`` (413), or slower than
    ``min_rate`` bytes/s after :data:`UPLOAD_GRACE_S`, or longer than ``timeout`` (503)."""
    body = bytearray()
    started = time.monotonic()
    chunks = request.stream().__aiter__()
    while True:
        # By now, len(body) bytes must have come: the next chunk is due by this time.
        due = UPLOAD_GRACE_S + len(body) / min_rate if min_rate > 0 else timeout
        wait = min(due, timeout) - (time.monotonic() - started)
        try:
            chunk = await _next_chunk(chunks, wait)
        except TimeoutError:
            raise SlowUpload(
                f"request body arrived slower than {min_rate:g} bytes/s or not within "
                f"{timeout:g} s; retry"
            ) from None
        if chunk is None:
            break
        if len(body) + len(chunk) > limit:
            raise TooLarge(f"request body is over the {limit}-byte limit")
        body += chunk
        if len(body) > slot.nbytes:
            slot.grow(len(body) - slot.nbytes)
    slot.resize(len(body))
    return body


def otlp_endpoint(
    ingestor: Ingestor, tenancy: Tenancy, process: ProcessFn
) -> Callable[[Request], Awaitable[Response]]:
    """An OTLP/HTTP export route: authenticate, admit, read the body, store, answer."""
    settings = ingestor.settings

    async def export(request: Request) -> Response:
        fmt = _media_type(request)
        try:
            if fmt is None:
                raise UnsupportedMediaType(
                    "Content-Type must be application/x-protobuf or application/json"
                )
            try:
                tenant = tenancy.ingest_tenant(request.headers.get("authorization"))
            except Unauthenticated as exc:
                ingestor.count(TRANSPORT, "unauthenticated")
                return _status_response(401, "UNAUTHENTICATED", str(exc), fmt, None)
            limit = ingestor.max_request_bytes
            length = request.headers.get("content-length", "")
            declared = int(length) if length.isdigit() else 0
            if declared > limit:
                raise TooLarge(f"request body of {declared} bytes is over the {limit}-byte limit")
            encoding = request.headers.get("content-encoding", "").strip().lower() or None
            with await ingestor.admit(declared, tenant) as slot:
                body = await read_body(
                    request, slot, limit, settings.min_upload_rate, settings.upload_timeout
                )
                answer = await process(body, fmt, encoding, tenant)
        except IngestError as exc:
            ingestor.count(TRANSPORT, exc.reason)
            return _status_response(exc.http_status, exc.grpc_code, str(exc), fmt, exc.retry_after)
        ingestor.count(TRANSPORT, "ok")
        return answer

    return export


_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed request"},
    401: {"description": "Missing or unknown API key"},
    413: {"description": "Request over the size limit"},
    415: {"description": "Unsupported Content-Type or Content-Encoding"},
    503: {
        "description": "Overloaded, upload too slow, or database unavailable; retry "
        "after Retry-After"
    },
}


def otlp_router(ingestor: Ingestor, tenancy: Tenancy) -> APIRouter:
    """``/v1/traces`` and ``/v1/logs`` bound to one ingestor (same limits and tenancy)."""
    router = APIRouter()

    def store(signal: str) -> ProcessFn:
        async def process(
            body: bytearray, fmt: str, encoding: str | None, tenant: str | None
        ) -> Response:
            outcome = await ingestor.process(
                body, fmt=fmt, transport=TRANSPORT, encoding=encoding, tenant=tenant, signal=signal
            )
            return _outcome_response(outcome, fmt, signal)

        return process

    router.add_api_route(
        "/v1/traces",
        otlp_endpoint(ingestor, tenancy, store(TRACES)),
        methods=["POST"],
        tags=["otlp"],
        summary="OTLP/HTTP trace export (application/x-protobuf or application/json, gzip)",
        response_class=Response,
        responses={
            200: {"description": "Stored (partial_success lists rejected spans)"},
            **_RESPONSES,
        },
    )
    router.add_api_route(
        "/v1/logs",
        otlp_endpoint(ingestor, tenancy, store(LOGS)),
        methods=["POST"],
        tags=["otlp"],
        summary="OTLP/HTTP log export: exceptions become errors of their span, other records "
        "are counted (application/x-protobuf or application/json, gzip)",
        response_class=Response,
        responses={
            200: {
                "description": "Stored (partial_success lists exception records without "
                "trace context, dropped)"
            },
            **_RESPONSES,
        },
    )
    return router
