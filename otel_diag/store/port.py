"""The storage port: everything the rest of otel-diag asks of a database, and nothing else.

The pipeline (exporter and receiver), the diagnosis queue and workers, the REST API, the
CLI, the alerts and ``/metrics`` all talk to a :class:`Storage` (every tenant) and its
:class:`TenantStore` (one tenant's data) through these methods, with typed rows
(:mod:`otel_diag.rows`) in and out. The SQL implementation (SQLite and PostgreSQL, with
their dialect differences inside it) sits behind it in :mod:`otel_diag.store.sql`; no
other package knows which implementation it talks to. :func:`otel_diag.store.open_storage`
picks one from the database URL.

Reports are grouped by consumer (CLI reports, the monitor's snapshot, alert signals, file
export, server gauges): each is answered by its own queries, none computes another's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from otel_diag.report_rows import (
    CostBreakdown,
    CostlyRun,
    DiagnosisOutcomes,
    Gauges,
    MonitorFrame,
    RunStats,
    UnpricedModel,
)
from otel_diag.rows import (
    ErrorGroup,
    ErrorRow,
    ErrorSummary,
    FailedRun,
    FailureCost,
    Report,
    Run,
    Step,
)

if TYPE_CHECKING:
    from otel_diag.config import Settings
    from otel_diag.projection.project import Projection
    from otel_diag.spans.record import SpanRecord
    from otel_diag.store.tenant_budget import BudgetWindow

GroupOrder = Literal["occurrences", "runs", "last_seen", "first_seen"]
ExportTable = Literal["errors", "runs", "steps"]
RunSort = Literal["started_at", "duration", "cost", "errors", "name"]
"""What :meth:`TenantStore.find_runs` can order by (the web console's sortable columns)."""


class AmbiguousRunError(LookupError):
    """A run id prefix that matches several runs."""


class TenantLimitReached(Exception):
    """A new tenant beyond the per-minute budget: retry after ``retry_after`` seconds."""

    def __init__(self, tenant: str, retry_after: float) -> None:
        super().__init__(
            f"too many new tenants this minute; tenant {tenant!r} is created later, retry"
        )
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Claim:
    """One run taken from the diagnosis queue by one worker; ``claimed_at`` makes the claim
    a unique token (a worker whose lease was taken over can no longer complete it)."""

    run_id: uuid.UUID
    worker_id: str
    claimed_at: datetime
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """Which rows ``otel-diag export`` writes."""

    since: datetime | None = None
    until: datetime | None = None
    run_id: uuid.UUID | None = None
    status: str | None = None
    agent: str | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Which runs the web console's Runs page lists, in which order (see
    :meth:`TenantStore.find_runs`). Every filter that is set must hold (AND); None / blank
    means no filter."""

    status: str | None = None
    agent: str | None = None
    service: str | None = None
    since: datetime | None = None
    """Runs started at or after this time."""
    until: datetime | None = None
    """Runs started before this time."""
    text: str | None = None
    """Case-insensitive substring of the run's name, agent, service or trace id."""
    sort: RunSort = "started_at"
    descending: bool = True
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class ActivityBucket:
    """Runs started in one time bucket (:meth:`TenantStore.activity`)."""

    start: datetime
    """The bucket's start in UTC: a multiple of the bucket length since the Unix epoch."""
    runs: int
    finished: int
    """Runs of the bucket that are ``ok`` or ``failed`` (not ``running``)."""
    failed: int
    cost_usd: float
    """Sum of the runs' ``cost_usd`` (unpriced runs count 0)."""


@dataclass(frozen=True, slots=True)
class ExportLayout:
    """The columns an export of one table has, in file order."""

    columns: tuple[str, ...]
    json_columns: frozenset[str] = frozenset()
    """Columns whose values come as JSON text (a JSON file holds them as objects)."""


class TenantStore(Protocol):
    """One tenant's data."""

    tenant: str

    # --- the pipeline --------------------------------------------------------------------
    def write_spans(self, records: Sequence[SpanRecord], now: datetime) -> Projection:
        """Project and store normalized spans in one transaction; returns what was written."""
        ...

    # --- runs, steps, errors, reports ----------------------------------------------------
    def resolve_run(self, ref: str | uuid.UUID) -> uuid.UUID | None:
        """A run from its UUID, trace id, run-id string or unique id prefix (or
        :class:`AmbiguousRunError`)."""
        ...

    def run(self, run_id: uuid.UUID) -> Run | None: ...

    def runs(
        self,
        *,
        status: str | None = None,
        since: datetime | None = None,
        agent: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        """Runs started since ``since``, newest first."""
        ...

    def find_runs(self, query: RunQuery) -> list[Run]:
        """The web console's run list: the runs matching every filter of ``query``, ordered
        by ``query.sort`` (``started_at``; ``duration`` = ended_at - started_at; ``cost`` =
        cost_usd; ``errors`` = error_count; ``name``), descending when ``query.descending``,
        rows without a value (an unpriced run's cost, a run's missing name) last in
        either direction, ties newest first then by id; ``query.limit`` rows from
        ``query.offset``. ``text`` matches case-insensitively anywhere in name, agent_name,
        service_name or trace_id (its ``%`` and ``_`` are plain characters)."""
        ...

    def steps(self, run_id: uuid.UUID) -> list[Step]: ...

    def errors(
        self, run_id: uuid.UUID, *, limit: int | None = None, offset: int = 0
    ) -> list[ErrorRow]:
        """A run's failures, oldest first, paged in the database."""
        ...

    def error_summary(self, run_id: uuid.UUID) -> ErrorSummary: ...

    def reports(
        self, run_id: uuid.UUID, *, limit: int | None = None, offset: int = 0
    ) -> list[Report]:
        """A run's diagnostic reports, newest first."""
        ...

    def report(self, report_id: uuid.UUID) -> Report | None: ...

    def latest_reports(self, limit: int = 10) -> list[Report]:
        """The newest ``limit`` diagnostic reports of any run, newest first (ties by id)."""
        ...

    def error_groups(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        service: str | None = None,
        agent: str | None = None,
        fingerprints: Sequence[str] | None = None,
        order: GroupOrder = "occurrences",
        limit: int = 50,
        offset: int = 0,
    ) -> list[ErrorGroup]: ...

    def new_error_groups(self, since: datetime, limit: int = 20) -> list[ErrorGroup]: ...

    def regressed_error_groups(
        self, since: datetime, quiet: timedelta, limit: int = 20
    ) -> list[ErrorGroup]: ...

    # --- the diagnosis queue -------------------------------------------------------------
    def claim_ready(
        self,
        *,
        worker_id: str,
        now: datetime,
        decision_wait: float,
        lease: float,
        limit: int,
        orphan_wait: float | None = None,
    ) -> list[Claim]: ...

    def claim_run(
        self, run_id: uuid.UUID, *, worker_id: str, now: datetime, lease: float
    ) -> Claim | None: ...

    def complete(
        self, claim: Claim, report: Report, *, fingerprint: str | None, now: datetime
    ) -> bool:
        """Store ``report`` and end the claim, only if the claim is still the caller's."""
        ...

    def release(self, claims: Sequence[Claim]) -> int: ...

    def mark_failed(self, claim: Claim, now: datetime) -> bool: ...

    def insert_report(self, report: Report) -> None: ...

    def find_reusable(self, fingerprint: str, since: datetime) -> Report | None: ...

    def spend_since(self, since: datetime) -> float: ...

    def queue_depth(self, now: datetime, decision_wait: float) -> dict[str, int]: ...

    def next_ready_at(self, decision_wait: float) -> datetime | None: ...

    # --- reports, by consumer --------------------------------------------------------------
    def run_stats(self, since: datetime | None, until: datetime | None) -> RunStats:
        """``otel-diag stats``: totals and the per-agent comparison."""
        ...

    def cost_breakdown(
        self, since: datetime | None, until: datetime | None, *, examples: int = 10
    ) -> CostBreakdown:
        """``otel-diag cost``: by model, agent and day, unpriced models apart."""
        ...

    def failure_cost(self, since: datetime | None, until: datetime | None) -> FailureCost:
        """``stats``, ``cost``, ``/metrics``, ``GET /api/cost/failures``: tokens and USD spent
        by failed runs started in ``[since, until)`` and by retried attempts (failed steps
        followed by a step of the same name in the same run) started in it, in total, by
        error category and by agent, exactly as :class:`~otel_diag.rows.FailureCost` defines
        them (runs: latest report's category or ``undiagnosed``; attempts: the attempt's
        own error's category, else the last error's raised in its subtree, else
        ``uncategorized``, its subtree's spend counted once under the outermost retried
        attempt; agent: the run's, ``(no agent)`` when none). Rows sorted by total USD descending, then name."""
        ...

    def monitor_snapshot(
        self, window: timedelta, now: datetime, *, errors: int = 10, diagnoses: int = 5
    ) -> MonitorFrame:
        """One frame of ``otel-diag monitor``."""
        ...

    def activity(self, since: datetime, until: datetime, bucket: timedelta) -> list[ActivityBucket]:
        """The web console's charts: runs started in ``[since, until)`` counted per bucket of
        ``bucket`` length (buckets aligned on the Unix epoch in UTC, so a bucket's start is
        ``floor(epoch_seconds / bucket_seconds) * bucket_seconds``), oldest first; buckets
        without runs are left out (the caller fills the gaps)."""
        ...

    def finished_runs(self, since: datetime) -> tuple[int, int]:
        """Alerts: (finished, failed) runs since ``since``."""
        ...

    def recent_failed_runs(self, since: datetime, limit: int = 5) -> list[FailedRun]:
        """Alerts: the failed runs that started at or after ``since``, newest first (at most
        ``limit``), each with its latest diagnostic report summarised
        (:class:`~otel_diag.rows.GroupDiagnosis`: the newest by ``created_at``, then by id;
        None while the run has none). The runs that tripped a failure-rate alert."""
        ...

    def costly_runs(
        self, since: datetime, threshold: float, limit: int = 10
    ) -> list[CostlyRun]: ...

    def cost_since(self, since: datetime) -> float: ...

    def unpriced_models(self, since: datetime) -> list[UnpricedModel]: ...

    def diagnosis_outcomes(self, since: datetime) -> DiagnosisOutcomes: ...

    def export_layout(self, table: ExportTable, *, trace_url: bool = False) -> ExportLayout:
        """The columns :meth:`export_batches` yields (``trace_url`` last when asked for)."""
        ...

    def export_count(self, table: ExportTable, flt: ExportFilter) -> int: ...

    def export_batches(
        self,
        table: ExportTable,
        flt: ExportFilter,
        batch_size: int = 5000,
        *,
        trace_url_template: str | None = None,
    ) -> Iterator[Sequence[Sequence[Any]]]: ...

    def export_csv(
        self,
        table: ExportTable,
        flt: ExportFilter,
        write: Callable[[bytes], Any],
        *,
        trace_url_template: str | None = None,
    ) -> int | None:
        """The export as CSV written by the database itself (None: not supported here)."""
        ...

    def gauges(self) -> Gauges:
        """``/metrics``: open runs, diagnosis states and spend, read at scrape time."""
        ...

    def write_readiness(self) -> str:
        """``"ok"`` when writes would succeed now, else what is wrong (safe to show anyone)."""
        ...

    def schema_revision(self) -> str | None:
        """The version of the tenant's storage layout (``otel-diag init`` shows it): the
        Alembic revision on SQL, the collections' layout version on MongoDB; None when the
        storage has none yet."""
        ...


class Storage(Protocol):
    """Every tenant's data behind one database URL."""

    settings: Settings
    base_url: str

    def tenant(self, tenant_id: str | None = None) -> TenantStore:
        """The tenant's store (created and migrated on first use); invalid ids raise
        :class:`~otel_diag.tenants.InvalidTenantError`."""
        ...

    def discover_tenants(self) -> list[str]:
        """Tenants the configuration names or storage holds."""
        ...

    def limit_new_tenants(self, per_minute: int, window: BudgetWindow | None = None) -> None:
        """Create at most ``per_minute`` new tenants per minute (0: no limit), for trusted-mode
        ingest where any client names its tenant; beyond it :meth:`tenant` raises an error
        with a ``retry_after`` (seconds). Processes given one shared ``window``
        (:meth:`BudgetWindow.shared <otel_diag.store.tenant_budget.BudgetWindow.shared>`)
        draw from one budget."""
        ...

    def tenants(self) -> list[str]:
        """Tenants this process has opened so far (no storage listing: cheap)."""
        ...

    def repair(self, tenant_id: str | None = None) -> bool:
        """Re-create a tenant's schema that vanished (restore, failover); True when back."""
        ...

    def is_transient(self, exc: BaseException) -> bool:
        """A failure worth a retry (the database is down, locked, restarting)."""
        ...

    def is_schema_missing(self, exc: BaseException) -> bool: ...

    def dispose(self) -> None: ...
