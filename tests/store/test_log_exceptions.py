"""An exception sent as an OTLP log record is stored like the span's exception event.

Both come from the real SDKs: a tracer whose span records the exception, and the logs SDK's
``LoggingHandler`` logging it inside that span; the sink gets them in every order.
"""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_diag.projection.ids import run_uuid
from otel_diag.spans.from_otlp_logs import decode_logs_protobuf
from otel_diag.spans.from_sdk import from_readable_span
from otel_diag.spans.record import SpanRecord
from otel_diag.store.port import Storage
from otel_diag.store.sink import SpanSink
from tests.logs_sdk import as_request, sdk_logger


def tool_failure_logged(run_id: str) -> tuple[list[SpanRecord], list[SpanRecord]]:
    """(span records, log records): a tool span fails and its exception is also logged."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("t")
    with sdk_logger() as (logger, logs):
        with tracer.start_as_current_span("run", attributes={"otel_diag.run.id": run_id}):
            try:
                with tracer.start_as_current_span(
                    "execute_tool lookup",
                    attributes={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": "lookup",
                    },
                ):
                    try:
                        raise LookupError("sku 42 not found")
                    except LookupError:
                        logger.exception("lookup failed")
                        raise
            except LookupError:
                pass  # the run handles it: only the tool failed
        request = as_request(logs)
    span_records = [r for r in map(from_readable_span, spans.get_finished_spans()) if r]
    return span_records, decode_logs_protobuf(request.SerializeToString()).records


def stored(storage: Storage, run_id: str) -> list[tuple[str | None, str, str | None]]:
    errors = storage.tenant().errors(run_uuid(run_id, ""))
    return [(e.step_name, e.error_type, e.recorded_as) for e in errors]


@pytest.mark.parametrize("order", ["span first", "log first", "one batch"])
def test_a_logged_exception_and_the_spans_event_are_one_failure(
    storage: Storage, order: str
) -> None:
    spans, logs = tool_failure_logged("logged-1")
    sink = SpanSink(storage)
    batches = {"span first": [spans, logs], "log first": [logs, spans], "one batch": [spans + logs]}

    for batch in batches[order]:
        sink.write(batch)

    assert stored(storage, "logged-1") == [("lookup", "LookupError", "event")]


def test_a_logged_exception_whose_span_never_arrives_is_an_error_of_that_run(
    storage: Storage,
) -> None:
    spans, logs = tool_failure_logged("logged-2")
    root = [s for s in spans if s.is_root]

    SpanSink(storage).write(root + logs)

    # Named after the function that logged it (code.function.name), as no step is known.
    assert stored(storage, "logged-2") == [("tool_failure_logged", "LookupError", "log")]
    run = storage.tenant().run(run_uuid("logged-2", ""))
    assert (
        run is not None and run.status == "ok"
    )  # the run's root says it ended well; the error is on record
