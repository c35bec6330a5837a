"""OTLP trace requests (protobuf or OTLP/JSON) -> :class:`SpanRecord`, pure functions.

The receiver's twin of :mod:`otel_diag.spans.from_sdk`: both produce the same normalized
model through :func:`normalize`, so the projection and the store never know which path a
span took. A span with an invalid id is rejected on its own, with a reason, and the rest of
the request is kept (OTLP ``partial_success``); only a request that cannot be parsed at all
raises :class:`MalformedRequest`.

OTLP/JSON is *not* protobuf's canonical JSON: trace and span ids are hex strings (``json_format``
would read them as base64 and silently produce other ids), enums may be integers or names,
64-bit integers may be numbers or strings, and unknown fields are ignored. So the JSON path
walks the decoded document itself.

Everything a sender controls is bounded: attributes and events per span, nesting depth and
array length of attribute values. A request with a million attributes on one span costs the
receiver :data:`MAX_ATTRIBUTES` entries, not a million.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_diag import semconv as sc
from otel_diag.spans.record import (
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    EventRecord,
    SpanRecord,
    normalize,
)

MAX_ATTRIBUTES = 128
"""Attributes kept per span, event or resource (the SDK's own default limit); rest dropped."""
MAX_EVENTS = 128
"""Events kept per span (exception events first); the others are dropped and reported."""
MAX_FUTURE_NS = 86_400 * 10**9
"""A timestamp more than a day ahead of the receiver's clock is read as "now": a sender's
year-2554 clock must not pin its runs to the top of every list and inside every window."""
MAX_VALUE_ITEMS = 128
"""Items kept per array / kvlist attribute value."""
MAX_DEPTH = 4
"""Nesting kept in array / kvlist values; deeper values become None."""
MAX_REASONS = 5

_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_KIND_CODES = {f"SPAN_KIND_{k.upper()}": i for i, k in enumerate(_KINDS)}
_STATUSES = (STATUS_UNSET, STATUS_OK, STATUS_ERROR)
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_INT64 = 2**63
_EMPTY: dict[str, Any] = {}


class MalformedRequest(ValueError):
    """The request body is not an OTLP trace request at all (answer INVALID_ARGUMENT / 400)."""


@dataclass(slots=True)
class Decoded:
    """The spans of one request that can be stored, and what was rejected and why."""

    records: list[SpanRecord] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    dropped_attributes: int = 0
    dropped_events: int = 0
    clamped_times: int = 0
    received_ns: int = field(default_factory=time.time_ns)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if reason not in self.reasons and len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)

    def time(self, ns: int) -> int:
        """``ns``, or the receive time when it is more than a day in the future (counted)."""
        if ns > self.received_ns + MAX_FUTURE_NS:
            self.clamped_times += 1
            return self.received_ns
        return ns

    def events(self, events: Any) -> Any:
        """At most :data:`MAX_EVENTS` of a span's events, exception events kept first."""
        if len(events) <= MAX_EVENTS:
            return events
        self.dropped_events += len(events) - MAX_EVENTS
        exceptions = [i for i, e in enumerate(events) if _event_name(e) == sc.EXCEPTION_EVENT]
        kept = set(exceptions[:MAX_EVENTS])
        for i in range(len(events)):
            if len(kept) >= MAX_EVENTS:
                break
            kept.add(i)
        return [events[i] for i in sorted(kept)]

    @property
    def warnings(self) -> list[str]:
        """What was kept only in part, for an OTLP ``partial_success`` message."""
        if not self.dropped_events:
            return []
        return [f"{self.dropped_events} span events beyond {MAX_EVENTS} per span were dropped"]

    @property
    def error_message(self) -> str:
        return "; ".join(self.reasons)


def _event_name(event: Any) -> Any:
    return event.get("name") if isinstance(event, dict) else getattr(event, "name", None)


def _check_ids(trace_id: bytes, span_id: bytes, parent: bytes) -> str | None:
    """Why these ids are unusable, or None when they are fine."""
    if len(trace_id) != 16:
        return f"invalid trace_id: {len(trace_id)} bytes, want 16"
    if len(span_id) != 8:
        return f"invalid span_id: {len(span_id)} bytes, want 8"
    if parent and len(parent) != 8:
        return f"invalid parent_span_id: {len(parent)} bytes, want 8 or none"
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return "invalid trace_id or span_id: all zero"
    return None


def _record(
    trace_id: bytes,
    span_id: bytes,
    parent: bytes,
    name: str,
    kind: int,
    start: int,
    end: int,
    status: int,
    status_message: str,
    attributes: Mapping[str, Any],
    events: tuple[EventRecord, ...],
    resource: tuple[str | None, str | None],
) -> SpanRecord:
    rec = SpanRecord(
        trace_id=trace_id.hex(),
        span_id=span_id.hex(),
        parent_span_id=parent.hex() if parent and parent != _ZERO_SPAN else None,
        name=name,
        kind=_KINDS[kind] if 0 <= kind < len(_KINDS) else "unspecified",
        start_ns=start,
        end_ns=end or start,
        status=_STATUSES[status] if 0 <= status < 3 else STATUS_UNSET,
        status_message=status_message or None,
        attributes=attributes,
        events=events,
        service_name=resource[0],
        resource_tenant=resource[1],
    )
    return normalize(rec)


def _resource_meta(attrs: Mapping[str, Any]) -> tuple[str | None, str | None]:
    service = attrs.get(sc.SERVICE_NAME)
    tenant = attrs.get(sc.TENANT_ID) or attrs.get(sc.RESOURCE_TENANT_ID)
    return (
        str(service) if service is not None else None,
        str(tenant) if tenant is not None and tenant != "" else None,
    )


# --- protobuf ------------------------------------------------------------------------------

_SCALARS = frozenset({"string_value", "bool_value", "int_value", "double_value", "bytes_value"})


def _pb_value(value: Any, depth: int = 0) -> Any:
    kind = value.WhichOneof("value")
    if kind in _SCALARS:
        return getattr(value, kind)
    if depth >= MAX_DEPTH:
        return None
    if kind == "array_value":
        return [_pb_value(v, depth + 1) for v in value.array_value.values[:MAX_VALUE_ITEMS]]
    if kind == "kvlist_value":
        return {
            kv.key: _pb_value(kv.value, depth + 1)
            for kv in value.kvlist_value.values[:MAX_VALUE_ITEMS]
        }
    return None


def _pb_attrs(kvs: Any, out: Decoded) -> dict[str, Any]:
    if not kvs:
        return _EMPTY
    if len(kvs) > MAX_ATTRIBUTES:
        out.dropped_attributes += len(kvs) - MAX_ATTRIBUTES
        kvs = kvs[:MAX_ATTRIBUTES]
    attrs: dict[str, Any] = {}
    for kv in kvs:  # scalars inline: a call per attribute is most of a span's decode cost
        value = kv.value
        kind = value.WhichOneof("value")
        attrs[kv.key] = getattr(value, kind) if kind in _SCALARS else _pb_value(value)
    return attrs


def records_from_request(request: ExportTraceServiceRequest) -> Decoded:
    """Every span of a parsed protobuf request, normalized; bad spans rejected one by one."""
    out = Decoded()
    for rs in request.resource_spans:
        meta = _resource_meta(_pb_attrs(rs.resource.attributes, out))
        for ss in rs.scope_spans:
            for sp in ss.spans:
                reason = _check_ids(sp.trace_id, sp.span_id, sp.parent_span_id)
                if reason is not None:
                    out.reject(reason)
                    continue
                start = out.time(sp.start_time_unix_nano)
                events = sp.events
                out.records.append(
                    _record(
                        sp.trace_id,
                        sp.span_id,
                        sp.parent_span_id,
                        sp.name,
                        sp.kind,
                        start,
                        out.time(sp.end_time_unix_nano),
                        sp.status.code,
                        sp.status.message,
                        _pb_attrs(sp.attributes, out),
                        tuple(
                            EventRecord(
                                e.name,
                                out.time(e.time_unix_nano) or start,
                                _pb_attrs(e.attributes, out),
                            )
                            for e in out.events(events)
                        )
                        if events
                        else (),
                        meta,
                    )
                )
    return out


def decode_protobuf(body: bytes | bytearray) -> Decoded:
    """Parse an ``ExportTraceServiceRequest`` body; :class:`MalformedRequest` if it is not one."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise MalformedRequest(f"not an OTLP ExportTraceServiceRequest: {exc}") from None
    return records_from_request(request)


# --- OTLP/JSON -----------------------------------------------------------------------------


class _BadSpan(ValueError):
    """One span of a JSON request is unusable (wrongly typed field); reject that span only."""


def _get(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _BadSpan(f"{what} must be a list")
    return value


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return _EMPTY
    if not isinstance(value, dict):
        raise _BadSpan(f"{what} must be an object")
    return value


def _json_int(value: Any, what: str, *, unsigned: bool = False) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str | float):
        raise _BadSpan(f"{what} must be an integer")
    try:
        number = int(value)
    except (ValueError, OverflowError):
        raise _BadSpan(f"{what} must be an integer") from None
    if isinstance(value, float) and value != number:
        raise _BadSpan(f"{what} must be an integer")
    low = 0 if unsigned else -_INT64
    high = 2 * _INT64 if unsigned else _INT64
    if not low <= number < high:
        raise _BadSpan(f"{what} out of range")
    return number


def _json_enum(value: Any, names: Mapping[str, int], what: str) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    return _json_int(value, what)


def _json_id(value: Any, size: int, what: str) -> bytes:
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise _BadSpan(f"invalid {what}: must be a hex string")
    if len(value) != 2 * size:
        raise _BadSpan(f"invalid {what}: {len(value)} hex chars, want {2 * size}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise _BadSpan(f"invalid {what}: not hex") from None


def _json_double(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            return float(value)  # "NaN", "Infinity" are allowed by the proto3 JSON mapping
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return None
    return None


def _json_value(value: Any, depth: int = 0) -> Any:
    if not isinstance(value, dict):
        return None
    if "stringValue" in value or "string_value" in value:
        text = _get(value, "stringValue", "string_value")
        return text if isinstance(text, str) else None
    if "boolValue" in value or "bool_value" in value:
        flag = _get(value, "boolValue", "bool_value")
        return flag if isinstance(flag, bool) else None
    if "intValue" in value or "int_value" in value:
        try:
            return _json_int(_get(value, "intValue", "int_value"), "intValue")
        except _BadSpan:
            return None
    if "doubleValue" in value or "double_value" in value:
        return _json_double(_get(value, "doubleValue", "double_value"))
    if "bytesValue" in value or "bytes_value" in value:
        raw = _get(value, "bytesValue", "bytes_value")
        if not isinstance(raw, str):
            return None
        standard = raw.replace("-", "+").replace("_", "/")  # proto3 JSON accepts both alphabets
        try:
            return base64.b64decode(standard + "=" * (-len(standard) % 4))
        except (binascii.Error, ValueError):
            return None
    if depth >= MAX_DEPTH:
        return None
    if "arrayValue" in value or "array_value" in value:
        inner = _get(value, "arrayValue", "array_value")
        values = inner.get("values") if isinstance(inner, dict) else None
        if not isinstance(values, list):
            return []
        return [_json_value(v, depth + 1) for v in values[:MAX_VALUE_ITEMS]]
    if "kvlistValue" in value or "kvlist_value" in value:
        inner = _get(value, "kvlistValue", "kvlist_value")
        values = inner.get("values") if isinstance(inner, dict) else None
        if not isinstance(values, list):
            return {}
        return _json_attrs(values[:MAX_VALUE_ITEMS], None, depth + 1)
    return None


def _json_attrs(kvs: Any, out: Decoded | None, depth: int = 0) -> dict[str, Any]:
    if not kvs:
        return _EMPTY
    if not isinstance(kvs, list):
        raise _BadSpan("attributes must be a list")
    if len(kvs) > MAX_ATTRIBUTES and out is not None:
        out.dropped_attributes += len(kvs) - MAX_ATTRIBUTES
        kvs = kvs[:MAX_ATTRIBUTES]
    attrs: dict[str, Any] = {}
    for kv in kvs:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            attrs[kv["key"]] = _json_value(kv.get("value"), depth)
    return attrs


def _json_span(sp: Any, meta: tuple[str | None, str | None], out: Decoded) -> SpanRecord:
    if not isinstance(sp, dict):
        raise _BadSpan("span must be an object")
    trace_id = _json_id(_get(sp, "traceId", "trace_id"), 16, "traceId")
    span_id = _json_id(_get(sp, "spanId", "span_id"), 8, "spanId")
    parent = _json_id(_get(sp, "parentSpanId", "parent_span_id"), 8, "parentSpanId")
    reason = _check_ids(trace_id, span_id, parent)
    if reason is not None:
        raise _BadSpan(reason.replace("trace_id", "traceId").replace("span_id", "spanId"))
    name = sp.get("name") or ""
    if not isinstance(name, str):
        raise _BadSpan("name must be a string")
    start = out.time(
        _json_int(_get(sp, "startTimeUnixNano", "start_time_unix_nano"), "startTime", unsigned=True)
    )
    end = out.time(
        _json_int(_get(sp, "endTimeUnixNano", "end_time_unix_nano"), "endTime", unsigned=True)
    )
    status = _obj(sp.get("status"), "status")
    message = status.get("message") or ""
    events: list[EventRecord] = []
    for ev in out.events(_list(sp.get("events"), "events")):
        ev = _obj(ev, "event")
        ev_name = ev.get("name") or ""
        time_ns = out.time(
            _json_int(_get(ev, "timeUnixNano", "time_unix_nano"), "event time", unsigned=True)
        )
        events.append(
            EventRecord(str(ev_name), time_ns or start, _json_attrs(ev.get("attributes"), out))
        )
    return _record(
        trace_id,
        span_id,
        parent,
        name,
        _json_enum(sp.get("kind"), _KIND_CODES, "kind"),
        start,
        end,
        _json_enum(status.get("code"), _STATUS_NAMES, "status.code"),
        message if isinstance(message, str) else str(message),
        _json_attrs(sp.get("attributes"), out),
        tuple(events),
        meta,
    )


def records_from_json(document: Any) -> Decoded:
    """Every span of a decoded OTLP/JSON document; :class:`MalformedRequest` if its shape is wrong."""
    if not isinstance(document, dict):
        raise MalformedRequest("OTLP/JSON request must be an object")
    out = Decoded()
    try:
        for rs in _list(_get(document, "resourceSpans", "resource_spans"), "resourceSpans"):
            rs = _obj(rs, "resourceSpans[]")
            resource = _obj(rs.get("resource"), "resource")
            meta = _resource_meta(_json_attrs(resource.get("attributes"), out))
            for ss in _list(_get(rs, "scopeSpans", "scope_spans"), "scopeSpans"):
                ss = _obj(ss, "scopeSpans[]")
                for sp in _list(ss.get("spans"), "spans"):
                    try:
                        out.records.append(_json_span(sp, meta, out))
                    except _BadSpan as exc:
                        out.reject(str(exc))
    except _BadSpan as exc:
        raise MalformedRequest(f"invalid OTLP/JSON request: {exc}") from None
    return out


def decode_json(body: bytes | bytearray | str) -> Decoded:
    """Parse an OTLP/JSON body; :class:`MalformedRequest` if it is not JSON or not OTLP-shaped."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedRequest(f"invalid JSON: {exc}") from None
    return records_from_json(document)
