"""Fixtures for instrumentation tests: in-memory spans, the real exporter, a fake LLM.

Every test routes otel-diag's spans to its own ``TracerProvider`` (the run-baggage
processor first, then the exporter), so no test touches the global provider, and
instrumentation bugs raise instead of being swallowed (``RAISE_INTERNAL_ERRORS``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_diag.instrumentation import RunBaggageSpanProcessor, tracing
from otel_diag.instrumentation.attempts import tracker
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from tests.fakes.openai_server import FakeOpenAI


class Spans:
    """Finished spans of one test, by name."""

    def __init__(self, exporter: InMemorySpanExporter, provider: TracerProvider) -> None:
        self.exporter = exporter
        self.provider = provider

    @property
    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.all if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, f"expected one span {name!r}, got {[s.name for s in self.all]}"
        return found[0]

    def clear(self) -> None:
        self.exporter.clear()


@pytest.fixture(autouse=True)
def _strict_instrumentation() -> Iterator[None]:
    """Instrumentation bugs fail the test; attempt memory and capture start clean."""
    tracing.RAISE_INTERNAL_ERRORS = True
    tracker.clear()
    yield
    tracing.RAISE_INTERNAL_ERRORS = False
    tracing.set_capture_content(None)
    tracing.set_tracer_provider(None)
    tracker.clear()


@pytest.fixture
def spans() -> Iterator[Spans]:
    """otel-diag's spans, collected in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "inst-tests"}))
    provider.add_span_processor(RunBaggageSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.set_tracer_provider(provider)
    yield Spans(exporter, provider)
    provider.shutdown()


@pytest.fixture
def stored(exporter: ErrorLogSpanExporter) -> Iterator[ErrorLogSpanExporter]:
    """otel-diag's spans, written synchronously by the real exporter (SQLite and PostgreSQL)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "inst-tests"}))
    provider.add_span_processor(RunBaggageSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()


@pytest.fixture
def llm_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def capture_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")


@pytest.fixture
def capture_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)


@pytest.fixture(scope="session")
def litellm_module() -> object:
    """litellm, imported once (slow), without noise (otel_diag made it use its bundled prices)."""
    import litellm

    litellm.suppress_debug_info = True
    return litellm


@pytest.fixture
def lm(litellm_module: object) -> Iterator[object]:
    """litellm, instrumented for this test (spans go wherever otel-diag's spans go)."""
    from otel_diag.instrumentation.litellm_instrumentor import LiteLLMInstrumentor

    instrumentor = LiteLLMInstrumentor()
    instrumentor.instrument()
    yield litellm_module
    instrumentor.uninstrument()
