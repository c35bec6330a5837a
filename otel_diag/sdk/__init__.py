"""The OpenTelemetry SDK integration: span exporter, distro, post-instrument hook, configure().

:class:`ErrorLogSpanExporter` writes spans in-process (``--traces_exporter otel_diag``);
:mod:`otel_diag.sdk.distro` is what ``opentelemetry-instrument`` loads;
:mod:`otel_diag.sdk.configure` sets the SDK up in code. Not to be confused with file export
(``otel-diag export``, :mod:`otel_diag.cli.export`).
"""

from otel_diag.sdk.exporter import ErrorLogSpanExporter

__all__ = ["ErrorLogSpanExporter"]
