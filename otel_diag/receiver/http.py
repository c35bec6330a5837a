"""OTLP/HTTP ``POST /v1/traces``: protobuf or JSON, optionally gzip, on the API's port.

The body is read in chunks against the limit (a ``Content-Length`` over it is refused before
a byte is read) while holding an in-flight slot, so memory stays bounded. The answer uses
the request's encoding: an ``ExportTraceServiceResponse`` on success, a ``google.rpc.Status``
on failure, ``Retry-After`` on 503, as the OTLP spec asks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from otel_diag.receiver.errors import IngestError, Overloaded, TooLarge, UnsupportedMediaType
from otel_diag.receiver.ingest import JSON, PROTOBUF, Ingestor, IngestOutcome
from otel_diag.server.tenancy import Tenancy, Unauthenticated

TRANSPORT = "http"
CONTENT_TYPES = {"application/x-protobuf": PROTOBUF, "application/json": JSON}


def _media_type(request: Request) -> str | None:
    raw = request.headers.get("content-type", "")
    return CONTENT_TYPES.get(raw.split(";", 1)[0].strip().lower())


def _outcome_response(outcome: IngestOutcome, fmt: str) -> Response:
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


BODY_READ_TIMEOUT_S = 30


async def _read_body(request: Request, limit: int, slot_add: Callable[[int], None]) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise TooLarge(f"request body of {length} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"request body is over the {limit}-byte limit")
        chunks.append(chunk)
        slot_add(len(chunk))
    return b"".join(chunks)


def otlp_router(ingestor: Ingestor, tenancy: Tenancy) -> APIRouter:
    """The ``/v1/traces`` route bound to one ingestor."""
    router = APIRouter()

    @router.post(
        "/v1/traces",
        tags=["otlp"],
        summary="OTLP/HTTP trace export (application/x-protobuf or application/json, gzip)",
        response_class=Response,
        responses={
            200: {"description": "Stored (partial_success lists rejected spans)"},
            400: {"description": "Malformed request"},
            401: {"description": "Missing or unknown API key"},
            413: {"description": "Request over the size limit"},
            415: {"description": "Unsupported Content-Type or Content-Encoding"},
            503: {"description": "Overloaded or database unavailable; retry after Retry-After"},
        },
    )
    async def export_traces(request: Request) -> Response:
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
            encoding = request.headers.get("content-encoding", "").strip().lower() or None
            with ingestor.admit() as slot:
                try:  # a stalled upload must not hold an ingest slot forever
                    body = await asyncio.wait_for(
                        _read_body(request, ingestor.max_request_bytes, slot.add_bytes),
                        BODY_READ_TIMEOUT_S,
                    )
                except TimeoutError:
                    raise Overloaded(
                        f"request body not received within {BODY_READ_TIMEOUT_S} s; retry"
                    ) from None
                outcome = await ingestor.process(
                    body, fmt=fmt, transport=TRANSPORT, encoding=encoding, tenant=tenant
                )
        except IngestError as exc:
            ingestor.count(TRANSPORT, exc.reason)
            return _status_response(exc.http_status, exc.grpc_code, str(exc), fmt, exc.retry_after)
        ingestor.count(TRANSPORT, "ok")
        return _outcome_response(outcome, fmt)

    return router
