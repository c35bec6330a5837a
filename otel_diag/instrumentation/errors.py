"""The emit side of error collection: classify an exception and record it on a span.

Every failure otel-diag sees in-process ends here: the decorators, ``run()``/``step()``, the
litellm instrumentor and the explicit ``log_*`` calls. Recording means an ``exception``
event (type, redacted message and stack trace, ``otel_diag.error.source`` and
``.category``, any context as ``otel_diag.error.context.*``), ``error.type`` and the two
``otel_diag.error.*`` attributes on the span, and status ERROR. The exporter turns each
event into an ``error_logs`` row.

Classification (:mod:`.classification`) looks at the exception object. The first span to
record an exception decides its classification; outer spans it escapes through reuse it, and
one span never records the same exception twice (both noted in one dunder attribute on the
exception).
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from otel_diag import semconv as sc
from otel_diag.classify import classify
from otel_diag.instrumentation.classification import classify_exception, type_name
from otel_diag.instrumentation.content import render
from otel_diag.instrumentation.tracing import get_tracer, internal_error
from otel_diag.redact import REDACTED, is_secret_key, safe_text

MAX_ERROR_CHARS = 16384
CONTEXT_VALUE_CHARS = 512
CONTEXT_MAX_ITEMS = 32
_STATUS_CHARS = 256


class LogSource(StrEnum):
    """Where an error came from (``otel_diag.error.source``)."""

    LLM = "llm"
    TOOL = "tool"
    VALIDATION = "validation"
    STORAGE = "storage"
    ACTIVITY = "activity"
    API = "api"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What was recorded: the classification and the (redacted) type and message."""

    source: str
    category: str
    error_type: str
    message: str


_MARK = "__otel_diag_recorded__"


class _Recorded:
    """How an exception was classified, and the spans that already hold its event.

    Kept on the exception itself (one dunder attribute): exceptions cannot be weakly
    referenced, an id-keyed table would mistake a new exception at a recycled address for
    an old one, and holding exceptions would keep their frames alive. Exceptions without a
    ``__dict__`` simply go unmarked (recorded again by outer spans, classified again).
    """

    __slots__ = ("category", "source", "spans")

    def __init__(self, source: str, category: str) -> None:
        self.source = source
        self.category = category
        self.spans: set[int] = set()

    @staticmethod
    def of(exc: BaseException) -> _Recorded | None:
        mark = getattr(exc, _MARK, None)
        return mark if isinstance(mark, _Recorded) else None

    @staticmethod
    def mark(exc: BaseException, source: str, category: str, span_id: int) -> None:
        mark = _Recorded.of(exc)
        if mark is None:
            mark = _Recorded(source, category)
            try:
                setattr(exc, _MARK, mark)
            except (AttributeError, TypeError):
                return
        mark.spans.add(span_id)


def _context_attributes(context: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not context:
        return out
    for i, (key, value) in enumerate(context.items()):
        if i >= CONTEXT_MAX_ITEMS:
            break
        name = sc.ERROR_CONTEXT_PREFIX + safe_text(key, 100)
        if is_secret_key(str(key)):
            # Blanked here, not only in the store: span attributes also go to Jaeger/Tempo.
            out[name] = REDACTED
        elif isinstance(value, bool | int | float):
            out[name] = value
        elif isinstance(value, str):
            out[name] = safe_text(value, CONTEXT_VALUE_CHARS)
        elif value is not None:
            out[name] = render(value, CONTEXT_VALUE_CHARS)
    return out


def record_error(
    span: Span,
    error: BaseException | str,
    *,
    step_kind: str | None = None,
    source: str | None = None,
    category: str | None = None,
    error_type: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> ErrorInfo:
    """Record ``error`` on ``span``: exception event, error attributes, status ERROR."""
    span_id = span.get_span_context().span_id
    if isinstance(error, BaseException):
        seen = _Recorded.of(error)
        if seen is not None and source is None and category is None:
            source, category = seen.source, seen.category
        src, cat = classify_exception(error, step_kind, source=source, category=category)
        etype = error_type or type_name(error)
        message = safe_text(str(error), MAX_ERROR_CHARS)
        # A span that records nothing (sampled out) gets no event: skip the stack formatting.
        already_here = (seen is not None and span_id in seen.spans) or not span.is_recording()
        stack = None if already_here else "".join(traceback.format_exception(error))
        _Recorded.mark(error, src, cat, span_id)
    else:
        message = safe_text(error, MAX_ERROR_CHARS)
        etype = error_type or "Error"
        src, cat = classify(etype, message, step_kind, source=source, category=category)
        already_here, stack = False, None
    if not already_here:
        attributes: dict[str, Any] = {
            sc.EXCEPTION_TYPE: etype,
            sc.EXCEPTION_MESSAGE: message,
            sc.ERROR_SOURCE: src,
            sc.ERROR_CATEGORY: cat,
        }
        if stack is not None:
            attributes[sc.EXCEPTION_STACKTRACE] = safe_text(stack, MAX_ERROR_CHARS)
        attributes.update(_context_attributes(context))
        span.add_event(sc.EXCEPTION_EVENT, attributes)
    span.set_attributes({sc.ERROR_TYPE: etype, sc.ERROR_SOURCE: src, sc.ERROR_CATEGORY: cat})
    description = f"{etype.rsplit('.', 1)[-1]}: {message}" if message else etype
    span.set_status(Status(StatusCode.ERROR, safe_text(description, _STATUS_CHARS)))
    return ErrorInfo(src, cat, etype, message)


# --- the public emit API (also exposed as ErrorCollector methods) ---------------------------


def _emit(error: BaseException | str, **kwargs: Any) -> ErrorInfo:
    """The emit API's one entry: telemetry failures are logged, never raised into the app."""
    try:
        return _emit_unguarded(error, **kwargs)
    except Exception:
        internal_error("the error emit API")
        source, category = kwargs.get("source"), kwargs.get("category")
        return ErrorInfo(
            source=str(source or "api"),
            category=str(category or "internal"),
            error_type=type(error).__name__ if isinstance(error, BaseException) else "Error",
            message="",
        )


def _emit_unguarded(
    error: BaseException | str,
    *,
    source: str | None,
    category: str | None,
    error_type: str | None = None,
    context: Mapping[str, Any] | None = None,
    attempt: int | None = None,
    span_name: str | None = None,
    step_kind: str | None = None,
    extra_attributes: Mapping[str, Any] | None = None,
    tenant_id: str | None = None,
) -> ErrorInfo:
    if source is not None:
        source = LogSource(source).value
    current = trace.get_current_span()
    if current.is_recording() and (span_name is None or _span_name(current) == span_name):
        step_kind = step_kind or _step_kind_of(current)
        if attempt is not None:
            current.set_attribute(sc.STEP_ATTEMPT, attempt)
        if extra_attributes:
            current.set_attributes(dict(extra_attributes))
        return record_error(
            current,
            error,
            step_kind=step_kind,
            source=source,
            category=category,
            error_type=error_type,
            context=context,
        )
    # Nothing is recording: a short span of its own, so the error is not lost.
    attributes: dict[str, Any] = dict(extra_attributes or {})
    if tenant_id is not None:
        attributes[sc.TENANT_ID] = tenant_id
    if span_name is not None:
        attributes[sc.STEP_NAME] = span_name
    if attempt is not None:
        attributes[sc.STEP_ATTEMPT] = attempt
    name = span_name or f"error {source or 'api'}"
    span = get_tracer().start_span(name, attributes=attributes)
    try:
        return record_error(
            span,
            error,
            step_kind=step_kind,
            source=source,
            category=category,
            error_type=error_type,
            context=context,
        )
    finally:
        span.end()


def _span_name(span: Span) -> str | None:
    name = getattr(span, "name", None)
    return name if isinstance(name, str) else None


def _step_kind_of(span: Span) -> str | None:
    """The step kind of an SDK span from its attributes (None for other spans)."""
    attrs = getattr(span, "attributes", None)
    if not isinstance(attrs, Mapping):
        return None
    operation = attrs.get(sc.GEN_AI_OPERATION_NAME)
    if isinstance(operation, str) and operation in sc.OPERATION_KINDS:
        return sc.OPERATION_KINDS[operation]
    return "activity" if sc.STEP_NAME in attrs else None


def log_error(
    source: LogSource | str,
    error: BaseException | str,
    *,
    category: str | None = None,
    error_type: str | None = None,
    context: Mapping[str, Any] | None = None,
    attempt: int | None = None,
    tenant_id: str | None = None,
) -> ErrorInfo:
    """Record an error (an exception, or a message) from ``source`` on the current span."""
    return _emit(
        error,
        source=source,
        category=category,
        error_type=error_type,
        context=context,
        attempt=attempt,
        tenant_id=tenant_id,
    )


def log_exception(
    exc: BaseException,
    *,
    source: LogSource | str | None = None,
    category: str | None = None,
    context: Mapping[str, Any] | None = None,
    attempt: int | None = None,
    tenant_id: str | None = None,
) -> ErrorInfo:
    """Record a caught exception on the current span; source and category are inferred."""
    return _emit(
        exc,
        source=source,
        category=category,
        context=context,
        attempt=attempt,
        tenant_id=tenant_id,
    )


def log_llm_error(
    exc: BaseException | str,
    *,
    model: str | None = None,
    provider: str | None = None,
    category: str | None = None,
    context: Mapping[str, Any] | None = None,
    attempt: int | None = None,
    tenant_id: str | None = None,
) -> ErrorInfo:
    """Record a failed LLM call (source ``llm``), with the model and provider if known."""
    extra: dict[str, Any] = {}
    if model:
        extra[sc.GEN_AI_REQUEST_MODEL] = model
    if provider:
        extra[sc.GEN_AI_PROVIDER_NAME] = provider
    return _emit(
        exc,
        source=LogSource.LLM,
        category=category,
        context=context,
        attempt=attempt,
        step_kind="llm",
        extra_attributes=extra,
        tenant_id=tenant_id,
    )


def log_tool_error(
    exc: BaseException | str,
    *,
    tool_name: str | None = None,
    category: str | None = None,
    context: Mapping[str, Any] | None = None,
    attempt: int | None = None,
    tenant_id: str | None = None,
) -> ErrorInfo:
    """Record a failed tool call (source ``tool``)."""
    ctx = dict(context or {})
    if tool_name:
        ctx.setdefault("tool.name", tool_name)
    return _emit(
        exc,
        source=LogSource.TOOL,
        category=category,
        context=ctx,
        attempt=attempt,
        step_kind="tool",
        tenant_id=tenant_id,
    )


def collect_error(
    activity: str,
    exc: BaseException | str,
    *,
    attempt: int = 1,
    source: LogSource | str | None = None,
    category: str | None = None,
    context: Mapping[str, Any] | None = None,
    tenant_id: str | None = None,
) -> ErrorInfo:
    """Record the failure of worker activity ``activity`` (attempt ``attempt``).

    Inside the activity's own span (a ``step()`` of the same name) the error goes there;
    otherwise a step span named for the activity is recorded, so the run shows the failed
    step with its attempt even when the worker has no span of its own.
    """
    return _emit(
        exc,
        source=source or LogSource.ACTIVITY,
        category=category,
        context=context,
        attempt=attempt,
        span_name=activity,
        step_kind="activity",
        tenant_id=tenant_id,
    )
