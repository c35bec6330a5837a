"""run() and step(): the run id travels in baggage to every span, here and over HTTP."""

from __future__ import annotations

import asyncio
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from otel_diag import agent, run, step, tool
from otel_diag import semconv as sc
from otel_diag.instrumentation import RunBaggageSpanProcessor, tracing
from otel_diag.store.sql.engine import InvalidTenantError
from tests.instrumentation.conftest import Spans


def test_run_is_a_root_span_carrying_run_and_tenant(spans: Spans) -> None:
    with run("trip-planner", run_id="run-7", tenant_id="acme") as r:
        assert r.run_id == "run-7"
        assert r.trace_id is not None and len(r.trace_id) == 32
    root = spans.one("invoke_workflow trip-planner")
    assert root.parent is None
    assert dict(root.attributes or {}) == {
        sc.GEN_AI_OPERATION_NAME: "invoke_workflow",
        sc.RUN_ID: "run-7",
        sc.RUN_NAME: "trip-planner",
        sc.TENANT_ID: "acme",
    }


def test_run_id_defaults_to_a_new_uuid(spans: Spans) -> None:
    with run("a") as first, run("b") as second:
        pass
    assert uuid.UUID(first.run_id) and uuid.UUID(second.run_id)
    assert first.run_id != second.run_id


def test_every_span_started_inside_a_run_names_the_run(spans: Spans) -> None:
    plain = tracing.get_tracer()

    @tool
    def lookup() -> str:
        with plain.start_as_current_span("http GET"):  # any instrumentation's span
            return "x"

    @agent
    def planner() -> str:
        return lookup()

    with run("wf", run_id="r-1", tenant_id="t1"):
        planner()
    for name in ("invoke_agent planner", "execute_tool lookup", "http GET"):
        attrs = spans.one(name).attributes
        assert attrs[sc.RUN_ID] == "r-1", name
        assert attrs[sc.TENANT_ID] == "t1", name

    @tool
    def outside() -> None:
        return None

    outside()
    assert sc.RUN_ID not in spans.one("execute_tool outside").attributes


def test_async_run_and_step(spans: Spans) -> None:
    async def main() -> None:
        async with run("async-wf", run_id="ar"), step("fetch", attempt=2) as s:
            assert s.attempt == 2
            await asyncio.sleep(0)

    asyncio.run(main())
    fetch = spans.one("fetch")
    assert fetch.attributes[sc.STEP_NAME] == "fetch"
    assert fetch.attributes[sc.STEP_ATTEMPT] == 2
    assert fetch.attributes[sc.RUN_ID] == "ar"
    assert fetch.parent.span_id == spans.one("invoke_workflow async-wf").context.span_id


def test_step_failure_is_recorded_and_the_exception_leaves_unchanged(spans: Spans) -> None:
    boom = RuntimeError("activity crashed")
    with pytest.raises(RuntimeError) as caught, run("wf"), step("charge-card", attempt=3):
        raise boom
    assert caught.value is boom
    s = spans.one("charge-card")
    assert s.status.status_code is StatusCode.ERROR
    assert s.attributes[sc.ERROR_SOURCE] == "activity"
    assert s.attributes[sc.STEP_ATTEMPT] == 3
    root = spans.one("invoke_workflow wf")
    assert root.status.status_code is StatusCode.ERROR
    assert len(root.events) == 1


def test_an_invalid_tenant_is_a_clear_error_before_anything_runs(spans: Spans) -> None:
    with pytest.raises(InvalidTenantError):
        run("wf", tenant_id="../etc/passwd")
    assert spans.all == []


@pytest.fixture
def remote_service() -> Iterator[tuple[str, InMemorySpanExporter]]:
    """Another 'service' on loopback HTTP with its own provider and the baggage processor."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(RunBaggageSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    remote_tracer = provider.get_tracer("remote")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            # What server instrumentation does (HTTP header names are case-insensitive).
            ctx = propagate.extract({k.lower(): v for k, v in self.headers.items()})
            token = otel_context.attach(ctx)
            try:
                with (
                    remote_tracer.start_as_current_span("GET /quote"),
                    remote_tracer.start_as_current_span("db query"),
                ):
                    pass
            finally:
                otel_context.detach(token)
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/quote", exporter
    server.shutdown()
    server.server_close()
    provider.shutdown()


def test_run_id_crosses_http_to_the_services_it_calls(
    spans: Spans, remote_service: tuple[str, InMemorySpanExporter]
) -> None:
    url, remote = remote_service

    @tool
    def get_quote() -> int:
        headers: dict[str, str] = {}
        propagate.inject(headers)  # what client instrumentation (requests/httpx) does
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return r.status

    with run("wf", run_id="cross-1", tenant_id="acme") as r:
        assert get_quote() == 204
    remote_spans = {s.name: s for s in remote.get_finished_spans()}
    assert set(remote_spans) == {"GET /quote", "db query"}
    for span in remote_spans.values():
        assert span.attributes[sc.RUN_ID] == "cross-1"
        assert span.attributes[sc.TENANT_ID] == "acme"
        assert f"{span.context.trace_id:032x}" == r.trace_id
