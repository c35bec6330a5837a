"""The normalized span model and the pure functions that build it."""

from otel_diag.spans.record import EventRecord, SpanRecord, normalize

__all__ = ["EventRecord", "SpanRecord", "normalize"]
