"""The one internal span model that both ingest paths produce.

The SDK exporter (``ReadableSpan``) and the OTLP receiver (protobuf / JSON) each have a pure
function that yields :class:`SpanRecord`; everything downstream (projection, store,
diagnosis) sees only this. Meanings that several conventions spell differently are resolved
once here, through :data:`otel_diag.semconv.ALIASES`, so no later stage looks at a foreign
attribute name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from otel_diag import semconv as sc

STATUS_UNSET = "unset"
STATUS_OK = "ok"
STATUS_ERROR = "error"
KIND_LOG = "log"
"""The kind of a record made from an OTLP log record that reports an exception: it names a
span (by trace and span id) without being one, so it is never a step or a run's root."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    name: str
    time_ns: int
    attributes: Mapping[str, Any]


@dataclass(slots=True)
class SpanRecord:
    """A span, normalized. Ids are lowercase hex (32 / 16 chars); times are Unix ns."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str
    status_message: str | None
    attributes: Mapping[str, Any]
    events: tuple[EventRecord, ...]
    service_name: str | None
    resource_tenant: str | None = None
    # normalized meanings (filled by :func:`normalize`)
    run_key: str | None = None
    run_name: str | None = None
    tenant_id: str | None = None
    step_kind: str | None = None
    step_name: str | None = None
    operation: str | None = None
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    reported_cost: float | None = None
    attempt: int = 1
    agent_name: str | None = None
    error_source: str | None = None
    error_category: str | None = None
    error_type: str | None = None

    @property
    def is_root(self) -> bool:
        return self.parent_span_id is None and self.kind != KIND_LOG

    @property
    def is_log(self) -> bool:
        return self.kind == KIND_LOG

    @property
    def model(self) -> str | None:
        return self.response_model or self.request_model

    @property
    def failed(self) -> bool:
        """A span failed if its status is ERROR or it carries an exception event."""
        if self.status == STATUS_ERROR:
            return True
        if not self.events:  # most spans: skip building a generator
            return False
        return any(e.name == sc.EXCEPTION_EVENT for e in self.events)

    @property
    def is_own_telemetry(self) -> bool:
        """otel-diag's own diagnosis spans: never stored, never diagnosed."""
        return bool(self.attributes.get(sc.DIAGNOSIS_MARKER))


# attribute key -> (meaning, rank): one pass over a span's attributes resolves every
# meaning, instead of probing each alias of each meaning (most spans carry few attributes).
_ALIAS_INDEX: dict[str, tuple[str, int]] = {
    key: (meaning, rank) for meaning, keys in sc.ALIASES.items() for rank, key in enumerate(keys)
}


def resolve_aliases(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """meaning -> value of the best-ranked alias present (empty values are absent)."""
    found: dict[str, Any] = {}
    ranks: dict[str, int] = {}
    index = _ALIAS_INDEX
    for key, value in attrs.items():
        hit = index.get(key)
        if hit is None or value is None or value == "":
            continue
        meaning, rank = hit
        if meaning not in ranks or rank < ranks[meaning]:
            ranks[meaning] = rank
            found[meaning] = value
    return found


def _as_str(value: Any, limit: int = 256) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    elif isinstance(value, list | tuple):
        value = ",".join(str(v) for v in value)
    text = str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text[:limit] or None


def _as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(float(value)) if isinstance(value, str) else int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    # Bounded so a sum over a run still fits a BIGINT column.
    return number if 0 <= number < 2**40 else None


def _as_attempt(value: Any) -> int:
    """An attempt number that fits an INTEGER column (1 when missing or absurd)."""
    number = _as_int(value)
    return number if number is not None and 1 <= number < 2**31 else 1


def _as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number == number and 0 <= number < 1e9 else None


def _step_kind(rec: SpanRecord, found: Mapping[str, Any]) -> str | None:
    if rec.operation in sc.OPERATION_KINDS:
        return sc.OPERATION_KINDS[rec.operation]
    oi = found.get("openinference_kind")
    if isinstance(oi, str) and oi.upper() in sc.OPENINFERENCE_KINDS:
        return sc.OPENINFERENCE_KINDS[oi.upper()]
    tl = found.get("traceloop_kind")
    if isinstance(tl, str) and tl.lower() in sc.TRACELOOP_KINDS:
        return sc.TRACELOOP_KINDS[tl.lower()]
    if rec.step_name is not None:
        return "activity"
    if rec.request_model is not None:
        return "llm"
    return None


def _text(value: Any, limit: int = 256) -> str | None:
    """Fast path of :func:`_as_str` for the common case of a clean, short str."""
    if value is None:
        return None
    if type(value) is str and len(value) <= limit and "\x00" not in value:
        return value or None
    return _as_str(value, limit)


def normalize(rec: SpanRecord) -> SpanRecord:
    """Fill the normalized meanings of ``rec`` from its attributes (in place; returns it).

    ``rec`` is freshly built: a span that carries no attribute of any known meaning (an
    HTTP or database call) keeps the field defaults, and costs one pass over its keys.

    Wrongly typed values (a token count that is not a number, a list where a string was
    expected) become None rather than errors: one broken attribute must not lose a span.
    """
    attrs = rec.attributes
    found = resolve_aliases(attrs) if attrs else {}
    run_name = attrs.get(sc.RUN_NAME) if attrs else None
    rec.run_name = _text(run_name) if run_name is not None else None
    if not found:  # an HTTP or DB span: no meaning to resolve, it is never a step
        rec.tenant_id = rec.resource_tenant
        return rec
    get = found.get
    rec.operation = _text(get("operation"), 64)
    rec.provider = _text(get("provider"), 64)
    rec.request_model = _text(get("request_model"), 128)
    rec.response_model = _text(get("response_model"), 128)
    rec.input_tokens = _as_int(get("input_tokens"))
    rec.output_tokens = _as_int(get("output_tokens"))
    cost = _as_float(get("cost"))
    if cost is None and ("input_cost" in found or "output_cost" in found):
        parts = [_as_float(get("input_cost")), _as_float(get("output_cost"))]
        if any(p is not None for p in parts):
            cost = sum(p for p in parts if p is not None)
    rec.reported_cost = cost
    rec.step_name = _text(get("step_name"))
    attempt = get("attempt")
    rec.attempt = _as_attempt(attempt) if attempt is not None else 1
    rec.run_key = _text(get("run_id"))
    rec.tenant_id = _text(get("tenant_id"), 128) or rec.resource_tenant
    rec.agent_name = _text(get("agent_name"))
    rec.error_source = _text(get("error_source"), 32)
    rec.error_category = _text(get("error_category"), 32)
    rec.error_type = _text(get("error_type"))
    rec.step_kind = _step_kind(rec, found)
    entity = _text(get("traceloop_entity"))
    if entity and rec.agent_name is None and rec.step_kind == "agent":
        rec.agent_name = entity
    if rec.step_kind is not None and rec.step_name is None:
        if rec.step_kind == "tool":
            rec.step_name = _text(get("tool_name")) or entity or _text(rec.name)
        elif rec.step_kind == "agent":
            rec.step_name = rec.agent_name or _text(rec.name)
        elif rec.step_kind == "llm":
            rec.step_name = _llm_step_name(rec)
        else:
            rec.step_name = entity or _text(rec.name)
    return rec


def _llm_step_name(rec: SpanRecord) -> str | None:
    """``chat gpt-4o-mini`` for an LLM span an instrumentation named ``openai.chat``.

    Only a library's generic name (:data:`otel_diag.semconv.LIBRARY_SPAN_NAME`) is replaced,
    and only when the span says its operation and model; a name someone chose is kept.
    """
    model = rec.request_model or rec.response_model
    if rec.operation and model and sc.LIBRARY_SPAN_NAME.fullmatch(rec.name):
        return _text(f"{rec.operation} {model}")
    return _text(rec.name)
