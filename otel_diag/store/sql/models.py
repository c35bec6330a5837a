"""SQLAlchemy 2 typed models: runs, steps, error_logs, diagnostic_reports.

UUID keys (native on PostgreSQL), JSON stored as JSONB on PostgreSQL, timestamps always UTC
(``timezone=True``). The schema itself is created and upgraded by the Alembic migrations in
``otel_diag/store/migrations``; these models are what the code reads and writes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONType = JSON().with_variant(JSONB(), "postgresql")
UTCDateTime = DateTime(timezone=True)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        uuid.UUID: Uuid(),
        datetime: UTCDateTime,
        dict[str, Any]: JSONType,
        list[dict[str, Any]]: JSONType,
        list[str]: JSONType,
    }


class Run(Base):
    """One agent/workflow run; aggregates are derived from its steps and errors."""

    __tablename__ = "runs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str | None] = mapped_column(String(256))
    service_name: Mapped[str | None] = mapped_column(String(256))
    agent_name: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    root_seen: Mapped[bool] = mapped_column(Boolean, default=False)
    root_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    step_count: Mapped[int] = mapped_column(default=0)
    llm_calls: Mapped[int] = mapped_column(default=0)
    tool_calls: Mapped[int] = mapped_column(default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    unpriced_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    error_count: Mapped[int] = mapped_column(default=0)
    last_span_at: Mapped[datetime]
    diagnosis_state: Mapped[str | None] = mapped_column(String(16))
    diagnosis_fingerprint: Mapped[str | None] = mapped_column(String(64))
    diagnosis_claimed_at: Mapped[datetime | None]
    diagnosis_claimed_by: Mapped[str | None] = mapped_column(String(128))
    diagnosed_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_runs_started_at", "started_at"),
        Index("ix_runs_status_last_span", "status", "last_span_at"),
        Index("ix_runs_diagnosis_queue", "diagnosis_state", "last_span_at"),
    )


class Step(Base):
    """One agent, tool, LLM or activity span (not every HTTP or DB span)."""

    __tablename__ = "steps"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    run_id: Mapped[uuid.UUID]
    trace_id: Mapped[str] = mapped_column(String(32))
    span_id: Mapped[str] = mapped_column(String(16))
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    step_name: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    duration_ms: Mapped[float] = mapped_column(Float)
    model: Mapped[str | None] = mapped_column(String(128))
    provider: Mapped[str | None] = mapped_column(String(64))
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    cost_reported_usd: Mapped[float | None] = mapped_column(Float)
    cost_computed_usd: Mapped[float | None] = mapped_column(Float)
    cost_source: Mapped[str | None] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(default=1)
    error_type: Mapped[str | None] = mapped_column(String(256))

    __table_args__ = (
        Index("ix_steps_run_started", "run_id", "started_at"),
        Index("ix_steps_started_model", "started_at", "model"),
    )


class ErrorLog(Base):
    """One failure occurrence: an exception event, an exception log record, or an ERROR
    span without either. An exception recorded again by the spans it propagated through is
    not a second row: those spans are listed in ``propagated_to`` (innermost first) and
    kept in ``error_propagations`` (see :mod:`otel_diag.projection.propagation`)."""

    __tablename__ = "error_logs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    run_id: Mapped[uuid.UUID]
    step_id: Mapped[uuid.UUID | None]
    step_name: Mapped[str | None] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(16))
    error_category: Mapped[str] = mapped_column(String(32))
    error_type: Mapped[str] = mapped_column(String(256))
    error_message: Mapped[str] = mapped_column(Text)
    stack_trace: Mapped[str | None] = mapped_column(Text)
    context: Mapped[dict[str, Any]]
    attempt: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    trace_id: Mapped[str] = mapped_column(String(32))
    span_id: Mapped[str] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(128))
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    fingerprint: Mapped[str] = mapped_column(String(64))
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    exception_key: Mapped[str | None] = mapped_column(String(16))
    recorded_as: Mapped[str | None] = mapped_column(String(8))
    """``event``, ``status`` or ``log``: how the failure was reported."""
    propagated_to: Mapped[list[str] | None] = mapped_column(JSONType)
    """Step names of the ancestor spans that recorded the same exception, innermost first."""

    __table_args__ = (
        Index("ix_error_logs_run_created", "run_id", "created_at"),
        Index("ix_error_logs_run_fingerprint_created", "run_id", "fingerprint", "created_at"),
        Index("ix_error_logs_created", "created_at"),
        Index("ix_error_logs_fingerprint_created", "fingerprint", "created_at"),
        Index("ix_error_logs_trace", "trace_id"),
    )


class ErrorPropagation(Base):
    """A recording of an exception that repeats an ``error_logs`` row (``origin_id``).

    Kept so that spans arriving later, in any order, are judged against everything the
    trace recorded, and so that a re-sent copy stays a copy. Not a failure: nothing counts
    these rows.
    """

    __tablename__ = "error_propagations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    origin_id: Mapped[uuid.UUID]
    trace_id: Mapped[str] = mapped_column(String(32))
    span_id: Mapped[str] = mapped_column(String(16))
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    step_name: Mapped[str | None] = mapped_column(String(256))
    exception_key: Mapped[str] = mapped_column(String(16))
    recorded_as: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_error_propagations_trace", "trace_id"),)


class TraceRun(Base):
    """Which named run a trace belongs to (trace assembly).

    Spans that do not carry ``otel_diag.run.id`` (children that end first, other services'
    spans) join the run their trace was tied to; a primary-key lookup per batch.
    """

    __tablename__ = "trace_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the trace id
    run_id: Mapped[uuid.UUID]


class ErrorGroupHour(Base):
    """An error group's occurrences, and the runs it last hit, in one hour, per service and
    agent: kept by the writer so that error-group pages need not count distinct runs
    (:mod:`otel_diag.store.sql.group_hours`)."""

    __tablename__ = "error_group_hours"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    hour: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    """Hours since the epoch (UTC)."""
    service_name: Mapped[str] = mapped_column(String(256), primary_key=True)
    """'' when the run's service is unknown (key columns cannot be NULL)."""
    agent_name: Mapped[str] = mapped_column(String(256), primary_key=True)
    occurrences: Mapped[int] = mapped_column(BigInteger)
    runs_last: Mapped[int] = mapped_column(BigInteger)
    """Runs whose last occurrence of the group is in this hour."""

    __table_args__ = (Index("ix_error_group_hours_hour", "hour"),)


class DiagnosticReport(Base):
    """A diagnosis of one failed run, by an LLM or by the rules."""

    __tablename__ = "diagnostic_reports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    run_id: Mapped[uuid.UUID]
    root_cause_analysis: Mapped[str] = mapped_column(Text)
    recommended_actions: Mapped[list[dict[str, Any]]]
    resume_step: Mapped[str | None] = mapped_column(String(256))
    confidence_score: Mapped[float] = mapped_column(Float)
    error_category: Mapped[str | None] = mapped_column(String(32))
    llm_provider: Mapped[str] = mapped_column(String(64))
    llm_model: Mapped[str | None] = mapped_column(String(128))
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    latency_ms: Mapped[float | None] = mapped_column(Float)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    reused_from: Mapped[uuid.UUID | None]
    fallback_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_diagnostic_reports_run_created", "run_id", "created_at"),
        Index("ix_diagnostic_reports_fingerprint", "fingerprint", "created_at"),
        Index("ix_diagnostic_reports_created", "created_at"),
    )


runs: Table = Run.__table__  # type: ignore[assignment]
steps: Table = Step.__table__  # type: ignore[assignment]
error_logs: Table = ErrorLog.__table__  # type: ignore[assignment]
diagnostic_reports: Table = DiagnosticReport.__table__  # type: ignore[assignment]
trace_runs: Table = TraceRun.__table__  # type: ignore[assignment]
error_propagations: Table = ErrorPropagation.__table__  # type: ignore[assignment]
error_group_hours: Table = ErrorGroupHour.__table__  # type: ignore[assignment]
