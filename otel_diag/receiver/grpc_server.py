"""OTLP/gRPC ``Export`` methods on grpc.aio: authenticate and admit before reading a byte.

gRPC Python reads a unary call's whole message before its handler runs, so a server that
authenticates in the handler has already buffered every anonymous request (80 concurrent
24 MiB calls cost 3 GiB). Each ``Export`` is therefore registered as client-streaming: on
the wire a unary call is exactly that (one message, then half-close), but the handler decides
first, from the metadata, who is calling and whether there is room
(:class:`~otel_diag.receiver.admission.Admission`), and only then reads the message, within
``OTEL_DIAG_UPLOAD_TIMEOUT``. An unread message costs the connection's flow-control window.

:class:`OtlpExport` is signal-agnostic (``TraceService`` and ``LogsService`` share it), and
decoding is the ingest hop's (bytes in, so malformed input is INVALID_ARGUMENT, not
grpcio's INTERNAL). Oversized messages are refused by gRPC itself with RESOURCE_EXHAUSTED.
Retryable refusals carry a ``google.rpc.RetryInfo`` both as status details
(``grpc-status-details-bin``, read by the Collector) and as ``google.rpc.retryinfo-bin``
(read by the Python exporter).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from otel_diag.receiver.errors import IngestError, SlowUpload, TooLarge
from otel_diag.receiver.ingest import LOGS, PROTOBUF, Ingestor, IngestOutcome
from otel_diag.tenancy import Tenancy, Unauthenticated

logger = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
TRANSPORT = "grpc"
_EMPTY_RESPONSE = ExportTraceServiceResponse().SerializeToString()
_EMPTY_LOGS_RESPONSE = ExportLogsServiceResponse().SerializeToString()

ExportFn = Callable[[bytes, str | None], Awaitable[bytes]]
"""Store one request body for a tenant (None: trusted mode); returns the response bytes."""


def response_bytes(outcome: IngestOutcome) -> bytes:
    """The serialized ``ExportTraceServiceResponse`` (partial_success only when something was
    rejected or dropped)."""
    if not outcome.rejected and not outcome.error_message:
        return _EMPTY_RESPONSE
    return ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(
            rejected_spans=outcome.rejected, error_message=outcome.error_message
        )
    ).SerializeToString()


def retry_metadata(
    code: grpc.StatusCode, message: str, delay: float
) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata telling the client when to retry."""
    info = error_details_pb2.RetryInfo(
        retry_delay=Duration(seconds=int(delay), nanos=int((delay % 1) * 1e9))
    )
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message)
    status.details.add().Pack(info)
    return (
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", info.SerializeToString()),
    )


def _metadata(context: grpc.aio.ServicerContext, key: str) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v if isinstance(v, str) else v.decode("latin-1")
    return None


def trace_export(ingestor: Ingestor) -> ExportFn:
    """``TraceService/Export``: the ingest hop, answered with an ExportTraceServiceResponse."""

    async def export(body: bytes, tenant: str | None) -> bytes:
        outcome = await ingestor.process(body, fmt=PROTOBUF, transport=TRANSPORT, tenant=tenant)
        return response_bytes(outcome)

    return export


def logs_response_bytes(outcome: IngestOutcome) -> bytes:
    """The serialized ``ExportLogsServiceResponse`` (partial_success for dropped records)."""
    if not outcome.rejected and not outcome.error_message:
        return _EMPTY_LOGS_RESPONSE
    return ExportLogsServiceResponse(
        partial_success=ExportLogsPartialSuccess(
            rejected_log_records=outcome.rejected, error_message=outcome.error_message
        )
    ).SerializeToString()


def logs_export(ingestor: Ingestor) -> ExportFn:
    """``LogsService/Export``: exceptions reported as log records; the rest only counted."""

    async def export(body: bytes, tenant: str | None) -> bytes:
        outcome = await ingestor.process(
            body, fmt=PROTOBUF, transport=TRANSPORT, tenant=tenant, signal=LOGS
        )
        return logs_response_bytes(outcome)

    return export


def otlp_services(ingestor: Ingestor) -> dict[str, ExportFn]:
    """Every OTLP service ``serve`` answers on gRPC: traces and logs."""
    return {SERVICE: trace_export(ingestor), LOGS_SERVICE: logs_export(ingestor)}


class OtlpExport:
    """One OTLP ``Export`` method: authenticate, admit, read the message, store, answer."""

    def __init__(self, ingestor: Ingestor, tenancy: Tenancy, store: ExportFn) -> None:
        self.ingestor = ingestor
        self.tenancy = tenancy
        self.store = store

    async def handle(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> bytes:
        """The RPC (registered client-streaming: see the module docstring)."""
        try:
            tenant = self.tenancy.ingest_tenant(_metadata(context, "authorization"))
        except Unauthenticated as exc:
            self.ingestor.count(TRANSPORT, "unauthenticated")
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        failure: IngestError | None = None
        try:
            # The size is unknown until read: reserve the limit, keep the real size after.
            with await self.ingestor.admit(self.ingestor.max_request_bytes, tenant) as slot:
                body = await self._read(context)
                slot.resize(len(body))
                response = await self.store(body, tenant)
        except IngestError as exc:
            failure = exc
        if failure is not None:
            self.ingestor.count(TRANSPORT, failure.reason)
            code = getattr(grpc.StatusCode, failure.grpc_code)
            message = str(failure)
            if failure.retry_after is not None:
                await context.abort(
                    code,
                    message,
                    trailing_metadata=retry_metadata(code, message, failure.retry_after),
                )
            await context.abort(code, message)
        self.ingestor.count(TRANSPORT, "ok")
        return response

    async def _read(self, context: grpc.aio.ServicerContext) -> bytes:
        timeout = self.ingestor.settings.upload_timeout
        try:
            message = await asyncio.wait_for(context.read(), timeout)
        except TimeoutError:
            raise SlowUpload(f"request message not received within {timeout:g} s; retry") from None
        if not isinstance(message, bytes):  # EOF: gRPC refused an oversized message itself
            raise TooLarge(
                f"no request message (over the {self.ingestor.max_request_bytes}-byte limit?)"
            )
        return message


def otlp_handler(service: str, method: OtlpExport) -> grpc.GenericRpcHandler:
    """``service``/Export served by ``method``, with raw bytes in and out."""
    handler = grpc.stream_unary_rpc_method_handler(
        method.handle, request_deserializer=None, response_serializer=None
    )
    return grpc.method_handlers_generic_handler(service, {"Export": handler})


def build_grpc_server(
    ingestor: Ingestor,
    tenancy: Tenancy,
    host: str,
    port: int,
    services: Mapping[str, ExportFn] | None = None,
    *,
    max_connections: int = 1024,
    idle_timeout: float = 60.0,
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with the OTLP services (default: traces and logs) on ``host:port``; returns
    the real port. Every service shares the same authentication, admission and limits;
    connections are capped and closed when idle (see :mod:`otel_diag.server.connections`)."""
    limit = ingestor.max_request_bytes
    idle_ms = max(100, int(idle_timeout * 1000))
    server = grpc.aio.server(
        # Messages are read only once admitted, so a waiting RPC costs a task and a stream
        # window, not its body: this only caps the tasks.
        maximum_concurrent_rpcs=max(256, 4 * ingestor.max_inflight),
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.max_concurrent_streams", max(4, ingestor.max_inflight)),
            # Bandwidth-delay probing grows the flow-control window of streams we have not
            # started to read: 80 waiting calls then buffer ~5 MiB each (400 MiB). Without
            # it an unread stream holds its initial 64 KiB window; a message being read
            # still gets the window it needs.
            ("grpc.http2.bdp_probe", 0),
            ("grpc.max_allowed_incoming_connections", max_connections),
            ("grpc.max_connection_idle_ms", idle_ms),  # GOAWAY to a connection with no RPC
            ("grpc.server_handshake_timeout_ms", idle_ms),  # a connection that never speaks
            ("grpc.so_reuseport", 0),
        ],
    )
    for name, export in (services or otlp_services(ingestor)).items():
        server.add_generic_rpc_handlers(
            (otlp_handler(name, OtlpExport(ingestor, tenancy, export)),)
        )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"cannot bind OTLP/gRPC to {address}")
    return server, bound
