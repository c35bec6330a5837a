"""OTLP/gRPC ingest with real clients on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.receiver.harness import Running
from tests.receiver.otlp import Span, agent_trace, to_protobuf


def _emit_failing_run(provider: TracerProvider, run_id: str) -> None:
    tracer = provider.get_tracer("grpc-test")
    try:
        with (
            tracer.start_as_current_span(
                "invoke_workflow trip", attributes={"otel_diag.run.id": run_id}
            ),
            tracer.start_as_current_span(
                "execute_tool search",
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
            ),
        ):
            raise ConnectionError("search API unreachable")
    except ConnectionError:
        pass


def _record_spans(run_id: str) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "py-grpc"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _emit_failing_run(provider, run_id)
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.mark.parametrize("compression", [None, grpc.Compression.Gzip], ids=["plain", "gzip"])
def test_python_grpc_exporter_spans_become_runs_steps_and_errors(
    serve: Callable[..., Running], compression: grpc.Compression | None
) -> None:
    srv = serve()
    exporter = OTLPSpanExporter(endpoint=srv.grpc_target, insecure=True, compression=compression)
    assert exporter.export(_record_spans("py-grpc-run")) == SpanExportResult.SUCCESS
    exporter.shutdown()
    runs = srv.http.get("/api/runs").json()["runs"]
    assert [(r["name"], r["status"], r["service_name"]) for r in runs] == [
        ("invoke_workflow trip", "failed", "py-grpc")
    ]
    errors = srv.http.get(f"/api/runs/{runs[0]['id']}/errors").json()["errors"]
    assert {e["error_type"] for e in errors} == {"ConnectionError"}
    assert srv.counts()["steps"] == 1


def test_resending_an_identical_request_adds_no_rows(serve: Callable[..., Running]) -> None:
    srv = serve()
    body = to_protobuf(agent_trace("resend")).SerializeToString()
    srv.raw_export(body)
    first = srv.counts()
    srv.raw_export(body)
    assert srv.counts() == first == {"runs": 1, "steps": 3, "errors": 2}


def test_spans_of_one_trace_in_several_requests_and_services_merge_into_one_run(
    serve: Callable[..., Running],
) -> None:
    srv = serve()
    root, agent, llm, tool = agent_trace("merged-run")
    srv.raw_export(to_protobuf([tool], {"service.name": "tools-svc"}).SerializeToString())
    srv.raw_export(to_protobuf([llm, agent], {"service.name": "agent-svc"}).SerializeToString())
    assert srv.counts()["runs"] == 1  # the tool's trace-id run, not yet named
    srv.raw_export(to_protobuf([root], {"service.name": "api-gw"}).SerializeToString())
    runs = srv.http.get("/api/runs").json()["runs"]
    assert len(runs) == 1
    run = runs[0]
    assert run["id"] == str(
        uuid.uuid5(uuid.UUID("6f1f3c2e-7d1a-5b8e-9a54-0c7d2e9b4a11"), "merged-run")
    )
    assert (run["service_name"], run["status"], run["llm_calls"], run["tool_calls"]) == (
        "api-gw",
        "failed",
        1,
        1,
    )
    assert run["error_count"] == 2


def test_rejected_spans_are_reported_in_partial_success(serve: Callable[..., Running]) -> None:
    srv = serve()
    spans = [Span("ok"), Span("bad", trace_id=b"\x01" * 7), Span("bad2", span_id=b"")]
    reply = ExportTraceServiceResponse.FromString(
        srv.raw_export(to_protobuf(spans).SerializeToString())
    )
    assert reply.partial_success.rejected_spans == 2
    assert "trace_id" in reply.partial_success.error_message
    assert srv.counts()["runs"] == 1


def test_bad_input_is_refused_and_the_server_stays_healthy(serve: Callable[..., Running]) -> None:
    srv = serve(max_request_bytes=256 * 1024)
    srv.raw_export(to_protobuf(agent_trace("before")).SerializeToString())
    before = srv.counts()
    valid = to_protobuf(agent_trace("x")).SerializeToString()
    cases = {
        b"\xff\xff\xff\xff\xff\xff": grpc.StatusCode.INVALID_ARGUMENT,
        valid[: len(valid) // 2]: grpc.StatusCode.INVALID_ARGUMENT,
        to_protobuf([Span("big", attributes={"blob": "x" * 400_000})]).SerializeToString(): (
            grpc.StatusCode.RESOURCE_EXHAUSTED
        ),
    }
    for body, code in cases.items():
        with pytest.raises(grpc.RpcError) as info:
            srv.raw_export(body)
        assert info.value.code() == code
        assert srv.healthy()
        assert srv.counts() == before
    absurd = Span("absurd", attributes={f"a{i}": i for i in range(10_000)})
    srv.raw_export(to_protobuf([absurd]).SerializeToString())
    assert srv.counts()["runs"] == before["runs"] + 1
    metrics = srv.http.get("/metrics").text
    assert 'otel_diag_ingest_requests_total{result="malformed",transport="grpc"} 2.0' in metrics
    assert "otel_diag_attributes_dropped_total 9872.0" in metrics


def test_overload_is_refused_with_unavailable_and_retry_info(serve: Callable[..., Running]) -> None:
    from google.rpc import error_details_pb2, status_pb2

    srv = serve()
    srv.server.ingestor.admission.max_requests = 0  # every request finds the receiver full
    with pytest.raises(grpc.RpcError) as info:
        srv.raw_export(to_protobuf(agent_trace("busy")).SerializeToString())
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    trailers = dict(info.value.trailing_metadata())  # type: ignore[attr-defined]
    retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert retry.retry_delay.seconds >= 1
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.details[0].Is(error_details_pb2.RetryInfo.DESCRIPTOR)
    assert srv.counts()["runs"] == 0
