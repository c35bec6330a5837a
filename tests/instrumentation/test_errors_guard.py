"""The error emit API never raises into the application."""

from __future__ import annotations

import logging

import pytest

from otel_diag.instrumentation import errors, tracing


def test_a_bad_argument_to_the_emit_api_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Logged with its traceback once per place at WARNING, then at DEBUG; never raised."""
    monkeypatch.setattr(tracing, "RAISE_INTERNAL_ERRORS", False)
    monkeypatch.setattr(tracing, "_warned", set())  # this process has not failed here yet
    with caplog.at_level(logging.DEBUG, logger="otel_diag.instrumentation"):
        infos = [errors.log_error("not-a-source", ValueError("x")) for _ in range(2)]
    assert [(i.error_type, i.category) for i in infos] == [("ValueError", "internal")] * 2
    records = [r for r in caplog.records if "the error emit API" in r.getMessage()]
    assert [r.levelno for r in records] == [logging.WARNING, logging.DEBUG]
    assert all(r.exc_info and r.exc_info[0] is ValueError for r in records)
    assert "not-a-source" in str(records[0].exc_info[1])  # type: ignore[index]


def test_a_callers_baggage_tenant_is_ignored_when_remote_tenants_are_not_trusted() -> None:
    from opentelemetry import baggage
    from opentelemetry import context as otel_context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_diag.instrumentation import run
    from otel_diag.instrumentation.run_context import RunBaggageSpanProcessor

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(RunBaggageSpanProcessor(trust_remote_tenant=False))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")

    # As an incoming request's propagator would: baggage chosen by a remote caller.
    remote = baggage.set_baggage("otel_diag.tenant.id", "victim")
    remote = baggage.set_baggage("otel_diag.run.id", "their-run", context=remote)
    token = otel_context.attach(remote)
    try:
        with tracer.start_as_current_span("handler"):
            pass
    finally:
        otel_context.detach(token)
    with run("local", tenant_id="acme"), tracer.start_as_current_span("inside-run"):
        pass

    spans = {s.name: dict(s.attributes or {}) for s in memory.get_finished_spans()}
    assert "otel_diag.tenant.id" not in spans["handler"]
    assert spans["handler"]["otel_diag.run.id"] == "their-run"
    assert spans["inside-run"]["otel_diag.tenant.id"] == "acme"
    provider.shutdown()
