"""The span sink: the one hop from normalized spans to rows, shared by exporter and receiver.

``SpanSink.write(records)`` groups spans by tenant and hands each tenant's spans to its
store (:meth:`~otel_diag.store.port.TenantStore.write_spans`: resolve runs, project, write
in one transaction). otel-diag's own
database work runs with instrumentation suppressed, so it is never traced into itself.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from opentelemetry.instrumentation.utils import suppress_instrumentation

from otel_diag.config import Settings
from otel_diag.projection.project import Projection
from otel_diag.spans.record import SpanRecord
from otel_diag.store.port import Storage
from otel_diag.tenants import InvalidTenantError, validate_tenant_id

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class WriteResult:
    """What one write stored and what it refused (refused spans are never half-written)."""

    accepted: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    error_rows: int = 0
    step_rows: int = 0
    run_ids: set = field(default_factory=set)
    tenants: dict[str, int] = field(default_factory=dict)
    cost_by_model: dict[tuple[str, str], float] = field(default_factory=dict)
    """LLM cost by (tenant, model)."""

    def reject(self, count: int, reason: str) -> None:
        self.rejected += count
        if reason not in self.reasons:
            self.reasons.append(reason)


class SpanSink:
    """Writes normalized spans for any tenant through one :class:`Storage`."""

    def __init__(self, storage: Storage, settings: Settings | None = None):
        self.storage = storage
        self.settings = settings or storage.settings

    def write(self, records: Iterable[SpanRecord], *, tenant: str | None = None) -> WriteResult:
        """Store ``records``. ``tenant`` forces one tenant (authenticated ingest).

        Database errors propagate (callers turn them into FAILURE / UNAVAILABLE); a span
        whose tenant id is invalid is refused and reported in the result.
        """
        result = WriteResult()
        by_tenant: dict[str, list[SpanRecord]] = defaultdict(list)
        default = tenant or self.settings.tenant
        for rec in records:
            if rec.is_own_telemetry:
                continue
            by_tenant[tenant or rec.tenant_id or default].append(rec)
        now = datetime.now(UTC)
        with suppress_instrumentation():
            for tenant_id, recs in by_tenant.items():
                try:
                    validate_tenant_id(tenant_id)
                except InvalidTenantError as exc:
                    result.reject(len(recs), str(exc))
                    continue
                proj = self._write_tenant(tenant_id, recs, now)
                result.accepted += len(recs)
                result.tenants[tenant_id] = result.tenants.get(tenant_id, 0) + len(recs)
                result.error_rows += len(proj.errors)
                result.step_rows += len(proj.steps)
                result.run_ids.update((tenant_id, r) for r in proj.runs)
                for step in proj.steps:
                    if step.cost_usd and step.model:
                        key = (tenant_id, step.model)
                        result.cost_by_model[key] = (
                            result.cost_by_model.get(key, 0.0) + step.cost_usd
                        )
        return result

    def _write_tenant(self, tenant_id: str, recs: list[SpanRecord], now: datetime) -> Projection:
        try:
            return self.storage.tenant(tenant_id).write_spans(recs, now)
        except Exception as exc:
            if self.storage.is_schema_missing(exc):  # emptied: migrate again, caller retries
                self.storage.repair(tenant_id)
            raise
