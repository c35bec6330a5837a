"""In-process export: the ``otel_diag`` SpanExporter."""

from otel_diag.export.exporter import ErrorLogSpanExporter

__all__ = ["ErrorLogSpanExporter"]
