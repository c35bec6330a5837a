"""OTLP/gRPC ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` on grpc.aio.

The method is registered as a generic handler that receives raw bytes: grpcio's default
deserializer turns bytes it cannot parse into INTERNAL, while OTLP wants INVALID_ARGUMENT,
so decoding is ours (inside the ingest hop). Oversized messages are refused by gRPC itself
with RESOURCE_EXHAUSTED (``grpc.max_receive_message_length``). Retryable refusals carry a
``google.rpc.RetryInfo`` both as status details (``grpc-status-details-bin``, read by the
Collector) and as ``google.rpc.retryinfo-bin`` (read by the Python exporter).
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from otel_diag.receiver.errors import IngestError
from otel_diag.receiver.ingest import PROTOBUF, Ingestor, IngestOutcome
from otel_diag.server.tenancy import Tenancy, Unauthenticated

logger = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
TRANSPORT = "grpc"
_EMPTY_RESPONSE = ExportTraceServiceResponse().SerializeToString()


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


class TraceServiceHandler:
    """The ``Export`` behaviour: authenticate, admit, ingest, answer."""

    def __init__(self, ingestor: Ingestor, tenancy: Tenancy) -> None:
        self.ingestor = ingestor
        self.tenancy = tenancy

    async def export(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            tenant = self.tenancy.ingest_tenant(_metadata(context, "authorization"))
        except Unauthenticated as exc:
            self.ingestor.count(TRANSPORT, "unauthenticated")
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        failure: IngestError | None = None
        try:
            with self.ingestor.admit(len(request)):
                outcome = await self.ingestor.process(
                    request, fmt=PROTOBUF, transport=TRANSPORT, tenant=tenant
                )
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
        return response_bytes(outcome)

    def generic_handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Export": grpc.unary_unary_rpc_method_handler(
                    self.export, request_deserializer=None, response_serializer=None
                )
            },
        )


def build_grpc_server(
    ingestor: Ingestor, tenancy: Tenancy, host: str, port: int
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with the trace service bound to ``host:port``; returns the real port."""
    limit = ingestor.max_request_bytes
    server = grpc.aio.server(
        # gRPC reads a whole message (up to the receive limit) before our admission check
        # runs: this caps how many can be held at once, a hard backstop for memory.
        maximum_concurrent_rpcs=4 * max(4, ingestor.max_inflight),
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.max_concurrent_streams", max(4, ingestor.max_inflight)),
            ("grpc.so_reuseport", 0),
        ],
    )
    server.add_generic_rpc_handlers((TraceServiceHandler(ingestor, tenancy).generic_handler(),))
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"cannot bind OTLP/gRPC to {address}")
    return server, bound
