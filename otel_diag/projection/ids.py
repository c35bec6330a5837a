"""Deterministic ids, so a re-sent span never makes a second row.

``runs.id`` follows DESIGN.md: the ``otel_diag.run.id`` attribute if it is a UUID, a uuid5
of it if it is another string (so retries of one workflow in several traces share a run),
else the trace id read as a UUID.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping

NAMESPACE = uuid.UUID("6f1f3c2e-7d1a-5b8e-9a54-0c7d2e9b4a11")

_NAMESPACE_BYTES = NAMESPACE.bytes
_VERSION_BITS = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_5 = (5 << 76) | (0x8000 << 48)  # version 5, RFC 4122 variant
_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def name_uuid(name: str) -> uuid.UUID:
    """``uuid.uuid5(NAMESPACE, name)``, the same value at less than half the cost.

    One is made per stored step and error, on the ingest hot path; ``uuid.UUID()``'s
    argument checking costs more than the SHA-1. The value is built exactly as
    :func:`uuid.uuid5` builds it and set on the (slotted) object directly, as
    :class:`uuid.UUID` does itself; ``tests/projection/test_ids.py`` holds it to uuid5.
    """
    digest = hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()
    value = _new(uuid.UUID)
    _set(value, "int", int.from_bytes(digest[:16]) & _VERSION_BITS | _VERSION_5)
    _set(value, "is_safe", _UNKNOWN)
    return value


def run_uuid(run_key: str | None, trace_id: str) -> uuid.UUID:
    if run_key:
        try:
            return uuid.UUID(run_key)
        except ValueError:
            return name_uuid(run_key)
    return uuid.UUID(hex=trace_id)


def placeholder_runs(named: Mapping[str, uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """The trace-id run of each named trace -> the run the trace turned out to name.

    Spans that end before the span naming their run are stored under the trace-id run
    (:func:`run_uuid` without a key); once the name arrives, a store folds that run into the
    named one. Traces whose named run is their trace-id run have nothing to fold.
    """
    return {
        placeholder: run_id
        for trace_id, run_id in named.items()
        if (placeholder := run_uuid(None, trace_id)) != run_id
    }


def step_uuid(trace_id: str, span_id: str) -> uuid.UUID:
    return name_uuid(trace_id + span_id)


def error_uuid(trace_id: str, span_id: str, index: int) -> uuid.UUID:
    return name_uuid(f"{trace_id}{span_id}:{index}")


def log_error_uuid(trace_id: str, span_id: str, time_ns: int, key: str) -> uuid.UUID:
    """An exception reported as a log record: its own id, never an event's of that span."""
    return name_uuid(f"{trace_id}{span_id}:log:{time_ns}:{key}")


def parse_run_ref(ref: str) -> uuid.UUID | None:
    """A full run UUID, a 32-hex trace id, or a run-id string as users typed it."""
    ref = ref.strip()
    try:
        return uuid.UUID(ref)
    except ValueError:
        return uuid.uuid5(NAMESPACE, ref) if ref else None
