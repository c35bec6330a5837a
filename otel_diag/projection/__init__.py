"""Spans -> rows: pure functions from :class:`SpanRecord` to runs, steps and error_logs."""
