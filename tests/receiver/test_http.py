"""OTLP/HTTP ``POST /v1/traces``: protobuf, JSON, gzip, limits and bad input."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable

from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.receiver.harness import Running
from tests.receiver.otlp import Span, agent_trace, to_json, to_protobuf
from tests.receiver.test_grpc import _record_spans

PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}


def test_python_http_protobuf_exporter_spans_are_stored(serve: Callable[..., Running]) -> None:
    srv = serve()
    for compression in (Compression.NoCompression, Compression.Gzip):
        exporter = OTLPSpanExporter(endpoint=f"{srv.http_url}/v1/traces", compression=compression)
        assert (
            exporter.export(_record_spans(f"py-http-{compression.value}"))
            == SpanExportResult.SUCCESS
        )
        exporter.shutdown()
    runs = srv.http.get("/api/runs").json()["runs"]
    assert sorted(r["status"] for r in runs) == ["failed", "failed"]
    # one failure per run: the workflow span only re-recorded the tool's exception
    assert srv.counts() == {"runs": 2, "steps": 2, "errors": 2}


def test_hand_built_otlp_json_is_stored_with_hex_ids(serve: Callable[..., Running]) -> None:
    srv = serve()
    spans = agent_trace("json-run")
    reply = srv.http.post("/v1/traces", content=json.dumps(to_json(spans)), headers=JS)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    assert reply.json() == {}
    runs = srv.http.get("/api/runs").json()["runs"]
    assert runs[0]["trace_id"] == spans[0].trace_id.hex()
    assert srv.counts() == {"runs": 1, "steps": 3, "errors": 2}
    again = srv.http.post("/v1/traces", content=json.dumps(to_json(spans)), headers=JS)
    assert again.status_code == 200 and srv.counts() == {"runs": 1, "steps": 3, "errors": 2}


def test_gzip_bodies_are_inflated_for_both_encodings(serve: Callable[..., Running]) -> None:
    srv = serve()
    pb = gzip.compress(to_protobuf(agent_trace("gz-pb")).SerializeToString())
    js = gzip.compress(json.dumps(to_json(agent_trace("gz-js"))).encode())
    gz = {"content-encoding": "gzip"}
    assert srv.http.post("/v1/traces", content=pb, headers={**PB, **gz}).status_code == 200
    assert srv.http.post("/v1/traces", content=js, headers={**JS, **gz}).status_code == 200
    assert srv.counts()["runs"] == 2


def test_partial_success_lists_rejected_spans_in_the_request_encoding(
    serve: Callable[..., Running],
) -> None:
    srv = serve()
    spans = [Span("fine"), Span("short", trace_id=b"\x09" * 4)]
    js = srv.http.post("/v1/traces", content=json.dumps(to_json(spans)), headers=JS).json()
    assert js["partialSuccess"]["rejectedSpans"] in ("1", 1)
    assert "traceId" in js["partialSuccess"]["errorMessage"]
    pb = srv.http.post("/v1/traces", content=to_protobuf(spans).SerializeToString(), headers=PB)
    assert ExportTraceServiceResponse.FromString(pb.content).partial_success.rejected_spans == 1


def test_bad_requests_get_the_otlp_status_and_change_nothing(serve: Callable[..., Running]) -> None:
    srv = serve(max_request_bytes=64 * 1024)
    assert (
        srv.http.post(
            "/v1/traces", content=to_protobuf(agent_trace("kept")).SerializeToString(), headers=PB
        ).status_code
        == 200
    )
    before = srv.counts()
    bomb = gzip.compress(b"\x00" * (2 * 1024 * 1024))
    cases = [
        (b"\xff\xfe\xfd\xfc\xfb", PB, 400),
        (to_protobuf(agent_trace("t")).SerializeToString()[:-9], PB, 400),
        (b'{"resourceSpans": [', JS, 400),
        (b"not json at all", JS, 400),
        (b"{}", {"content-type": "text/plain"}, 415),
        (b"{}", {**JS, "content-encoding": "br"}, 415),
        (b"x" * (64 * 1024 + 1), PB, 413),
        (bomb, {**PB, "content-encoding": "gzip"}, 413),
        (b"\x1f\x8b\x08\x00garbage", {**PB, "content-encoding": "gzip"}, 400),
    ]
    for body, headers, status in cases:
        reply = srv.http.post("/v1/traces", content=body, headers=headers)
        assert reply.status_code == status, (body[:20], reply.text)
        if headers.get("content-type") == "application/x-protobuf":
            assert status_pb2.Status.FromString(reply.content).message
        assert srv.healthy()
        assert srv.counts() == before


def test_a_body_over_the_limit_without_content_length_is_refused(
    serve: Callable[..., Running],
) -> None:
    srv = serve(max_request_bytes=32 * 1024)

    def chunks():  # chunked transfer: no Content-Length to check up front
        for _ in range(64):
            yield b"\x0a" * 1024

    reply = srv.http.post("/v1/traces", content=chunks(), headers=PB)
    assert reply.status_code == 413
    assert srv.healthy()


def test_overload_answers_503_with_retry_after(serve: Callable[..., Running]) -> None:
    srv = serve()
    srv.server.ingestor.admission.max_requests = 0
    reply = srv.http.post(
        "/v1/traces", content=to_protobuf(agent_trace("busy")).SerializeToString(), headers=PB
    )
    assert reply.status_code == 503 and int(reply.headers["retry-after"]) >= 1
