"""The rules every storage backend's reports share, written once (no database in here).

Labels of missing values, how rates and durations are rounded, when a reported cost
disagrees with the computed one, which fallbacks are choices, how long a run without its
root waits for a diagnosis, and the columns of each export, so that the SQL and MongoDB
implementations answer alike.
"""

from __future__ import annotations

from typing import Any

NO_AGENT = "(no agent)"
NO_MODEL = "(no model)"

MISMATCH_RELATIVE = 0.01
"""A reported cost disagrees with the computed one when they differ by more than 1 % ..."""
MISMATCH_ABSOLUTE = 1e-6
"""... and by more than a millionth of a dollar (rounding noise on tiny calls)."""

CHOSEN_FALLBACKS = frozenset({"mode_rules", "spend_cap"})
"""``fallback_reason`` values that are a configured choice, not a failed LLM diagnosis."""

EXCERPT_CHARS = 300
"""Characters of a message or root cause a dashboard row shows (the rest is marked as cut)."""

MAX_GROUP_NAMES = 10
"""Services and agents listed per error group (the busiest groups touch many)."""


def orphan_wait_for(decision_wait: float) -> float:
    """How long a run without its root span stays quiet before it is diagnosed anyway."""
    return max(60.0, 6 * decision_wait)


def rate(failed: int, finished: int) -> float | None:
    return round(failed / finished, 4) if finished else None


def rounded(value: Any, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def cost_mismatch(reported: float | None, computed: float | None) -> bool:
    """Whether a step's reported cost disagrees with the one computed from its tokens."""
    if reported is None or computed is None:
        return False
    gap = abs(reported - computed)
    return gap > MISMATCH_ABSOLUTE and gap > MISMATCH_RELATIVE * abs(computed)


# table -> (exported columns in file order, the time column filters apply to)
EXPORT_COLUMNS: dict[str, tuple[tuple[str, ...], str]] = {
    "errors": (
        (
            "id",
            "run_id",
            "step_id",
            "step_name",
            "source",
            "error_category",
            "error_type",
            "error_message",
            "stack_trace",
            "context",
            "attempt",
            "created_at",
            "trace_id",
            "span_id",
            "model",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "fingerprint",
        ),
        "created_at",
    ),
    "runs": (
        (
            "id",
            "trace_id",
            "name",
            "service_name",
            "agent_name",
            "status",
            "started_at",
            "ended_at",
            "step_count",
            "llm_calls",
            "tool_calls",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "unpriced_tokens",
            "error_count",
            "diagnosis_state",
            "diagnosed_at",
        ),
        "started_at",
    ),
    "steps": (
        (
            "id",
            "run_id",
            "trace_id",
            "span_id",
            "parent_span_id",
            "step_name",
            "kind",
            "status",
            "started_at",
            "ended_at",
            "duration_ms",
            "model",
            "provider",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "cost_reported_usd",
            "cost_computed_usd",
            "cost_source",
            "attempt",
            "error_type",
        ),
        "started_at",
    ),
}
EXPORT_JSON_COLUMNS = frozenset({"context"})
"""Columns holding JSON text (a JSON export parses them back into objects)."""


def export_columns(table: str, *, trace_url: bool = False) -> tuple[str, ...]:
    """Exported column names in file order (``trace_url`` last when a template is set)."""
    names = EXPORT_COLUMNS[table][0]
    return (*names, "trace_url") if trace_url else names
