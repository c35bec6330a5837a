"""Distro and configurator so ``opentelemetry-instrument`` sets the SDK up with otel-diag.

The SDK registers no configurator of its own (distros are expected to), and the usual
``opentelemetry-distro`` defaults every signal to OTLP, which would make a plain
``opentelemetry-instrument --traces_exporter otel_diag python app.py`` try to ship
metrics and logs to a collector that is not there. This distro only sets defaults: traces
to ``otel_diag``, metrics and logs off. Anything the user sets (flags, env) wins.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _OTelSDKConfigurator

# The SDK's names for these (they are not all exported as constants in every version).
OTEL_TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"
OTEL_METRICS_EXPORTER = "OTEL_METRICS_EXPORTER"
OTEL_LOGS_EXPORTER = "OTEL_LOGS_EXPORTER"


class OtelDiagConfigurator(_OTelSDKConfigurator):
    """The SDK's standard initialization (TracerProvider, BatchSpanProcessor, exporters).

    Plus the run-baggage span processor on the provider it sets up, so spans of a run
    started in another service (``otel_diag.run.id`` in W3C baggage) name their run here.
    """

    def _configure(self, **kwargs: Any) -> None:
        super()._configure(**kwargs)
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        from otel_diag.instrumentation.run_context import RunBaggageSpanProcessor

        provider = trace.get_tracer_provider()
        if isinstance(provider, TracerProvider):
            provider.add_span_processor(RunBaggageSpanProcessor())


class OtelDiagDistro(BaseDistro):
    """Defaults for ``opentelemetry-instrument``: traces to otel-diag, other signals off."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault(OTEL_TRACES_EXPORTER, "otel_diag")
        os.environ.setdefault(OTEL_METRICS_EXPORTER, "none")
        os.environ.setdefault(OTEL_LOGS_EXPORTER, "none")
