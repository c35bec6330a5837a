"""One tenant's MongoDB database as a :class:`~otel_diag.store.port.TenantStore`.

Each method delegates to the module of its concern; the client's pool is shared by every
tenant of the storage.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pymongo.database import Database

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
from otel_diag.store.mongo import console, export, failure, groups, queue, reads, reports, signals
from otel_diag.store.mongo.codec import to_us
from otel_diag.store.mongo.indexes import indexes_present
from otel_diag.store.mongo.locks import held
from otel_diag.store.mongo.queue import run_key
from otel_diag.store.mongo.writer import lookup_trace_runs, write_projection
from otel_diag.store.port import (
    ActivityBucket,
    Claim,
    ExportFilter,
    ExportLayout,
    ExportTable,
    GroupOrder,
    RunQuery,
)
from otel_diag.store.rules import EXPORT_JSON_COLUMNS, export_columns

if TYPE_CHECKING:
    from otel_diag.store.mongo.storage import MongoStorage

Doc = dict[str, Any]


class MongoTenantStore:
    """One tenant of a :class:`~otel_diag.store.mongo.storage.MongoStorage`."""

    def __init__(self, storage: MongoStorage, tenant: str, db: Database[Doc]) -> None:
        self.storage = storage
        self.tenant = tenant
        self.db = db

    @property
    def _timeout(self) -> float:
        return self.storage.settings.db_timeout

    # --- the pipeline ----------------------------------------------------------------------
    def write_spans(self, records: Sequence[SpanRecord], now: datetime) -> Projection:
        """Project and store spans; writers of the same traces, then runs, take turns."""
        settings = self.storage.settings
        named = trace_runs_in(records)
        trace_runs = dict(named)
        traces = {r.trace_id for r in records}
        with held(self.db, (f"trace:{t}" for t in traces), timeout=settings.db_timeout):
            unresolved = {
                r.trace_id for r in records if not r.run_key and r.trace_id not in trace_runs
            }
            if unresolved:
                for trace_id, run_id in lookup_trace_runs(self.db, unresolved).items():
                    trace_runs.setdefault(trace_id, run_id)
            proj = project(records, trace_runs, max_field_chars=settings.max_field_chars)
            with held(self.db, (run_key(r) for r in proj.runs), timeout=settings.db_timeout):
                write_projection(self.db, proj, to_us(now), named)
        return proj

    # --- runs, steps, errors, reports ------------------------------------------------------
    def resolve_run(self, ref: str | uuid.UUID) -> uuid.UUID | None:
        return reads.resolve_run(self.db, ref)

    def run(self, run_id: uuid.UUID) -> Run | None:
        return reads.get_run(self.db, run_id)

    def runs(
        self,
        *,
        status: str | None = None,
        since: datetime | None = None,
        agent: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        return reads.list_runs(
            self.db, status=status, since=since, agent=agent, limit=limit, offset=offset
        )

    def find_runs(self, query: RunQuery) -> list[Run]:
        return console.find_runs(self.db, query)

    def steps(self, run_id: uuid.UUID) -> list[Step]:
        return reads.get_steps(self.db, run_id)

    def errors(
        self, run_id: uuid.UUID, *, limit: int | None = None, offset: int = 0
    ) -> list[ErrorRow]:
        return reads.get_errors(self.db, run_id, limit=limit, offset=offset)

    def error_summary(self, run_id: uuid.UUID) -> ErrorSummary:
        return reads.error_summary(self.db, run_id)

    def reports(
        self, run_id: uuid.UUID, *, limit: int | None = None, offset: int = 0
    ) -> list[Report]:
        return reads.get_reports(self.db, run_id, limit=limit, offset=offset)

    def report(self, report_id: uuid.UUID) -> Report | None:
        return reads.get_report(self.db, report_id)

    def latest_reports(self, limit: int = 10) -> list[Report]:
        return reads.latest_reports(self.db, limit)

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
        return groups.list_error_groups(
            self.db,
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
        return groups.new_groups(self.db, since, limit)

    def regressed_error_groups(
        self, since: datetime, quiet: timedelta, limit: int = 20
    ) -> list[ErrorGroup]:
        return groups.regressed_groups(self.db, since, quiet, limit)

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
        return queue.claim_ready(
            self.db,
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
        return queue.claim_run(
            self.db,
            run_id,
            worker_id=worker_id,
            now=now,
            lease=lease,
            tenant=self.tenant,
            timeout=self._timeout,
        )

    def complete(
        self, claim: Claim, report: Report, *, fingerprint: str | None, now: datetime
    ) -> bool:
        return queue.complete(
            self.db, claim, report, fingerprint=fingerprint, now=now, timeout=self._timeout
        )

    def release(self, claims: Sequence[Claim]) -> int:
        return queue.release(self.db, claims, timeout=self._timeout)

    def mark_failed(self, claim: Claim, now: datetime) -> bool:
        return queue.mark_failed(self.db, claim, now, timeout=self._timeout)

    def insert_report(self, report: Report) -> None:
        queue.insert_report(self.db, report)

    def find_reusable(self, fingerprint: str, since: datetime) -> Report | None:
        return queue.find_reusable(self.db, fingerprint, since)

    def spend_since(self, since: datetime) -> float:
        return queue.spend_since(self.db, since)

    def queue_depth(self, now: datetime, decision_wait: float) -> dict[str, int]:
        return queue.queue_depth(self.db, now, decision_wait)

    def next_ready_at(self, decision_wait: float) -> datetime | None:
        return queue.next_ready_at(self.db, decision_wait)

    # --- reports, by consumer ----------------------------------------------------------------
    def run_stats(self, since: datetime | None, until: datetime | None) -> RunStats:
        return reports.run_stats(self.db, since, until)

    def cost_breakdown(
        self, since: datetime | None, until: datetime | None, *, examples: int = 10
    ) -> CostBreakdown:
        return reports.cost_breakdown(self.db, since, until, examples=examples)

    def failure_cost(self, since: datetime | None, until: datetime | None) -> FailureCost:
        return failure.failure_cost(self.db, since, until)

    def activity(self, since: datetime, until: datetime, bucket: timedelta) -> list[ActivityBucket]:
        return console.activity(self.db, since, until, bucket)

    def recent_failed_runs(self, since: datetime, limit: int = 5) -> list[FailedRun]:
        return signals.recent_failed_runs(self.db, since, limit)

    def monitor_snapshot(
        self, window: timedelta, now: datetime, *, errors: int = 10, diagnoses: int = 5
    ) -> MonitorFrame:
        return signals.monitor_snapshot(self.db, window, now, errors=errors, diagnoses=diagnoses)

    def finished_runs(self, since: datetime) -> tuple[int, int]:
        return signals.finished_runs(self.db, since)

    def costly_runs(self, since: datetime, threshold: float, limit: int = 10) -> list[CostlyRun]:
        return signals.costly_runs(self.db, since, threshold, limit)

    def cost_since(self, since: datetime) -> float:
        return signals.cost_since(self.db, since)

    def unpriced_models(self, since: datetime) -> list[UnpricedModel]:
        return signals.unpriced_models(self.db, since)

    def diagnosis_outcomes(self, since: datetime) -> DiagnosisOutcomes:
        return signals.diagnosis_outcomes(self.db, since)

    def export_layout(self, table: ExportTable, *, trace_url: bool = False) -> ExportLayout:
        names = export_columns(table, trace_url=trace_url)
        return ExportLayout(names, EXPORT_JSON_COLUMNS.intersection(names))

    def export_count(self, table: ExportTable, flt: ExportFilter) -> int:
        return export.count_rows(self.db, table, flt)

    def export_batches(
        self,
        table: ExportTable,
        flt: ExportFilter,
        batch_size: int = 5000,
        *,
        trace_url_template: str | None = None,
    ) -> Iterator[Sequence[Sequence[Any]]]:
        yield from export.iter_batches(
            self.db, table, flt, batch_size, trace_url_template=trace_url_template
        )

    def export_csv(
        self,
        table: ExportTable,
        flt: ExportFilter,
        write: Callable[[bytes], Any],
        *,
        trace_url_template: str | None = None,
    ) -> int | None:
        return None  # no server-side CSV: the caller writes it from export_batches

    def gauges(self) -> Gauges:
        return signals.server_gauges(self.db)

    def write_readiness(self) -> str:
        """``ok`` when the server answers and the tenant's indexes are in place (else the
        reason, with no host or database name in it)."""
        try:
            self.db.command("ping")
            if not indexes_present(self.db) and not self.storage.repair(self.tenant):
                return "not ready: indexes missing (creating them)"
        except Exception as exc:  # the reason is the answer
            if self.storage.is_transient(exc):
                text = str(exc).lower()
                if "timeout" in text or "timed out" in text:
                    return "unavailable: timed out"
                return "unavailable: unreachable or refusing connections"
            return f"unavailable: {type(exc).__name__}"
        return "ok"

    def schema_revision(self) -> str | None:
        doc = self.db.meta.find_one({"_id": "schema"})
        return str(doc["version"]) if doc else None
