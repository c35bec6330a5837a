"""``ReadableSpan`` (OpenTelemetry SDK) -> :class:`SpanRecord`, a pure function."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from otel_diag import semconv as sc
from otel_diag.spans.record import (
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    EventRecord,
    SpanRecord,
    normalize,
)

_STATUS = {StatusCode.UNSET: STATUS_UNSET, StatusCode.OK: STATUS_OK, StatusCode.ERROR: STATUS_ERROR}
_KINDS = {kind: kind.name.lower() for kind in SpanKind}  # Enum.name is a slow property
_EMPTY: Mapping[str, Any] = {}
# Spans of one process share one Resource object: remember the last one's fields. One
# tuple, swapped atomically, so concurrent exporters never pair a resource with another's.
_last: tuple[object, tuple[str | None, str | None]] = (None, (None, None))


def _resource_fields(resource: object) -> tuple[str | None, str | None]:
    """(service.name, tenant) of a resource, computed once per distinct Resource object."""
    global _last
    last_resource, last_fields = _last
    if resource is last_resource:
        return last_fields
    attrs = getattr(resource, "attributes", None) or _EMPTY
    service = attrs.get(sc.SERVICE_NAME)
    tenant = attrs.get(sc.TENANT_ID) or attrs.get(sc.RESOURCE_TENANT_ID)
    fields = (
        str(service) if service is not None else None,
        str(tenant) if tenant is not None else None,
    )
    _last = (resource, fields)
    return fields


def _plain(attributes: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The attributes as a plain dict, read once.

    The SDK hands out ``BoundedAttributes`` behind a ``MappingProxyType``: every ``get`` and
    every item of an iteration is a Python-level call (a missing key raises and catches
    ``KeyError``). Normalizing, projecting and the own-telemetry check look at a span's
    attributes several times, so one copy costs less than the lookups it saves.
    """
    return dict(attributes) if attributes else _EMPTY


def from_readable_span(span: ReadableSpan) -> SpanRecord | None:
    """Build the normalized record; None for a span without a valid context."""
    ctx = span.context
    if ctx is None or not ctx.is_valid:
        return None
    parent = span.parent
    service, tenant = _resource_fields(span.resource)
    status = span.status
    start = span.start_time or 0
    raw_events = span.events
    events = (
        tuple(EventRecord(e.name, e.timestamp or start, _plain(e.attributes)) for e in raw_events)
        if raw_events
        else ()
    )
    rec = SpanRecord(
        trace_id=f"{ctx.trace_id:032x}",
        span_id=f"{ctx.span_id:016x}",
        parent_span_id=f"{parent.span_id:016x}" if parent is not None and parent.is_valid else None,
        name=span.name or "",
        kind=_KINDS.get(span.kind) or span.kind.name.lower(),
        start_ns=start,
        end_ns=span.end_time or start,
        status=_STATUS.get(status.status_code, STATUS_UNSET),
        status_message=status.description,
        attributes=_plain(span.attributes),
        events=events,
        service_name=service,
        resource_tenant=tenant,
    )
    return normalize(rec)
