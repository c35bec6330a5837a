"""Deterministic ids, so a re-sent span never makes a second row.

``runs.id`` follows DESIGN.md: the ``otel_diag.run.id`` attribute if it is a UUID, a uuid5
of it if it is another string (so retries of one workflow in several traces share a run),
else the trace id read as a UUID.
"""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("6f1f3c2e-7d1a-5b8e-9a54-0c7d2e9b4a11")


def run_uuid(run_key: str | None, trace_id: str) -> uuid.UUID:
    if run_key:
        try:
            return uuid.UUID(run_key)
        except ValueError:
            return uuid.uuid5(NAMESPACE, run_key)
    return uuid.UUID(hex=trace_id)


def step_uuid(trace_id: str, span_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, trace_id + span_id)


def error_uuid(trace_id: str, span_id: str, index: int) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{trace_id}{span_id}:{index}")


def log_error_uuid(trace_id: str, span_id: str, time_ns: int, key: str) -> uuid.UUID:
    """An exception reported as a log record: its own id, never an event's of that span."""
    return uuid.uuid5(NAMESPACE, f"{trace_id}{span_id}:log:{time_ns}:{key}")


def parse_run_ref(ref: str) -> uuid.UUID | None:
    """A full run UUID, a 32-hex trace id, or a run-id string as users typed it."""
    ref = ref.strip()
    try:
        return uuid.UUID(ref)
    except ValueError:
        return uuid.uuid5(NAMESPACE, ref) if ref else None
