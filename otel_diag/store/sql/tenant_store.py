"""One tenant's SQL database as a :class:`~otel_diag.store.port.TenantStore`.

Each method opens a connection from the tenant's pool for the duration of the call (a
generator, for a streamed export, for as long as it is consumed) and delegates to the
module that speaks the SQL of that concern; nothing here knows a dialect.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from otel_diag.projection.project import Projection, project, trace_runs_in
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
from otel_diag.spans.record import SpanRecord
from otel_diag.store.port import (
    ActivityBucket,
    Claim,
    ExportFilter,
    ExportLayout,
    ExportTable,
    GroupOrder,
    RunQuery,
)
from otel_diag.store.sql import (
    alert_signals,
    console,
    diagnosis_queue,
    error_groups,
    failure_cost,
    file_export,
    monitor,
    queries,
    reports,
)
from otel_diag.store.sql.gauges import server_gauges
from otel_diag.store.sql.readiness import write_readiness
from otel_diag.store.sql.transactions import read_snapshot, write_transaction
from otel_diag.store.sql.writer import lock_traces, lookup_trace_runs, write_projection

if TYPE_CHECKING:
    from otel_diag.store.sql.engine import TenantDBManager


class SqlTenantStore:
    """One tenant of a :class:`~otel_diag.store.sql.engine.TenantDBManager`."""

    def __init__(self, manager: TenantDBManager, tenant: str, engine: Engine) -> None:
        self.manager = manager
        self.tenant = tenant
        self.engine = engine

    # --- the pipeline ----------------------------------------------------------------------
    def write_spans(self, records: Sequence[SpanRecord], now: datetime) -> Projection:
        named = trace_runs_in(records)
        trace_runs = dict(named)
        unresolved = {r.trace_id for r in records if not r.run_key and r.trace_id not in trace_runs}
        limit = self.manager.settings.max_field_chars
        # A batch that names the run of each of its traces (whole traces, the usual case)
        # is projected before the write lock is taken, so other writers write meanwhile;
        # otherwise the runs stored for its other traces are read under the lock first.
        proj = None if unresolved else project(records, trace_runs, max_field_chars=limit)
        with write_transaction(self.engine) as conn:
            lock_traces(conn, {r.trace_id for r in records})
            if proj is None:
                for trace_id, run_id in lookup_trace_runs(conn, unresolved).items():
                    trace_runs.setdefault(trace_id, run_id)
                proj = project(records, trace_runs, max_field_chars=limit)
            write_projection(conn, proj, now, named)
        return proj

    # --- runs, steps, errors, reports ------------------------------------------------------
    def resolve_run(self, ref: str | uuid.UUID) -> uuid.UUID | None:
        with self.engine.connect() as conn:
            return queries.resolve_run(conn, ref)

    def run(self, run_id: uuid.UUID) -> Run | None:
        with self.engine.connect() as conn:
            return queries.get_run(conn, run_id)

    def runs(
        self,
        *,
        status: str | None = None,
        since: datetime | None = None,
        agent: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        with self.engine.connect() as conn:
            return queries.list_runs(
                conn, status=status, since=since, agent=agent, limit=limit, offset=offset
            )

    def find_runs(self, query: RunQuery) -> list[Run]:
        with self.engine.connect() as conn:
            return console.find_runs(conn, query)

    def steps(self, run_id: uuid.UUID) -> list[Step]:
        with self.engine.connect() as conn:
            return queries.get_steps(conn, run_id)

    def errors(
        self, run_id: uuid.UUID, *, limit: int | None = None, offset: int = 0
    ) -> list[ErrorRow]:
        with self.engine.connect() as conn:
            return queries.get_errors(conn, run_id, limit=limit, offset=offset)

    def error_summary(self, run_id: uuid.UUID) -> ErrorSummary:
        with self.engine.connect() as conn:
            return queries.error_summary(conn, run_id)

    def reports(
        self, run_id: uuid.UUID, *, limit: int | None = None, offset: int = 0
    ) -> list[Report]:
        with self.engine.connect() as conn:
            return queries.get_reports(conn, run_id, limit=limit, offset=offset)

    def report(self, report_id: uuid.UUID) -> Report | None:
        with self.engine.connect() as conn:
            return queries.get_report(conn, report_id)

    def latest_reports(self, limit: int = 10) -> list[Report]:
        with self.engine.connect() as conn:
            return console.latest_reports(conn, limit)

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
    ) -> list[ErrorGroup]:
        with read_snapshot(self.engine) as conn:
            return error_groups.list_error_groups(
                conn,
                since=since,
                until=until,
                service=service,
                agent=agent,
                fingerprints=fingerprints,
                order=order,
                limit=limit,
                offset=offset,
            )

    def new_error_groups(self, since: datetime, limit: int = 20) -> list[ErrorGroup]:
        with read_snapshot(self.engine) as conn:
            return error_groups.new_groups(conn, since, limit)

    def regressed_error_groups(
        self, since: datetime, quiet: timedelta, limit: int = 20
    ) -> list[ErrorGroup]:
        with read_snapshot(self.engine) as conn:
            return error_groups.regressed_groups(conn, since, quiet, limit)

    # --- the diagnosis queue ---------------------------------------------------------------
    def claim_ready(
        self,
        *,
        worker_id: str,
        now: datetime,
        decision_wait: float,
        lease: float,
        limit: int,
        orphan_wait: float | None = None,
    ) -> list[Claim]:
        return diagnosis_queue.claim_ready(
            self.engine,
            worker_id=worker_id,
            now=now,
            decision_wait=decision_wait,
            lease=lease,
            limit=limit,
            tenant=self.tenant,
            orphan_wait=orphan_wait,
        )

    def claim_run(
        self, run_id: uuid.UUID, *, worker_id: str, now: datetime, lease: float
    ) -> Claim | None:
        return diagnosis_queue.claim_run(
            self.engine, run_id, worker_id=worker_id, now=now, lease=lease, tenant=self.tenant
        )

    def complete(
        self, claim: Claim, report: Report, *, fingerprint: str | None, now: datetime
    ) -> bool:
        return diagnosis_queue.complete(
            self.engine, claim, report, fingerprint=fingerprint, now=now
        )

    def release(self, claims: Sequence[Claim]) -> int:
        return diagnosis_queue.release(self.engine, claims)

    def mark_failed(self, claim: Claim, now: datetime) -> bool:
        return diagnosis_queue.mark_failed(self.engine, claim, now)

    def insert_report(self, report: Report) -> None:
        diagnosis_queue.insert_report(self.engine, report)

    def find_reusable(self, fingerprint: str, since: datetime) -> Report | None:
        with self.engine.connect() as conn:
            return diagnosis_queue.find_reusable(conn, fingerprint, since)

    def spend_since(self, since: datetime) -> float:
        with self.engine.connect() as conn:
            return diagnosis_queue.spend_since(conn, since)

    def queue_depth(self, now: datetime, decision_wait: float) -> dict[str, int]:
        with self.engine.connect() as conn:
            return diagnosis_queue.queue_depth(conn, now, decision_wait)

    def next_ready_at(self, decision_wait: float) -> datetime | None:
        with self.engine.connect() as conn:
            return diagnosis_queue.next_ready_at(conn, decision_wait)

    # --- reports, by consumer ----------------------------------------------------------------
    def run_stats(self, since: datetime | None, until: datetime | None) -> RunStats:
        with self.engine.connect() as conn:
            return reports.run_stats(conn, since, until)

    def cost_breakdown(
        self, since: datetime | None, until: datetime | None, *, examples: int = 10
    ) -> CostBreakdown:
        with self.engine.connect() as conn:
            return reports.cost_breakdown(conn, since, until, examples=examples)

    def failure_cost(self, since: datetime | None, until: datetime | None) -> FailureCost:
        with self.engine.connect() as conn:
            return failure_cost.failure_cost(conn, since, until)

    def monitor_snapshot(
        self, window: timedelta, now: datetime, *, errors: int = 10, diagnoses: int = 5
    ) -> MonitorFrame:
        with self.engine.connect() as conn:
            return monitor.monitor_snapshot(conn, window, now, errors=errors, diagnoses=diagnoses)

    def activity(self, since: datetime, until: datetime, bucket: timedelta) -> list[ActivityBucket]:
        with self.engine.connect() as conn:
            return console.activity(conn, since, until, bucket)

    def finished_runs(self, since: datetime) -> tuple[int, int]:
        with self.engine.connect() as conn:
            return alert_signals.finished_runs(conn, since)

    def recent_failed_runs(self, since: datetime, limit: int = 5) -> list[FailedRun]:
        with self.engine.connect() as conn:
            return alert_signals.recent_failed_runs(conn, since, limit)

    def costly_runs(self, since: datetime, threshold: float, limit: int = 10) -> list[CostlyRun]:
        with self.engine.connect() as conn:
            return alert_signals.costly_runs(conn, since, threshold, limit)

    def cost_since(self, since: datetime) -> float:
        with self.engine.connect() as conn:
            return alert_signals.cost_since(conn, since)

    def unpriced_models(self, since: datetime) -> list[UnpricedModel]:
        with self.engine.connect() as conn:
            return alert_signals.unpriced_models(conn, since)

    def diagnosis_outcomes(self, since: datetime) -> DiagnosisOutcomes:
        with self.engine.connect() as conn:
            return alert_signals.diagnosis_outcomes(conn, since)

    def export_layout(self, table: ExportTable, *, trace_url: bool = False) -> ExportLayout:
        names = file_export.columns(table, trace_url=trace_url)
        return ExportLayout(names, file_export.JSON_COLUMNS.intersection(names))

    def export_count(self, table: ExportTable, flt: ExportFilter) -> int:
        with self.engine.connect() as conn:
            return file_export.count_rows(conn, table, flt)

    def export_batches(
        self,
        table: ExportTable,
        flt: ExportFilter,
        batch_size: int = 5000,
        *,
        trace_url_template: str | None = None,
    ) -> Iterator[Sequence[Sequence[Any]]]:
        with self.engine.connect() as conn:
            yield from file_export.iter_batches(
                conn, table, flt, batch_size, trace_url_template=trace_url_template
            )

    def export_csv(
        self,
        table: ExportTable,
        flt: ExportFilter,
        write: Callable[[bytes], Any],
        *,
        trace_url_template: str | None = None,
    ) -> int | None:
        with self.engine.connect() as conn:
            if not file_export.can_copy(conn):
                return None
            return file_export.copy_csv(
                conn, table, flt, write, trace_url_template=trace_url_template
            )

    def gauges(self) -> Gauges:
        with self.engine.connect() as conn:
            return server_gauges(conn)

    def write_readiness(self) -> str:
        return write_readiness(self.manager, self.tenant)

    def schema_revision(self) -> str | None:
        from otel_diag.store.sql.migrate import current_revision

        return current_revision(self.engine)
