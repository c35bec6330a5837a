"""``otel_diag.configure()``: tracing set up for otel-diag in one call.

It builds (or adopts) an SDK ``TracerProvider`` with: the run-baggage processor (so every
span names its run), the :class:`ErrorLogSpanExporter` behind a ``BatchSpanProcessor`` (spans
never wait on the database), and optionally an OTLP exporter so the same traces reach
Jaeger, Tempo, a Collector or ``otel-diag serve``. It also applies the litellm instrumentor.

Idempotent: the second call returns the provider of the first and adds nothing. When an SDK
provider is already the global one (``opentelemetry-instrument``, or the app's own set-up),
it is adopted and only what is missing is added, so spans are not exported twice. The
standard variables keep their meaning: ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``
through ``Resource.create``, and ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` /
``..._PROTOCOL`` / ``..._HEADERS`` through the OTLP exporters themselves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from otel_diag import semconv as sc
from otel_diag.instrumentation import tracing
from otel_diag.instrumentation.run_context import add_run_baggage_processor, span_processors
from otel_diag.otlp import configured_endpoint, otlp_span_exporter
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.tenants import validate_tenant_id

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_configured: TracerProvider | None = None


def _exporter_of(processor: SpanProcessor) -> SpanExporter | None:
    for path in (("span_exporter",), ("_batch_processor", "_exporter"), ("_exporter",)):
        obj: Any = processor
        for name in path:
            obj = getattr(obj, name, None)
        if isinstance(obj, SpanExporter):
            return obj
    return None


def _has_exporter(provider: TracerProvider, kind: str) -> bool:
    for processor in span_processors(provider):
        exporter = _exporter_of(processor)
        if exporter is None:
            continue
        if kind == "store" and isinstance(exporter, ErrorLogSpanExporter):
            return True
        if kind == "otlp" and type(exporter).__name__ == "OTLPSpanExporter":
            return True
    return False


def configure(
    *,
    service_name: str | None = None,
    database_url: str | None = None,
    tenant_id: str | None = None,
    store: bool = True,
    otlp: bool | None = None,
    otlp_endpoint: str | None = None,
    otlp_protocol: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    capture_content: bool | None = None,
    instrument_litellm: bool = True,
    set_global: bool = True,
) -> TracerProvider:
    """Set up tracing for otel-diag and return the ``TracerProvider``.

    Args:
        service_name: ``service.name`` (``OTEL_SERVICE_NAME`` otherwise).
        database_url: where the in-process exporter writes (``OTEL_DIAG_DATABASE_URL``...).
        tenant_id: tenant of this service's spans (resource ``otel_diag.tenant.id``).
        store: write spans to otel-diag's database in-process (the exporter).
        otlp: also export OTLP; None means "if an OTLP endpoint is configured".
        otlp_endpoint / otlp_protocol: override ``OTEL_EXPORTER_OTLP_*``.
        resource_attributes: extra resource attributes.
        capture_content: record arguments, results and messages (overrides the env var).
        instrument_litellm: apply :class:`LiteLLMInstrumentor` (now or when litellm loads).
        set_global: make it the global provider; False keeps it to otel-diag's spans.
    """
    global _configured
    with _lock:
        if _configured is not None:
            return _configured
        if tenant_id is not None:
            validate_tenant_id(tenant_id)
        if capture_content is not None:
            tracing.set_capture_content(capture_content)
        current = trace.get_tracer_provider() if set_global else None
        if isinstance(current, TracerProvider):
            provider = current
            if service_name or resource_attributes:
                logger.warning(
                    "otel-diag: a tracer provider is already set; its resource is kept "
                    "(service_name / resource_attributes ignored)"
                )
        else:
            attributes: dict[str, Any] = dict(resource_attributes or {})
            if service_name:
                attributes[sc.SERVICE_NAME] = service_name
            if tenant_id:
                attributes[sc.TENANT_ID] = tenant_id
            provider = TracerProvider(resource=Resource.create(attributes))
        add_run_baggage_processor(provider)
        if store and not _has_exporter(provider, "store"):
            exporter = ErrorLogSpanExporter(database_url=database_url, tenant_id=tenant_id)
            provider.add_span_processor(BatchSpanProcessor(exporter))
        wants_otlp = otlp if otlp is not None else bool(otlp_endpoint or configured_endpoint())
        if wants_otlp and not _has_exporter(provider, "otlp"):
            provider.add_span_processor(
                BatchSpanProcessor(otlp_span_exporter(otlp_endpoint, otlp_protocol))
            )
        if set_global:
            if provider is not current:
                trace.set_tracer_provider(provider)
            tracing.set_tracer_provider(None)
        else:
            tracing.set_tracer_provider(provider)
        if instrument_litellm:
            from otel_diag.instrumentation.litellm_instrumentor import LiteLLMInstrumentor

            instrumentor = LiteLLMInstrumentor()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(tracer_provider=None if set_global else provider)
        _configured = provider
        return provider
