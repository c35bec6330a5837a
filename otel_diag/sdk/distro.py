"""How ``opentelemetry-instrument`` sets the SDK up for otel-diag, alone or next to another distro.

``opentelemetry-instrument`` runs, in order: the first ``opentelemetry_distro`` entry point
(or the one ``OTEL_PYTHON_DISTRO`` names), every ``opentelemetry_configurator`` entry point
(the first configures the SDK; each further one is a printed warning), the instrumentors,
then the ``opentelemetry_post_instrument`` hooks. The SDK registers no configurator of its
own, and the usual ``opentelemetry-distro`` (which does register one) defaults every signal
to OTLP. So otel-diag registers no configurator at all, which keeps a process with
``opentelemetry-distro`` installed silent, and instead:

- :class:`OtelDiagDistro` (when it is the distro loaded) sets defaults: traces to
  ``otel_diag``, metrics and logs off; anything the user set (flags, env) wins. When no
  configurator is installed it runs the SDK's standard configuration itself, since nobody
  else will; otherwise it leaves that to the installed one.
- :func:`add_run_baggage` (a post-instrument hook, so it runs whichever distro and
  configurator set the SDK up) installs the run-baggage span processor, so spans of a run
  started in another service (``otel_diag.run.id`` in W3C baggage) name their run here.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.instrumentation.version import __version__ as auto_instrumentation_version
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.util._importlib_metadata import entry_points

# The SDK's names for these (they are not all exported as constants in every version).
OTEL_TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"
OTEL_METRICS_EXPORTER = "OTEL_METRICS_EXPORTER"
OTEL_LOGS_EXPORTER = "OTEL_LOGS_EXPORTER"
CONFIGURATOR_GROUP = "opentelemetry_configurator"


class OtelDiagConfigurator(_OTelSDKConfigurator):
    """The SDK's standard initialization (TracerProvider, BatchSpanProcessor, exporters).

    Not an entry point: :class:`OtelDiagDistro` runs it when no configurator is installed.
    The SDK asks distros to subclass rather than instantiate ``_OTelSDKConfigurator``.
    """


class OtelDiagDistro(BaseDistro):
    """Defaults for ``opentelemetry-instrument``: traces to otel-diag, other signals off."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault(OTEL_TRACES_EXPORTER, "otel_diag")
        os.environ.setdefault(OTEL_METRICS_EXPORTER, "none")
        os.environ.setdefault(OTEL_LOGS_EXPORTER, "none")
        if not any(True for _ in entry_points(group=CONFIGURATOR_GROUP)):
            OtelDiagConfigurator().configure(
                auto_instrumentation_version=auto_instrumentation_version
            )


def add_run_baggage() -> None:
    """Post-instrument hook: the run-baggage processor on the SDK provider, if there is one."""
    from otel_diag.instrumentation.run_context import add_run_baggage_processor

    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        add_run_baggage_processor(provider)
