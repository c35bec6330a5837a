"""Each report is also a span ``diagnose {run name}``, linked to the failed trace."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import func, select

from otel_diag import semconv as sc
from otel_diag.config import Settings
from otel_diag.diagnosis import span as diagnosis_span
from otel_diag.diagnosis.service import DiagnosticsService
from otel_diag.rows import Report, Run
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store.sql.engine import TenantDBManager
from otel_diag.store.sql.models import runs


def test_a_stored_report_is_emitted_as_a_span_linked_to_the_failed_trace(
    manager: TenantDBManager,
    diag_settings: Settings,
    exporter: ErrorLogSpanExporter,
    seed_run: Callable[..., str],
) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    service = DiagnosticsService(manager=manager, settings=diag_settings, tracer_provider=provider)
    report = service.analyze_failure(seed_run())

    (span,) = memory.get_finished_spans()
    assert span.name == "diagnose trip-planner"
    attrs = dict(span.attributes or {})
    assert attrs[sc.DIAGNOSIS_MARKER] is True
    assert attrs[sc.DIAGNOSIS_REPORT_ID] == str(report.id)
    assert attrs[sc.RUN_ID] == str(report.run_id)
    assert attrs[sc.DIAGNOSIS_ROOT_CAUSE] == report.root_cause_analysis
    assert attrs[sc.DIAGNOSIS_RESUME_STEP] == "search_flights"
    assert attrs[sc.DIAGNOSIS_CONFIDENCE] == report.confidence_score
    assert attrs[sc.DIAGNOSIS_CATEGORY] == "dependency"
    assert span.parent is None  # its own trace, linked to the failed one
    with manager.get_engine().connect() as conn:
        trace_id = conn.execute(
            select(runs.c.trace_id).where(runs.c.id == report.run_id)
        ).scalar_one()
    assert span.links and {f"{link.context.trace_id:032x}" for link in span.links} == {trace_id}

    # Our own exporter never stores (or later diagnoses) the diagnosis span.
    with manager.get_engine().connect() as conn:
        before = conn.execute(select(func.count()).select_from(runs)).scalar_one()
    exporter.export([span])
    with manager.get_engine().connect() as conn:
        assert conn.execute(select(func.count()).select_from(runs)).scalar_one() == before


@pytest.fixture
def otlp_http() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback OTLP/HTTP endpoint that keeps every request body."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers.get("content-length") or 0)))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", bodies
    server.shutdown()
    server.server_close()


def test_with_an_otlp_endpoint_configured_the_span_goes_there(
    otlp_http: tuple[str, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, bodies = otlp_http
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
    now = datetime.now(UTC)
    run = Run(uuid.uuid4(), "ab" * 16, "trip-planner", None, None, "failed", now, now)
    report = Report(
        id=uuid.uuid4(),
        run_id=run.id,
        root_cause_analysis="The flight API was down.",
        recommended_actions=(),
        resume_step="search_flights",
        confidence_score=0.8,
        error_category="dependency",
        llm_provider="openai",
        llm_model="gpt-4o-mini",
        prompt_tokens=None,
        completion_tokens=None,
        latency_ms=None,
        cost_usd=0.0001,
        fingerprint=None,
        reused_from=None,
        fallback_reason=None,
        created_at=now,
    )
    trace_hex, span_hex = "ab" * 16, "cd" * 8
    assert diagnosis_span.emit_report_span(report, run, [(trace_hex, span_hex)], tenant="acme")
    diagnosis_span.flush(5000)

    request = ExportTraceServiceRequest()
    request.ParseFromString(bodies[0])
    resource_spans = request.resource_spans[0]
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "otel-diag"
    (sent,) = resource_spans.scope_spans[0].spans
    assert sent.name == "diagnose trip-planner"
    attrs = {a.key: a.value for a in sent.attributes}
    assert attrs[sc.DIAGNOSIS_MARKER].bool_value is True
    assert attrs[sc.DIAGNOSIS_RESUME_STEP].string_value == "search_flights"
    assert attrs[sc.TENANT_ID].string_value == "acme"
    assert attrs[sc.DIAGNOSIS_CONFIDENCE].double_value == 0.8
    assert sent.links[0].trace_id.hex() == trace_hex
    assert sent.links[0].span_id.hex() == span_hex


def test_emitting_never_raises() -> None:
    broken: Any = SimpleNamespace(id="x")  # no root cause, no confidence
    run: Any = SimpleNamespace(id="r", name=None)
    assert diagnosis_span.emit_report_span(broken, run, [("zz", "yy")]) is False
