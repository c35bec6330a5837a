"""Response models of the REST API: they document the OpenAPI schema and fix the field set.

Rows come from the storage port as typed rows (:mod:`otel_diag.rows`), made JSON by
:func:`otel_diag.rows.to_json`; these models pick the public fields and add ``trace_url``
(a link to the trace in Jaeger or Tempo, from ``OTEL_DIAG_TRACE_URL_TEMPLATE``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Run(BaseModel):
    id: str
    trace_id: str
    name: str | None = None
    service_name: str | None = None
    agent_name: str | None = None
    status: str
    started_at: str
    ended_at: str | None = None
    step_count: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    unpriced_tokens: int = 0
    error_count: int = 0
    last_span_at: str | None = None
    diagnosis_state: str | None = None
    diagnosed_at: str | None = None
    trace_url: str | None = None


class RunPage(BaseModel):
    runs: list[Run]
    limit: int
    offset: int
    next_offset: int | None = None
    """Offset of the next page, or null on the last page."""


class ErrorLog(BaseModel):
    id: str
    run_id: str
    step_id: str | None = None
    step_name: str | None = None
    source: str
    error_category: str
    error_type: str
    error_message: str
    stack_trace: str | None = None
    context: dict[str, Any] = {}
    attempt: int = 1
    created_at: str
    trace_id: str
    span_id: str
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    fingerprint: str
    parent_span_id: str | None = None
    recorded_as: str | None = None
    """``event`` (an exception event), ``status`` (an ERROR span status) or ``log``."""
    propagated_to: list[str] | None = None
    """Steps the exception propagated through (recorded again there), innermost first."""
    trace_url: str | None = None


class ErrorPage(BaseModel):
    run_id: str
    errors: list[ErrorLog]
    total: int
    limit: int
    offset: int
    next_offset: int | None = None


class ErrorShape(BaseModel):
    fingerprint: str
    error_type: str | None = None
    category: str | None = None
    count: int
    first_seen: str


class ErrorSummary(BaseModel):
    run_id: str
    total: int
    failures: int
    """Distinct error shapes: three failed attempts of one call are one failure."""
    attempts: int
    """Failure occurrences, each retry attempt counted (equals ``total``)."""
    by_category: dict[str, int]
    by_source: dict[str, int]
    fingerprints: list[ErrorShape]
    trace_url: str | None = None


class GroupDiagnosis(BaseModel):
    """The latest diagnosis of a run that failed with the group's error."""

    report_id: str
    run_id: str
    root_cause_analysis: str
    error_category: str | None = None
    resume_step: str | None = None
    confidence_score: float
    llm_provider: str
    llm_model: str | None = None
    created_at: str


class ErrorGroup(BaseModel):
    """One error shape (fingerprint) across runs."""

    fingerprint: str
    error_type: str
    error_category: str
    source: str
    step_name: str | None = None
    message: str
    """Message of the latest occurrence."""
    occurrences: int
    """Failure occurrences in the window (retry attempts count; propagated copies do not)."""
    runs_affected: int
    first_seen: str
    """First occurrence ever, not only in the window."""
    last_seen: str
    latest_run_id: str
    latest_trace_id: str
    latest_trace_url: str | None = None
    services: list[str]
    agents: list[str]
    latest_diagnosis: GroupDiagnosis | None = None


class ErrorGroupPage(BaseModel):
    groups: list[ErrorGroup]
    limit: int
    offset: int
    next_offset: int | None = None


class DiagnosticReport(BaseModel):
    """A stored diagnostic report as the API serves it (what it says is
    :class:`otel_diag.diagnosis.schema.Diagnosis`; fields added by later schema versions
    pass through)."""

    model_config = ConfigDict(extra="allow")

    id: str
    run_id: str
    root_cause_analysis: str
    recommended_actions: list[dict[str, Any]]
    resume_step: str | None = None
    confidence_score: float
    error_category: str | None = None
    llm_provider: str
    llm_model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None
    fingerprint: str | None = None
    reused_from: str | None = None
    """The report this one copies (same error fingerprints, within OTEL_DIAG_DIAGNOSIS_TTL)."""
    fallback_reason: str | None = None
    """Why the rules wrote it (``llm_provider='rules'``: ``mode_rules``, ``no_credentials``,
    ``timeout``, ``invalid_json``, ...), or why an LLM answer was amended (``unknown_step``:
    the LLM's resume step was not a step of the run and was replaced)."""
    created_at: str


class DiagnosticReportPage(BaseModel):
    """A run's diagnostic reports, newest first, one page of them."""

    run_id: str
    reports: list[DiagnosticReport]
    limit: int
    offset: int
    next_offset: int | None = None
    """Offset of the next page, or null on the last page."""
    trace_url: str | None = None


class Spend(BaseModel):
    count: int
    """Failed runs, or retried attempts."""
    input_tokens: int
    output_tokens: int
    cost_usd: float
    """Priced calls only (tokens of models without a price count in the tokens, not here)."""


class FailureCostRow(BaseModel):
    name: str
    """An error category (a failed run's: its latest diagnosis', ``undiagnosed`` before one)
    or an agent."""
    failed_runs: Spend
    retried_attempts: Spend


class FailureCost(BaseModel):
    """Tokens and USD spent by failed runs and by retried attempts (failed steps followed by
    another step of the same name in the run, with the LLM calls made inside them)."""

    since: str | None = None
    until: str
    failed_runs: Spend
    retried_attempts: Spend
    by_category: list[FailureCostRow]
    by_agent: list[FailureCostRow]


class Problem(BaseModel):
    detail: str
