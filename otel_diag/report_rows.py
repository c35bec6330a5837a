"""The store's reports as typed rows: ``stats``, ``cost``, a ``monitor`` frame, what the
alert rules read and the ``/metrics`` gauges.

The SQL and MongoDB stores compute these figures differently (grouped queries, streamed
documents) and hand them to one roll-up (:mod:`otel_diag.store.rollups`), so the two
cannot disagree on a shape; the CLI, the web console, the alerts and the JSON output read
the same fields. Like :mod:`otel_diag.rows`, every row is a frozen dataclass with slots and becomes
JSON through :func:`otel_diag.rows.to_json`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RunTotals:
    """All runs started in a window. ``failure_rate`` is failed / finished (None: none finished)."""

    runs: int
    failed: int
    running: int
    failure_rate: float | None
    errors: int
    llm_calls: int
    tool_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    unpriced_tokens: int


@dataclass(frozen=True, slots=True)
class AgentStats:
    """One agent's runs in a window: the per-agent comparison of ``stats`` and Agents."""

    agent: str
    runs: int
    failed: int
    running: int
    failure_rate: float | None
    p50_ms: float | None
    """Nearest-rank percentiles of finished runs' durations (None: none finished)."""
    p95_ms: float | None
    errors: int
    llm_calls: int
    tool_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    """None when none of its runs has a priced call."""
    unpriced_tokens: int


@dataclass(frozen=True, slots=True)
class CategoryCount:
    """Errors of one source and category in a window, and the runs they hit."""

    source: str
    category: str
    errors: int
    runs: int


@dataclass(frozen=True, slots=True)
class RunStats:
    """``otel-diag stats``: totals, agents busiest first, the top error categories."""

    totals: RunTotals
    agents: tuple[AgentStats, ...]
    errors_by_category: tuple[CategoryCount, ...]


@dataclass(frozen=True, slots=True)
class CostTotal:
    """LLM calls, tokens and USD of a window (``unpriced_tokens``: of models without a price)."""

    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    unpriced_tokens: int


@dataclass(frozen=True, slots=True)
class ModelCost:
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    unpriced_tokens: int


@dataclass(frozen=True, slots=True)
class DayCost:
    day: str
    """``YYYY-MM-DD``, UTC."""
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    unpriced_tokens: int


@dataclass(frozen=True, slots=True)
class AgentCost:
    """One agent's spend over the runs started in the window (its runs' stored totals)."""

    agent: str
    runs: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    unpriced_tokens: int


@dataclass(frozen=True, slots=True)
class UnpricedUsage:
    """Tokens of a model litellm has no price for: listed apart, never counted as $0."""

    model: str
    calls: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class CostMismatch:
    """Steps of a model whose reported cost disagrees with the computed one, both summed."""

    model: str
    steps: int
    reported_usd: float
    computed_usd: float


@dataclass(frozen=True, slots=True)
class MismatchExample:
    run_id: uuid.UUID
    step_name: str | None
    model: str | None
    started_at: datetime
    input_tokens: int | None
    output_tokens: int | None
    reported_usd: float | None
    computed_usd: float | None


@dataclass(frozen=True, slots=True)
class CostMismatches:
    by_model: tuple[CostMismatch, ...]
    """Most mismatched steps first."""
    examples: tuple[MismatchExample, ...]
    """The most recent mismatched steps."""


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """``otel-diag cost``: by model (costliest first), agent and day, unpriced apart."""

    total: CostTotal
    by_model: tuple[ModelCost, ...]
    by_agent: tuple[AgentCost, ...]
    by_day: tuple[DayCost, ...]
    unpriced: tuple[UnpricedUsage, ...]
    """Most tokens first."""
    mismatches: CostMismatches


@dataclass(frozen=True, slots=True)
class MinuteCount:
    minute: str
    """``YYYY-MM-DD HH:MM``, UTC."""
    runs: int
    failed: int


@dataclass(frozen=True, slots=True)
class ModelRate:
    """One model's LLM calls in the monitor's window, and its spend per minute."""

    model: str
    calls: int
    cost_usd: float
    cost_per_minute: float
    tokens: int
    unpriced_calls: int


@dataclass(frozen=True, slots=True)
class ErrorExcerpt:
    """A recent error, its message cut to the dashboard's excerpt (the cut is marked)."""

    created_at: datetime
    run_id: uuid.UUID
    trace_id: str
    step_name: str | None
    source: str
    error_category: str
    error_type: str
    error_message: str


@dataclass(frozen=True, slots=True)
class DiagnosisExcerpt:
    """A recent diagnosis, its root cause cut to the dashboard's excerpt."""

    created_at: datetime
    run_id: uuid.UUID
    llm_provider: str
    llm_model: str | None
    confidence_score: float
    error_category: str | None
    resume_step: str | None
    root_cause_analysis: str


@dataclass(frozen=True, slots=True)
class MonitorFrame:
    """One frame of ``otel-diag monitor``: runs started in the last ``window_minutes``."""

    now: datetime
    window_minutes: float
    runs: int
    failed: int
    running: int
    runs_per_minute: float
    failure_rate: float | None
    cost_usd: float
    cost_per_minute: float
    pending_diagnoses: int
    per_minute: tuple[MinuteCount, ...]
    """Minutes with runs only, oldest first."""
    models: tuple[ModelRate, ...]
    """Costliest first; models without a priced call last."""
    latest_errors: tuple[ErrorExcerpt, ...]
    latest_diagnoses: tuple[DiagnosisExcerpt, ...]


@dataclass(frozen=True, slots=True)
class CostlyRun:
    """A run over a ``cost_per_run`` alert's threshold."""

    id: uuid.UUID
    name: str | None
    agent_name: str | None
    trace_id: str
    cost_usd: float


@dataclass(frozen=True, slots=True)
class UnpricedModel:
    """A model that used tokens without a known price (``unpriced_model`` alerts)."""

    model: str
    calls: int
    tokens: int


@dataclass(frozen=True, slots=True)
class DiagnosisOutcomes:
    """Diagnosis health over a window (``diagnosis_failures`` alerts).

    ``llm_fallbacks``: reports the rules wrote because the LLM call failed, timed out or
    answered something invalid (a fallback reason other than the rules mode or the spend
    cap, which are choices rather than failures); ``failed_runs``: runs whose diagnosis was
    given up; ``fallback_reasons``: every rules report by reason.
    """

    reports: int
    llm_fallbacks: int
    failed_runs: int
    fallback_reasons: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Gauges:
    """``/metrics`` at scrape time: open runs, runs by diagnosis state, reports by provider,
    the LLM spend of all stored diagnoses."""

    runs_open: int
    diagnosis_states: Mapping[str, int]
    reports: Mapping[str, int]
    diagnosis_cost_usd: float
