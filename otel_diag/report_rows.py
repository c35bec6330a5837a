"""The store's reports as typed rows: ``otel-diag stats`` and ``otel-diag cost``.

The SQL and MongoDB stores compute these figures differently (grouped queries, streamed
documents) and hand them to one roll-up (:mod:`otel_diag.store.rollups`), so the two
cannot disagree on a shape; the CLI, the web console and the JSON output read the same
fields. Like :mod:`otel_diag.rows`, every row is a frozen dataclass with slots and becomes
JSON through :func:`otel_diag.rows.to_json`.
"""

from __future__ import annotations

import uuid
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
