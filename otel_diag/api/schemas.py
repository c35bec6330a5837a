"""Response models of the REST API: they document the OpenAPI schema and fix the field set.

Rows come from :mod:`otel_diag.store.queries` as JSON-ready dicts; these models pick the
public fields and add ``trace_url`` (a link to the trace in Jaeger or Tempo, from
``OTEL_DIAG_TRACE_URL_TEMPLATE``).
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
    by_category: dict[str, int]
    by_source: dict[str, int]
    fingerprints: list[ErrorShape]
    trace_url: str | None = None


class Diagnosis(BaseModel):
    """A stored diagnostic report (fields added by later schema versions pass through)."""

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
    created_at: str


class Problem(BaseModel):
    detail: str
