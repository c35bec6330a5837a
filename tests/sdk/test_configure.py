"""otel_diag.configure(): one call, idempotent, standard OTEL_* variables honoured."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcOTLP
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpOTLP
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

import otel_diag
from otel_diag import run, tool
from otel_diag.instrumentation import RunBaggageSpanProcessor
from otel_diag.instrumentation.litellm_instrumentor import LiteLLMInstrumentor
from otel_diag.instrumentation.run_context import span_processors
from otel_diag.projection.ids import run_uuid
from otel_diag.rows import to_json
from otel_diag.sdk import configure as configure_module
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store.sql.engine import InvalidTenantError, TenantDBManager
from tests.fakes.openai_server import FakeOpenAI
from tests.sdk.otlp_sink import OTLPSink


@pytest.fixture(autouse=True)
def fresh_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[TracerProvider]]:
    """A process with no global tracer provider and no earlier configure() call."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(configure_module, "_configured", None)
    for var in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    ):
        monkeypatch.delenv(var, raising=False)
    made: list[TracerProvider] = []
    yield made
    for provider in made:
        provider.shutdown()
    if LiteLLMInstrumentor().is_instrumented_by_opentelemetry:
        LiteLLMInstrumentor().uninstrument()


def _exporters(provider: TracerProvider) -> list[object]:
    return [e for p in span_processors(provider) if (e := configure_module._exporter_of(p))]


def test_configure_sets_a_global_provider_with_baggage_processor_and_batched_exporter(
    fresh_globals: list[TracerProvider], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    provider = otel_diag.configure(
        service_name="trip-svc",
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        instrument_litellm=False,
    )
    fresh_globals.append(provider)
    assert trace.get_tracer_provider() is provider
    assert provider.resource.attributes["service.name"] == "trip-svc"
    assert provider.resource.attributes["deployment.environment"] == "test"
    processors = list(span_processors(provider))
    assert isinstance(processors[0], RunBaggageSpanProcessor)
    assert isinstance(processors[1], BatchSpanProcessor)
    assert [type(e) for e in _exporters(provider)] == [ErrorLogSpanExporter]


def test_second_call_returns_the_same_provider_and_adds_nothing(
    fresh_globals: list[TracerProvider], tmp_path: Path
) -> None:
    first = otel_diag.configure(
        database_url=f"sqlite:///{tmp_path / 'x.db'}", instrument_litellm=False
    )
    fresh_globals.append(first)
    count = len(list(span_processors(first)))
    assert otel_diag.configure(service_name="other", otlp=True) is first
    assert len(list(span_processors(first))) == count


def test_otel_service_name_is_honoured(
    fresh_globals: list[TracerProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    provider = otel_diag.configure(store=False, instrument_litellm=False)
    fresh_globals.append(provider)
    assert provider.resource.attributes["service.name"] == "from-env"


def _call_a_tool() -> None:
    @tool
    def lookup(sku: str) -> str:
        return sku

    lookup("sku-1")


def test_otlp_exporter_is_added_when_an_endpoint_is_configured(
    fresh_globals: list[TracerProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    with OTLPSink() as sink:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.http_endpoint)
        provider = otel_diag.configure(store=False, instrument_litellm=False)
        fresh_globals.append(provider)
        (exporter,) = _exporters(provider)
        assert isinstance(exporter, HttpOTLP)
        _call_a_tool()
        assert provider.force_flush(10_000)
        # http/protobuf by default, at the signal path the specification appends.
        assert sink.span_names("/v1/traces") == ["execute_tool lookup"]


@pytest.mark.parametrize(("protocol", "where"), [("grpc", "grpc"), ("http/protobuf", "/v1/traces")])
def test_an_explicit_otlp_endpoint_and_protocol_win_over_the_environment(
    fresh_globals: list[TracerProvider],
    monkeypatch: pytest.MonkeyPatch,
    protocol: str,
    where: str,
) -> None:
    with OTLPSink() as sink, OTLPSink() as decoy:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", decoy.http_endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
        endpoint = sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint
        provider = otel_diag.configure(
            store=False,
            otlp=True,
            otlp_endpoint=endpoint,
            otlp_protocol=protocol,
            instrument_litellm=False,
        )
        fresh_globals.append(provider)
        (exporter,) = _exporters(provider)
        assert isinstance(exporter, GrpcOTLP if protocol == "grpc" else HttpOTLP)
        _call_a_tool()
        assert provider.force_flush(10_000)
        assert sink.span_names(where) == ["execute_tool lookup"]
        assert decoy.received == []


def test_no_otlp_exporter_without_an_endpoint(fresh_globals: list[TracerProvider]) -> None:
    provider = otel_diag.configure(store=False, instrument_litellm=False)
    fresh_globals.append(provider)
    assert _exporters(provider) == []


def test_an_existing_sdk_provider_is_adopted_without_a_second_exporter(
    fresh_globals: list[TracerProvider], tmp_path: Path
) -> None:
    existing = TracerProvider()  # what opentelemetry-instrument --traces_exporter otel_diag sets
    existing.add_span_processor(
        BatchSpanProcessor(ErrorLogSpanExporter(f"sqlite:///{tmp_path / 'x.db'}"))
    )
    trace.set_tracer_provider(existing)
    fresh_globals.append(existing)
    assert otel_diag.configure(instrument_litellm=False) is existing
    assert [type(e) for e in _exporters(existing)] == [ErrorLogSpanExporter]
    assert any(isinstance(p, RunBaggageSpanProcessor) for p in span_processors(existing))


def test_not_global_keeps_the_provider_to_otel_diag_spans(
    fresh_globals: list[TracerProvider],
) -> None:
    provider = otel_diag.configure(store=False, set_global=False, instrument_litellm=False)
    fresh_globals.append(provider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    assert trace.get_tracer_provider() is not provider
    _call_a_tool()
    with trace.get_tracer("the-app").start_as_current_span("the app's own span"):
        pass
    assert [s.name for s in memory.get_finished_spans()] == ["execute_tool lookup"]


def test_configure_applies_the_litellm_instrumentor(fresh_globals: list[TracerProvider]) -> None:
    """A litellm call made after configure() is a chat span with its model and usage."""
    import litellm

    provider = otel_diag.configure(store=False)
    fresh_globals.append(provider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with FakeOpenAI() as llm:
        litellm.completion(
            model="openai/gpt-4o-mini",
            api_base=llm.url,
            api_key="sk-test",
            messages=[{"role": "user", "content": "hi"}],
        )
    (span,) = memory.get_finished_spans()
    assert span.name == "chat gpt-4o-mini"
    assert span.attributes is not None
    assert (
        span.attributes["gen_ai.usage.input_tokens"],
        span.attributes["gen_ai.usage.output_tokens"],
    ) == (11, 7)


def test_invalid_tenant_is_refused(fresh_globals: list[TracerProvider]) -> None:
    with pytest.raises(InvalidTenantError):
        otel_diag.configure(tenant_id="Not Valid", instrument_litellm=False)


def test_configured_app_writes_its_failed_run_to_the_database(
    fresh_globals: list[TracerProvider], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    provider = otel_diag.configure(
        service_name="app", database_url=url, tenant_id="acme", instrument_litellm=False
    )
    fresh_globals.append(provider)

    @tool
    def flaky() -> None:
        raise TimeoutError("inventory service timed out")

    with pytest.raises(TimeoutError), run("checkout", run_id="co-1"):
        flaky()
    assert provider.force_flush()
    manager = TenantDBManager(url)
    try:
        errors = [to_json(e) for e in manager.tenant("acme").errors(run_uuid("co-1", "0" * 32))]
    finally:
        manager.dispose()
    # One failure, raised by the tool; the run's span only recorded it again.
    assert [
        (e["step_name"], e["source"], e["error_category"], e["propagated_to"]) for e in errors
    ] == [("flaky", "tool", "timeout", ["invoke_workflow checkout"])]


def test_a_bad_server_side_setting_does_not_stop_configure(
    fresh_globals: list[TracerProvider],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """OTEL_DIAG_LLM_TIMEOUT is the diagnosis server's: a typo there must not cost the app
    its telemetry. Spans are still stored, litellm still instrumented, one warning at most."""
    monkeypatch.setenv("OTEL_DIAG_LLM_TIMEOUT", f"abc-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("OTEL_DIAG_MAX_INFLIGHT", "many")
    url = f"sqlite:///{tmp_path / 'app.db'}"
    with caplog.at_level(logging.WARNING, logger="otel_diag"):
        provider = otel_diag.configure(service_name="app", database_url=url)
        fresh_globals.append(provider)

        @tool
        def flaky() -> None:
            raise TimeoutError("inventory service timed out")

        with pytest.raises(TimeoutError), run("checkout", run_id="co-2"):
            flaky()
        assert provider.force_flush()
    assert LiteLLMInstrumentor().is_instrumented_by_opentelemetry
    monkeypatch.delenv("OTEL_DIAG_LLM_TIMEOUT")  # the server reading the rows refuses them
    monkeypatch.delenv("OTEL_DIAG_MAX_INFLIGHT")
    manager = TenantDBManager(url)
    try:
        errors = [to_json(e) for e in manager.tenant(None).errors(run_uuid("co-2", "0" * 32))]
    finally:
        manager.dispose()
    assert [(e["step_name"], e["error_category"]) for e in errors] == [("flaky", "timeout")]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 2, warnings  # one per bad variable, each once
    assert [w for w in warnings if "using the default" not in w] == []
