"""The rows otel-diag stores and serves, one typed definition each.

The projection builds :class:`RunUpdate`, :class:`Step` and :class:`ErrorRow` values, the
store writes them and reads them back (with :class:`Run`, :class:`Report` and the aggregates
below), and the API, the CLI and the diagnosis read the same types: a misspelled field is a
type error, not a silent ``None``. Every row is a frozen dataclass with slots (cheap to
build, safe to share between threads). :func:`to_json` is the one way a row becomes JSON
(UUIDs and times as strings, times in UTC).

Status vocabularies are :class:`enum.StrEnum` members, so they compare equal to the stored
strings and serialize as them.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, dataclass_transform

from otel_diag.timewindow import as_utc


class RunStatus(enum.StrEnum):
    """A run is ``running`` until its root span ends, then ``ok`` or ``failed``."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"


class StepStatus(enum.StrEnum):
    OK = "ok"
    ERROR = "error"


class DiagnosisState(enum.StrEnum):
    """Where a failed run is in the diagnosis queue."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    ERROR = "error"


FINISHED = (RunStatus.OK, RunStatus.FAILED)
RULES_PROVIDER = "rules"
"""``llm_provider`` of a report written by the rules (no LLM, or the LLM failed)."""


def run_status(root_seen: bool, root_failed: bool, error_count: int) -> RunStatus:
    """The one rule for a run's status: the latest root decides; without a root, errors do.

    The store writes the same rule as SQL (see ``otel_diag.store.sql.writer``); this is its
    statement, used wherever a status is computed in Python.
    """
    if root_failed:
        return RunStatus.FAILED
    if root_seen:
        return RunStatus.OK
    return RunStatus.FAILED if error_count else RunStatus.RUNNING


@dataclass(frozen=True, slots=True)
class Run:
    """One agent or workflow run; its counts are derived from its steps and errors."""

    id: uuid.UUID
    trace_id: str
    name: str | None
    service_name: str | None
    agent_name: str | None
    status: str
    started_at: datetime
    ended_at: datetime | None
    root_seen: bool = False
    root_failed: bool = False
    step_count: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    unpriced_tokens: int = 0
    error_count: int = 0
    last_span_at: datetime | None = None
    diagnosis_state: str | None = None
    diagnosis_fingerprint: str | None = None
    diagnosis_claimed_at: datetime | None = None
    diagnosis_claimed_by: str | None = None
    diagnosed_at: datetime | None = None

    @property
    def duration_ms(self) -> float | None:
        if self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.started_at).total_seconds() * 1000.0)


_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def hot_row(cls: type[_T]) -> type[_T]:
    """A frozen row for the type checker, a plain slotted dataclass at run time.

    The projection builds a :class:`Step` per span and an :class:`ErrorRow` per failure:
    a frozen dataclass sets each field through ``object.__setattr__``, 5.9 us for a
    ``Step`` against 1.3 us unfrozen on the development machine. mypy still rejects any
    assignment to a field (PEP 681 ``frozen_default``), and the rows stay hashable.
    """
    return dataclass(slots=True, unsafe_hash=True)(cls)


@hot_row
class RunUpdate:
    """What one batch of spans says about a run: the projection's run row.

    The store merges it into the stored :class:`Run` (earliest start, latest end, the
    latest root's outcome and name); counts are not here, they come from the steps and
    errors written with it. ``root_failed`` is the outcome of the latest root span of the
    batch (by end time), meaningful only when ``root_seen``.
    """

    id: uuid.UUID
    trace_id: str
    name: str | None
    service_name: str | None
    agent_name: str | None
    started_at: datetime
    ended_at: datetime
    root_seen: bool = False
    root_failed: bool = False


@hot_row
class Step:
    """One agent, tool, LLM or activity span of a run."""

    id: uuid.UUID
    run_id: uuid.UUID
    trace_id: str
    span_id: str
    parent_span_id: str | None
    step_name: str
    kind: str
    status: str
    started_at: datetime
    ended_at: datetime
    duration_ms: float
    model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    cost_reported_usd: float | None = None
    cost_computed_usd: float | None = None
    cost_source: str | None = None
    attempt: int = 1
    error_type: str | None = None


@hot_row
class ErrorRow:
    """One failure occurrence (``error_logs``); see ``otel_diag.projection.propagation``."""

    id: uuid.UUID
    run_id: uuid.UUID
    step_id: uuid.UUID | None
    step_name: str | None
    source: str
    error_category: str
    error_type: str
    error_message: str
    stack_trace: str | None
    context: Mapping[str, Any]
    attempt: int
    created_at: datetime
    trace_id: str
    span_id: str
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    fingerprint: str = ""
    parent_span_id: str | None = None
    exception_key: str | None = None
    recorded_as: str | None = None
    propagated_to: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """A diagnosis of one failed run (``diagnostic_reports``), by an LLM or the rules."""

    id: uuid.UUID
    run_id: uuid.UUID
    root_cause_analysis: str
    recommended_actions: tuple[Mapping[str, Any], ...]
    resume_step: str | None
    confidence_score: float
    error_category: str | None
    llm_provider: str
    llm_model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float | None
    cost_usd: float | None
    fingerprint: str | None
    reused_from: uuid.UUID | None
    fallback_reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ErrorShape:
    """One error shape (fingerprint) within a run."""

    fingerprint: str
    error_type: str | None
    category: str | None
    count: int
    first_seen: datetime


@dataclass(frozen=True, slots=True)
class ErrorSummary:
    """A run's errors counted by category, source and shape.

    ``attempts`` counts failure occurrences (each retry attempt is one), ``failures`` the
    distinct shapes: three failed attempts of one call read "1 failure, 3 attempts".
    """

    total: int
    failures: int
    attempts: int
    by_category: Mapping[str, int]
    by_source: Mapping[str, int]
    fingerprints: tuple[ErrorShape, ...]


@dataclass(frozen=True, slots=True)
class GroupDiagnosis:
    """The latest diagnosis of a run (of an error group's latest run, of a failed run an
    alert names): what it says, without its actions and usage."""

    report_id: uuid.UUID
    run_id: uuid.UUID
    root_cause_analysis: str
    error_category: str | None
    resume_step: str | None
    confidence_score: float
    llm_provider: str
    llm_model: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FailedRun:
    """A failed run as an alert names it: what it was, and its latest diagnosis (if any)."""

    id: uuid.UUID
    trace_id: str
    name: str | None
    agent_name: str | None
    started_at: datetime
    ended_at: datetime | None
    error_count: int
    cost_usd: float | None
    latest_diagnosis: GroupDiagnosis | None = None
    """None until the run is diagnosed (an alert may fire before its diagnosis is stored)."""


@dataclass(frozen=True, slots=True)
class Spend:
    """What a set of runs or attempts spent: how many, tokens and USD (priced calls only)."""

    count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class FailureCostRow:
    """The cost of failure of one error category or one agent."""

    name: str
    failed_runs: Spend
    retried_attempts: Spend


@dataclass(frozen=True, slots=True)
class FailureCost:
    """Tokens and USD spent by failed runs, and by attempts that failed and were retried.

    A failed run's spend is the whole run's (every LLM call in it), under the category of
    its latest diagnosis (``undiagnosed`` until it has one). A retried attempt is a failed
    step followed by another step of the same name in the same run; its spend is its own
    and its descendants' (the LLM calls made inside the attempt), counted once even when
    retried attempts nest (under the outermost), under the attempt's category: its own
    error's, else that of the last error raised inside it. Agents are the runs' agents.
    """

    failed_runs: Spend
    retried_attempts: Spend
    by_category: tuple[FailureCostRow, ...]
    by_agent: tuple[FailureCostRow, ...]


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """One error shape across runs: where it happens, how often, since when."""

    fingerprint: str
    error_type: str
    error_category: str
    source: str
    step_name: str | None
    message: str
    """The message of the latest occurrence (redacted like every stored message)."""
    occurrences: int
    """Failure occurrences in the window (each retry attempt counts)."""
    runs_affected: int
    """Distinct runs with an occurrence in the window."""
    first_seen: datetime
    """First occurrence ever (not only in the window)."""
    last_seen: datetime
    latest_run_id: uuid.UUID
    latest_trace_id: str
    services: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    latest_diagnosis: GroupDiagnosis | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list, and where the next one starts (None on the last)."""

    items: Sequence[Any]
    limit: int
    offset: int
    next_offset: int | None = None
    total: int | None = field(default=None)


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def to_json(row: Any) -> dict[str, Any]:
    """A row (or any dataclass / mapping of rows) as JSON-ready values."""
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return {f.name: _plain(getattr(row, f.name)) for f in dataclasses.fields(row)}
    return {str(k): _plain(v) for k, v in dict(row).items()}
