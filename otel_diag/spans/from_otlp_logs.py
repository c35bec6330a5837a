"""OTLP log requests -> exception records: an exception reported as a log record.

The semantic conventions let instrumentations report an exception as a log record (with
``exception.type`` / ``exception.message`` / ``exception.stacktrace`` attributes and the
trace context of the span it happened in) instead of an ``exception`` span event. Such a
record becomes a :class:`SpanRecord` of kind :data:`KIND_LOG` carrying one ``exception``
event, so the projection stores it exactly like the event would be stored, and the
propagation rules fold it into the span's own event when both arrive.

Other log records are acknowledged and counted, never stored (otel-diag is not a log
store). An exception record without trace context names no span and no run: it is
counted and dropped with a reason rather than stored as a run of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otel_diag import semconv as sc
from otel_diag.spans.from_otlp import (
    Decoded,
    MalformedRequest,
    _BadSpan,
    _get,
    _json_attrs,
    _json_id,
    _json_int,
    _list,
    _obj,
    _pb_attrs,
    _resource_meta,
)
from otel_diag.spans.record import KIND_LOG, STATUS_UNSET, EventRecord, SpanRecord, normalize

UNLINKED = "exception log records without a trace and span id were dropped"
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


@dataclass(slots=True)
class DecodedLogs(Decoded):
    """A log request: exception records to store, and what was only counted."""

    log_records: int = 0
    """Every log record of the request."""
    other_logs: int = 0
    """Records without an exception: acknowledged, counted, not stored."""
    unlinked: int = 0
    """Exception records without trace context: dropped (no span, no run to attach to)."""


def _is_exception(attrs: dict[str, Any]) -> bool:
    return bool(attrs.get(sc.EXCEPTION_TYPE) or attrs.get(sc.EXCEPTION_MESSAGE))


def _exception_record(
    out: DecodedLogs,
    trace_id: bytes,
    span_id: bytes,
    time_ns: int,
    attrs: dict[str, Any],
    scope: str,
    meta: tuple[str | None, str | None],
) -> None:
    """Count one log record; keep it when it is an exception with a span to attach to."""
    out.log_records += 1
    if not _is_exception(attrs):
        out.other_logs += 1
        return
    if len(trace_id) != 16 or len(span_id) != 8 or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        out.unlinked += 1
        out.reject(UNLINKED)
        return
    at = out.time(time_ns)
    exception: dict[str, Any] = {
        key: attrs[key]
        for key in (sc.EXCEPTION_TYPE, sc.EXCEPTION_MESSAGE, sc.EXCEPTION_STACKTRACE)
        if key in attrs
    }
    record = SpanRecord(
        trace_id=trace_id.hex(),
        span_id=span_id.hex(),
        parent_span_id=None,
        name=str(attrs.get("code.function.name") or attrs.get("code.function") or scope or "log"),
        kind=KIND_LOG,
        start_ns=at,
        end_ns=at,
        status=STATUS_UNSET,
        status_message=None,
        attributes={k: v for k, v in attrs.items() if k not in exception},
        events=(EventRecord(sc.EXCEPTION_EVENT, at, exception),),
        service_name=meta[0],
        resource_tenant=meta[1],
    )
    out.records.append(normalize(record))


def logs_from_request(request: ExportLogsServiceRequest) -> DecodedLogs:
    out = DecodedLogs()
    for rl in request.resource_logs:
        meta = _resource_meta(_pb_attrs(rl.resource.attributes, out))
        for sl in rl.scope_logs:
            for lr in sl.log_records:
                _exception_record(
                    out,
                    lr.trace_id,
                    lr.span_id,
                    lr.time_unix_nano or lr.observed_time_unix_nano,
                    _pb_attrs(lr.attributes, out),
                    sl.scope.name,
                    meta,
                )
    return out


def decode_logs_protobuf(body: bytes | bytearray) -> DecodedLogs:
    """Parse an ``ExportLogsServiceRequest``; :class:`MalformedRequest` if it is not one."""
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise MalformedRequest(f"not an OTLP ExportLogsServiceRequest: {exc}") from None
    return logs_from_request(request)


def logs_from_json(document: Any) -> DecodedLogs:
    if not isinstance(document, dict):
        raise MalformedRequest("OTLP/JSON request must be an object")
    out = DecodedLogs()
    try:
        for rl in _list(_get(document, "resourceLogs", "resource_logs"), "resourceLogs"):
            rl = _obj(rl, "resourceLogs[]")
            resource = _obj(rl.get("resource"), "resource")
            meta = _resource_meta(_json_attrs(resource.get("attributes"), out))
            for sl in _list(_get(rl, "scopeLogs", "scope_logs"), "scopeLogs"):
                sl = _obj(sl, "scopeLogs[]")
                scope = _obj(sl.get("scope"), "scope").get("name") or ""
                for lr in _list(_get(sl, "logRecords", "log_records"), "logRecords"):
                    try:
                        lr = _obj(lr, "logRecord")
                        time_ns = _json_int(
                            _get(lr, "timeUnixNano", "time_unix_nano"),
                            "timeUnixNano",
                            unsigned=True,
                        ) or _json_int(
                            _get(lr, "observedTimeUnixNano", "observed_time_unix_nano"),
                            "observedTimeUnixNano",
                            unsigned=True,
                        )
                        _exception_record(
                            out,
                            _json_id(_get(lr, "traceId", "trace_id"), 16, "traceId"),
                            _json_id(_get(lr, "spanId", "span_id"), 8, "spanId"),
                            time_ns,
                            _json_attrs(lr.get("attributes"), out),
                            str(scope),
                            meta,
                        )
                    except _BadSpan as exc:
                        out.log_records += 1
                        out.reject(f"log record: {exc}")
    except _BadSpan as exc:
        raise MalformedRequest(f"invalid OTLP/JSON request: {exc}") from None
    return out


def decode_logs_json(body: bytes | bytearray | str) -> DecodedLogs:
    """Parse an OTLP/JSON logs body; :class:`MalformedRequest` if it is not one."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedRequest(f"invalid JSON: {exc}") from None
    return logs_from_json(document)


__all__ = [
    "UNLINKED",
    "DecodedLogs",
    "decode_logs_json",
    "decode_logs_protobuf",
    "logs_from_json",
    "logs_from_request",
]
