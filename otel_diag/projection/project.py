"""Spans -> rows for ``runs``, ``steps`` and ``error_logs``: one pure function.

The rows are the typed ones of :mod:`otel_diag.rows`: a :class:`~otel_diag.rows.RunUpdate`
per run (what the batch knows of its bounds and root), a :class:`~otel_diag.rows.Step` per
agent/tool/LLM/activity span, an :class:`~otel_diag.rows.ErrorRow` per recorded failure.

The store writes what this returns and derives run aggregates (call counts, tokens, cost,
error count) from the stored steps and errors, so re-sending a span can never count twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from otel_diag import semconv as sc
from otel_diag.classify import classify, fingerprint
from otel_diag.projection.cost import Cost, compute_cost
from otel_diag.projection.ids import error_uuid, log_error_uuid, run_uuid, step_uuid
from otel_diag.projection.propagation import EVENT, LOG, STATUS, exception_key, status_key
from otel_diag.redact import redact_mapping, safe_text
from otel_diag.rows import ErrorRow, RunUpdate, Step, StepStatus
from otel_diag.spans.record import STATUS_ERROR, SpanRecord

# Plain strings, not the enum members: database drivers may write an Enum by its name.
_STEP_OK, _STEP_ERROR = StepStatus.OK.value, StepStatus.ERROR.value
CONTEXT_VALUE_CHARS = 512
CONTEXT_MAX_ITEMS = 32
_CONTEXT_PREFIXES = ("http.", "url.", "server.", "db.", "rpc.", "gen_ai.", "llm.", "otel_diag.")
_CONTEXT_SKIP = frozenset(
    {
        sc.RUN_ID,
        sc.TENANT_ID,
        sc.ERROR_SOURCE,
        sc.ERROR_CATEGORY,
        sc.EXCEPTION_TYPE,
        sc.EXCEPTION_MESSAGE,
        sc.EXCEPTION_STACKTRACE,
        "exception.escaped",
    }
)


def ns_to_dt(ns: int, _from: Any = datetime.fromtimestamp) -> datetime:
    return _from(ns / 1e9, UTC)


@dataclass(slots=True)
class Projection:
    """Rows for one tenant's batch. ``runs`` holds one upsert row per run id.

    ``parents`` (trace id -> span id -> parent span id) covers every span of the traces
    that have errors in the batch: the store needs it to tell an exception propagating
    through ancestors from a new failure (:mod:`otel_diag.projection.propagation`).
    """

    runs: dict[uuid.UUID, RunUpdate] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    errors: list[ErrorRow] = field(default_factory=list)
    parents: dict[str, dict[str, str | None]] = field(default_factory=dict)


def trace_runs_in(records: Iterable[SpanRecord]) -> dict[str, uuid.UUID]:
    """trace id -> run id, for traces where some span names its run."""
    out: dict[str, uuid.UUID] = {}
    for rec in records:
        if rec.run_key and rec.trace_id not in out:
            out[rec.trace_id] = run_uuid(rec.run_key, rec.trace_id)
    return out


def _context(rec: SpanRecord, event_attrs: Mapping[str, Any]) -> dict[str, Any]:
    ctx: dict[str, Any] = {"span.name": rec.name, "span.kind": rec.kind}
    if rec.service_name:
        ctx["service.name"] = rec.service_name
    if rec.status_message and not event_attrs:
        ctx["status.message"] = rec.status_message
    for source in (event_attrs, rec.attributes):
        for key, value in source.items():
            if len(ctx) >= CONTEXT_MAX_ITEMS:
                break
            if key in _CONTEXT_SKIP or key in ctx:
                continue
            if key.startswith(sc.ERROR_CONTEXT_PREFIX):
                ctx[key[len(sc.ERROR_CONTEXT_PREFIX) :]] = value
            elif source is event_attrs or key.startswith(_CONTEXT_PREFIXES):
                ctx[key] = value
    return redact_mapping(ctx, value_limit=CONTEXT_VALUE_CHARS, max_items=CONTEXT_MAX_ITEMS + 8)


def _error_row(
    rec: SpanRecord,
    run_id: uuid.UUID,
    step_id: uuid.UUID | None,
    index: int,
    time_ns: int,
    attrs: Mapping[str, Any],
    cost: Cost | None,
    max_chars: int,
    recorded_as: str = EVENT,
) -> ErrorRow:
    raw_type = attrs.get(sc.EXCEPTION_TYPE) or rec.error_type
    error_type = safe_text(raw_type, 256) if raw_type else "SpanError"
    raw_message = attrs.get(sc.EXCEPTION_MESSAGE)
    if raw_message is None:
        raw_message = rec.status_message or f"span {rec.name!r} ended with status ERROR"
    message = safe_text(raw_message, max_chars)
    if recorded_as == STATUS:  # the span's status is all there is
        status = safe_text(rec.status_message, max_chars) if rec.status_message else None
        key = status_key(status, rec.error_type)
    else:
        key = exception_key(error_type, message)
    stack = attrs.get(sc.EXCEPTION_STACKTRACE)
    source_hint = attrs.get(sc.ERROR_SOURCE) or rec.error_source
    category_hint = attrs.get(sc.ERROR_CATEGORY) or rec.error_category
    # A run's own workflow span is not a step, but its errors are the run's activity.
    kind = rec.step_kind or ("activity" if rec.operation == sc.OP_INVOKE_WORKFLOW else None)
    source, category = classify(
        error_type,
        message,
        kind,
        source=str(source_hint) if source_hint in sc.ERROR_SOURCES else None,
        category=safe_text(category_hint, 32).lower() if category_hint else None,
    )
    if recorded_as == LOG:
        error_id = log_error_uuid(rec.trace_id, rec.span_id, time_ns, key)
    else:
        error_id = error_uuid(rec.trace_id, rec.span_id, index)
    return ErrorRow(
        id=error_id,
        run_id=run_id,
        step_id=step_id,
        step_name=safe_text(rec.step_name or rec.name, 256),
        source=source,
        error_category=category,
        error_type=error_type,
        error_message=message,
        stack_trace=safe_text(stack, max_chars) if stack else None,
        context=_context(rec, attrs),
        attempt=rec.attempt,
        created_at=ns_to_dt(time_ns),
        trace_id=rec.trace_id,
        span_id=rec.span_id,
        model=rec.model,
        input_tokens=rec.input_tokens,
        output_tokens=rec.output_tokens,
        cost_usd=cost.cost_usd if cost is not None else None,
        fingerprint=fingerprint(source, category, error_type, rec.step_name, message),
        parent_span_id=rec.parent_span_id,
        exception_key=key,
        recorded_as=recorded_as,
        propagated_to=None,
    )


def _service(rec: SpanRecord) -> str | None:
    return safe_text(rec.service_name, 256) if rec.service_name else None


class _RunFold:
    """A run's bounds and root as the batch's spans are folded in (times in ns).

    Mutable scratch, not a row: :meth:`row` makes the :class:`RunUpdate` once every span
    of the batch is in. ``root_end`` tells which root is the latest (retries of a workflow
    in new traces share the run, and the latest root decides its outcome).
    """

    __slots__ = (
        "agent_name",
        "end",
        "id",
        "name",
        "root_end",
        "root_failed",
        "root_seen",
        "service_name",
        "start",
        "trace_id",
    )

    def __init__(self, run_id: uuid.UUID, rec: SpanRecord) -> None:
        self.id = run_id
        self.trace_id = rec.trace_id
        self.name: str | None = None
        self.service_name = _service(rec)
        self.agent_name: str | None = None
        self.start = rec.start_ns
        self.end = rec.end_ns
        self.root_seen = False
        self.root_failed = False
        self.root_end = 0

    def add(self, rec: SpanRecord) -> None:
        start, end = rec.start_ns, rec.end_ns
        if start < self.start:
            self.start = start
        if end > self.end:
            self.end = end
        if rec.is_root:
            if not self.root_seen or end >= self.root_end:
                self.root_failed = rec.status == STATUS_ERROR
                self.root_end = end
            self.root_seen = True
            self.name = safe_text(rec.run_name or rec.name, 256)
            self.trace_id = rec.trace_id
            if rec.service_name:
                self.service_name = _service(rec)
        elif self.name is None and rec.run_name:
            self.name = safe_text(rec.run_name, 256)
        if self.agent_name is None and rec.step_kind == "agent" and rec.step_name:
            self.agent_name = safe_text(rec.step_name, 256)

    def row(self) -> RunUpdate:
        return RunUpdate(
            id=self.id,
            trace_id=self.trace_id,
            name=self.name,
            service_name=self.service_name,
            agent_name=self.agent_name,
            started_at=ns_to_dt(self.start),
            ended_at=ns_to_dt(self.end),
            root_seen=self.root_seen,
            root_failed=self.root_failed,
        )


def _step_row(
    rec: SpanRecord, kind: str, run_id: uuid.UUID, cost: Cost | None, failed: bool
) -> Step:
    return Step(
        id=step_uuid(rec.trace_id, rec.span_id),
        run_id=run_id,
        trace_id=rec.trace_id,
        span_id=rec.span_id,
        parent_span_id=rec.parent_span_id,
        step_name=safe_text(rec.step_name or rec.name, 256),
        kind=kind,
        status=_STEP_ERROR if failed else _STEP_OK,
        started_at=ns_to_dt(rec.start_ns),
        ended_at=ns_to_dt(rec.end_ns),
        duration_ms=max(0.0, (rec.end_ns - rec.start_ns) / 1e6),
        model=rec.model,
        provider=rec.provider,
        input_tokens=rec.input_tokens,
        output_tokens=rec.output_tokens,
        cost_usd=cost.cost_usd if cost else None,
        cost_reported_usd=cost.reported_usd if cost else None,
        cost_computed_usd=cost.computed_usd if cost else None,
        cost_source=cost.source if cost else None,
        attempt=rec.attempt,
        error_type=safe_text(rec.error_type, 256) if failed and rec.error_type else None,
    )


def project(
    records: Iterable[SpanRecord],
    trace_runs: Mapping[str, uuid.UUID],
    *,
    max_field_chars: int = 16384,
) -> Projection:
    """Rows for ``records``; ``trace_runs`` resolves spans that do not name their run."""
    out = Projection()
    folds: dict[uuid.UUID, _RunFold] = {}
    run_ids: dict[tuple[str | None, str], uuid.UUID] = {}  # ids are costly to construct
    links: dict[str, dict[str, str | None]] = {}
    for rec in records:
        if rec.is_own_telemetry:
            continue
        is_log = rec.is_log
        if not is_log:  # a log record names its span but does not know the span's parent
            trace_links = links.get(rec.trace_id)
            if trace_links is None:
                trace_links = links[rec.trace_id] = {}
            trace_links[rec.span_id] = rec.parent_span_id
        key = (rec.run_key, rec.trace_id)
        run_id = run_ids.get(key)  # type: ignore[assignment]
        if run_id is None:
            if rec.run_key:
                run_id = run_uuid(rec.run_key, rec.trace_id)
            else:
                run_id = trace_runs.get(rec.trace_id) or run_uuid(None, rec.trace_id)
            run_ids[key] = run_id
        fold = folds.get(run_id)
        if fold is None:
            fold = folds[run_id] = _RunFold(run_id, rec)
        fold.add(rec)
        failed = rec.failed
        cost = None
        step_id = None
        kind = rec.step_kind
        if kind is not None and not is_log:
            if kind == "llm" or rec.reported_cost is not None or rec.input_tokens:
                cost = compute_cost(
                    rec.model, rec.provider, rec.input_tokens, rec.output_tokens, rec.reported_cost
                )
            step = _step_row(rec, kind, run_id, cost, failed)
            step_id = step.id
            out.steps.append(step)
        if not failed:
            continue
        index = 0
        for event in rec.events:
            if event.name == sc.EXCEPTION_EVENT:
                out.errors.append(
                    _error_row(
                        rec,
                        run_id,
                        step_id,
                        index,
                        event.time_ns,
                        event.attributes,
                        cost,
                        max_field_chars,
                        LOG if is_log else EVENT,
                    )
                )
                index += 1
        if index == 0:
            out.errors.append(
                _error_row(rec, run_id, step_id, 0, rec.end_ns, {}, cost, max_field_chars, STATUS)
            )
    out.runs = {run_id: fold.row() for run_id, fold in folds.items()}
    out.parents = {e.trace_id: links.get(e.trace_id, {}) for e in out.errors}
    return out
