"""Each stored report, also as a span ``diagnose {run name}`` next to the failed trace.

People look at traces in Jaeger or Tempo, so the diagnosis goes there too: one span per
report, linked (span links) to the failed run's spans, carrying the root cause, resume
step and confidence. It is marked with :data:`otel_diag.semconv.DIAGNOSIS_MARKER` so that
otel-diag's own sink (in-process exporter or OTLP receiver) never stores or diagnoses it.

Where it goes: when ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``
is set, a dedicated TracerProvider with an OTLP exporter (``OTEL_EXPORTER_OTLP_*_PROTOCOL``:
``http/protobuf`` by default, or ``grpc``) configured by the standard variables
(:mod:`otel_diag.otlp`, the same rule as ``configure()``); otherwise
the global provider (an instrumented app's own pipeline, or nothing). Emitting never raises.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext, TraceFlags, TracerProvider

from otel_diag import otlp
from otel_diag import semconv as sc
from otel_diag.redact import safe_text
from otel_diag.rows import Report, Run
from otel_diag.version import __version__

logger = logging.getLogger(__name__)

SERVICE = "otel-diag"

_lock = threading.Lock()
_dedicated: dict[tuple[str, str], Any] = {}


def _otlp_target(env: Mapping[str, str]) -> tuple[str, str] | None:
    endpoint = otlp.configured_endpoint(env)
    if endpoint is None:
        return None
    protocol = otlp.configured_protocol(env)  # an unknown one: the default, as before
    return endpoint, protocol if protocol in otlp.PROTOCOLS else otlp.DEFAULT_PROTOCOL


def _build_provider(protocol: str) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = SDKTracerProvider(resource=Resource.create({sc.SERVICE_NAME: SERVICE}))
    provider.add_span_processor(BatchSpanProcessor(otlp.otlp_span_exporter(protocol=protocol)))
    return provider


def diagnosis_tracer_provider(env: Mapping[str, str] | None = None) -> TracerProvider:
    """The provider diagnosis spans go through (see the module docstring)."""
    target = _otlp_target(os.environ if env is None else env)
    if target is None:
        return trace.get_tracer_provider()
    with _lock:
        provider = _dedicated.get(target)
        if provider is None:
            provider = _dedicated[target] = _build_provider(target[1])
        return provider  # type: ignore[no-any-return]


def flush(timeout_millis: int = 5000) -> None:
    """Push out buffered diagnosis spans of the dedicated providers (worker shutdown)."""
    with _lock:
        providers = list(_dedicated.values())
    for provider in providers:
        try:
            provider.force_flush(timeout_millis)
        except Exception:
            logger.debug("flushing diagnosis spans failed", exc_info=True)


def _links(targets: Iterable[tuple[str, str]]) -> list[Link]:
    links = []
    for trace_hex, span_hex in dict.fromkeys(targets):
        try:
            ctx = SpanContext(
                trace_id=int(trace_hex, 16),
                span_id=int(span_hex, 16),
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
        except (TypeError, ValueError):
            continue
        if ctx.is_valid:
            links.append(Link(ctx))
    return links


def report_attributes(report: Report, run: Run, tenant: str | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        sc.DIAGNOSIS_MARKER: True,
        sc.RUN_ID: str(run.id),
        sc.DIAGNOSIS_REPORT_ID: str(report.id),
        sc.DIAGNOSIS_ROOT_CAUSE: safe_text(report.root_cause_analysis, 1000),
        sc.DIAGNOSIS_CONFIDENCE: float(report.confidence_score),
        sc.DIAGNOSIS_PROVIDER: report.llm_provider,
    }
    optional = {
        sc.TENANT_ID: tenant,
        sc.DIAGNOSIS_RESUME_STEP: report.resume_step,
        sc.DIAGNOSIS_CATEGORY: report.error_category,
        sc.DIAGNOSIS_REUSED_FROM: report.reused_from,
        sc.DIAGNOSIS_FALLBACK_REASON: report.fallback_reason,
        sc.GEN_AI_REQUEST_MODEL: report.llm_model,
        sc.GEN_AI_USAGE_INPUT_TOKENS: report.prompt_tokens,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: report.completion_tokens,
        sc.GEN_AI_USAGE_COST: report.cost_usd or None,
    }
    for key, value in optional.items():
        if value is not None:
            attrs[key] = str(value) if key == sc.DIAGNOSIS_REUSED_FROM else value
    return attrs


def emit_report_span(
    report: Report,
    run: Run,
    link_targets: Iterable[tuple[str, str]],
    *,
    tenant: str | None = None,
    started_ns: int | None = None,
    provider: TracerProvider | None = None,
) -> bool:
    """Emit the span of one stored report; False (logged at debug) if that failed."""
    try:
        tracer = (provider or diagnosis_tracer_provider()).get_tracer(
            "otel_diag.diagnosis", __version__
        )
        name = f"diagnose {safe_text(run.name or str(run.id), 200)}"
        span = tracer.start_span(
            name,
            context=Context(),  # a new trace: never a child of whatever is current
            kind=trace.SpanKind.INTERNAL,
            attributes=report_attributes(report, run, tenant),
            links=_links(link_targets),
            start_time=started_ns or time.time_ns(),
        )
        span.end()
        return True
    except Exception:
        logger.debug("could not emit the diagnosis span", exc_info=True)
        return False
