"""OTLP logs on both transports: exceptions become errors of their span, the rest is counted.

The clients are the Python SDK's own OTLP log exporters (gRPC and HTTP), fed by the SDK's
``LoggingHandler`` while a real span is active, against a real ``serve`` on loopback.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.logs_sdk import as_request, sdk_logger
from tests.receiver.harness import Running

LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
PB = {"content-type": "application/x-protobuf"}


def failing_tool(run_id: str):
    """(spans, log records): a tool raises, logs the exception and lets it escape."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("logs-test")
    with sdk_logger("log-svc") as (logger, logs):
        with tracer.start_as_current_span("run", attributes={"otel_diag.run.id": run_id}):
            try:
                with tracer.start_as_current_span(
                    "execute_tool quote",
                    attributes={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": "quote",
                    },
                ):
                    try:
                        raise TimeoutError("pricing service timed out after 30 s")
                    except TimeoutError:
                        logger.exception("quote failed")
                        raise
            except TimeoutError:
                pass
            logger.warning("run finished late")  # a plain record: counted, not stored
        records = logs.get_finished_logs()
    return list(spans.get_finished_spans()), records


def errors_of(srv: Running, run_ref: str, **headers: str) -> list[dict]:
    reply = srv.http.get(f"/api/runs/{run_ref}/errors", headers=headers)
    assert reply.status_code == 200, reply.text
    return list(reply.json()["errors"])


def trace_of(records) -> str:
    """Without its spans, a run is known by its trace id (only spans name the run)."""
    return f"{records[0].log_record.trace_id:032x}"


def test_python_grpc_log_exporter_exceptions_become_errors_of_their_span(
    serve: Callable[..., Running],
) -> None:
    srv = serve()
    _, records = failing_tool("grpc-logs")

    exporter = GrpcLogs(endpoint=srv.grpc_target, insecure=True)
    assert exporter.export(records) == LogRecordExportResult.SUCCESS
    exporter.shutdown()

    (error,) = errors_of(srv, trace_of(records))
    assert (error["error_type"], error["recorded_as"]) == ("TimeoutError", "log")
    assert error["error_category"] == "timeout" and "Traceback" in error["stack_trace"]
    metrics = srv.http.get("/metrics").text
    assert 'otel_diag_log_records_received_total{kind="exception"} 1.0' in metrics
    assert 'otel_diag_log_records_received_total{kind="other"} 1.0' in metrics


@pytest.mark.parametrize("logs_first", [True, False], ids=["logs-first", "spans-first"])
def test_a_logged_exception_and_its_span_event_are_one_failure_over_http(
    serve: Callable[..., Running], logs_first: bool
) -> None:
    srv = serve()
    spans, records = failing_tool("http-logs")
    send_logs = HttpLogs(endpoint=f"{srv.http_url}/v1/logs")
    traces = OTLPSpanExporter(endpoint=srv.grpc_target, insecure=True)

    for send in [lambda: send_logs.export(records), lambda: traces.export(spans)][
        :: 1 if logs_first else -1
    ]:
        assert send().name == "SUCCESS"
    send_logs.shutdown()
    traces.shutdown()

    (error,) = errors_of(srv, "http-logs")
    assert (error["step_name"], error["error_type"], error["recorded_as"]) == (
        "quote",
        "TimeoutError",
        "event",
    )
    assert error["propagated_to"] is None  # the run span did not record it: it was caught


def test_an_exception_without_trace_context_is_dropped_and_reported(
    serve: Callable[..., Running],
) -> None:
    srv = serve()
    with sdk_logger() as (logger, memory):
        try:
            raise KeyError("no span around me")
        except KeyError:
            logger.exception("outside any span")
    body = as_request(memory).SerializeToString()

    reply = ExportLogsServiceResponse.FromString(
        grpc.insecure_channel(srv.grpc_target).unary_unary(LOGS)(body, timeout=10)
    )
    over_http = srv.http.post(
        "/v1/logs", content=gzip.compress(body), headers=PB | {"content-encoding": "gzip"}
    )

    assert reply.partial_success.rejected_log_records == 1
    assert "without a trace and span id" in reply.partial_success.error_message
    assert over_http.status_code == 200
    http_reply = ExportLogsServiceResponse.FromString(over_http.content)
    assert http_reply.partial_success.rejected_log_records == 1
    assert srv.http.get("/api/runs").json()["runs"] == []  # never a run of its own
    assert (
        'otel_diag_log_records_received_total{kind="unlinked"} 2.0' in srv.http.get("/metrics").text
    )


def test_otlp_json_logs_are_stored_and_answered_in_json(serve: Callable[..., Running]) -> None:
    srv = serve()
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    document = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "attributes": [
                                    {"key": "exception.type", "value": {"stringValue": "E"}},
                                    {"key": "exception.message", "value": {"stringValue": "m"}},
                                ],
                            }
                        ]
                    }
                ]
            }
        ]
    }

    reply = srv.http.post(
        "/v1/logs", content=json.dumps(document), headers={"content-type": "application/json"}
    )

    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    (error,) = errors_of(srv, trace_id)
    assert (error["span_id"], error["error_type"]) == (span_id, "E")


def test_malformed_oversized_and_unsupported_log_requests_get_the_trace_answers(
    serve: Callable[..., Running],
) -> None:
    srv = serve(max_request_bytes=1024)

    malformed = srv.http.post("/v1/logs", content=b"\xff\xff\xff", headers=PB)
    too_large = srv.http.post("/v1/logs", content=b"x" * 4096, headers=PB)
    unsupported = srv.http.post("/v1/logs", content=b"{}", headers={"content-type": "text/plain"})
    with pytest.raises(grpc.RpcError) as info:
        grpc.insecure_channel(srv.grpc_target).unary_unary(LOGS)(b"\xff\xff\xff", timeout=10)

    assert (malformed.status_code, too_large.status_code, unsupported.status_code) == (
        400,
        413,
        415,
    )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert srv.healthy()


def test_in_key_mode_logs_need_a_key_and_land_in_its_tenant(
    serve: Callable[..., Running],
) -> None:
    srv = serve(api_keys="acme:k-acme")
    _, records = failing_tool("keyed-logs")

    anonymous = GrpcLogs(endpoint=srv.grpc_target, insecure=True)
    keyed = GrpcLogs(
        endpoint=srv.grpc_target, insecure=True, headers={"authorization": "Bearer k-acme"}
    )

    assert anonymous.export(records) == LogRecordExportResult.FAILURE
    assert keyed.export(records) == LogRecordExportResult.SUCCESS
    anonymous.shutdown()
    keyed.shutdown()
    errors = errors_of(srv, trace_of(records), authorization="Bearer k-acme")
    assert [e["recorded_as"] for e in errors] == ["log"]
