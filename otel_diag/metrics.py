"""Prometheus metrics of one ``serve`` instance, in a registry of its own.

A registry per server (not the process-global default) so two servers in one process (tests,
benchmarks) never share counters. Ingest counters are updated by the receiver as requests
finish; open runs, diagnosis outcomes, diagnosis spend and the cost of failure (runs and
attempts started in the last 24 h) are read from each tenant's database at scrape
time, so they are right across replicas and restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from otel_diag.projection.cost import lookup_price
from otel_diag.report_rows import Gauges
from otel_diag.rows import FailureCost, FailureCostRow, Spend

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_MODEL_LABELS = 64
"""Distinct model label values kept; the rest (and unpriced models) are 'other'."""
OTHER = "other"


class _DatabaseCollector(Collector):
    """Scrape-time gauges from each tenant's database; a dead database reads as ``up 0``."""

    def __init__(
        self,
        tenants: Callable[[], Iterable[str]],
        read: Callable[[str], Gauges],
    ) -> None:
        self._tenants = tenants
        self._read = read

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "otel_diag_database_up", "1 if the tenant's database answered", labels=["tenant"]
        )
        runs_open = GaugeMetricFamily(
            "otel_diag_runs_open", "Runs still running (no root span yet)", labels=["tenant"]
        )
        states = GaugeMetricFamily(
            "otel_diag_diagnoses",
            "Runs by diagnosis outcome (diagnosis_state)",
            labels=["tenant", "outcome"],
        )
        reports = GaugeMetricFamily(
            "otel_diag_diagnosis_reports",
            "Stored diagnostic reports by provider (rules or an LLM provider)",
            labels=["tenant", "provider"],
        )
        cost = GaugeMetricFamily(
            "otel_diag_diagnosis_cost_usd",
            "LLM spend of all stored diagnoses (USD)",
            labels=["tenant"],
        )
        for tenant in self._tenants():
            try:
                data = self._read(tenant)
            except Exception as exc:  # a scrape must not fail because one database is down
                logger.debug("metrics: cannot read tenant %s: %s", tenant, exc)
                up.add_metric([tenant], 0)
                continue
            up.add_metric([tenant], 1)
            runs_open.add_metric([tenant], data.runs_open)
            for state, n in sorted(data.diagnosis_states.items()):
                states.add_metric([tenant, state], n)
            for provider, n in sorted(data.reports.items()):
                reports.add_metric([tenant, provider], n)
            cost.add_metric([tenant], data.diagnosis_cost_usd)
        yield from (up, runs_open, states, reports, cost)


FAILURE_WINDOW_HOURS = 24
"""The cost-of-failure gauges cover runs and attempts started in the last 24 hours."""
MAX_AGENT_LABELS = 20
"""Agents with a series of their own (the costliest); the rest are summed as 'other'."""


class _FailureCostCollector(Collector):
    """Scrape-time cost of failure per tenant (a dead database reads as no series)."""

    def __init__(
        self, tenants: Callable[[], Iterable[str]], read: Callable[[str], FailureCost]
    ) -> None:
        self._tenants = tenants
        self._read = read

    def collect(self) -> Iterator[Metric]:
        window = f"started in the last {FAILURE_WINDOW_HOURS} h"
        usd = GaugeMetricFamily(
            "otel_diag_failure_cost_usd",
            f"USD spent by failed runs and by retried attempts {window}, by error category",
            labels=["tenant", "spent_by", "category"],
        )
        tokens = GaugeMetricFamily(
            "otel_diag_failure_tokens",
            f"Tokens (input + output) spent by failed runs and by retried attempts {window}, "
            "by error category",
            labels=["tenant", "spent_by", "category"],
        )
        agents = GaugeMetricFamily(
            "otel_diag_failure_cost_by_agent_usd",
            f"USD spent by failed runs and by retried attempts {window}, by agent (the "
            f"{MAX_AGENT_LABELS} costliest; the rest as 'other')",
            labels=["tenant", "spent_by", "agent"],
        )
        for tenant in self._tenants():
            try:
                cost = self._read(tenant)
            except Exception as exc:  # otel_diag_database_up says so; no partial series
                logger.debug("metrics: cannot read the failure cost of %s: %s", tenant, exc)
                continue
            for row in cost.by_category:
                for spent_by, spend in _by_kind(row):
                    usd.add_metric([tenant, spent_by, row.name], spend.cost_usd)
                    tokens.add_metric(
                        [tenant, spent_by, row.name], spend.input_tokens + spend.output_tokens
                    )
            other: dict[str, float] = {}
            for i, row in enumerate(cost.by_agent):  # costliest first
                for spent_by, spend in _by_kind(row):
                    if i < MAX_AGENT_LABELS:
                        agents.add_metric([tenant, spent_by, row.name], spend.cost_usd)
                    else:
                        other[spent_by] = other.get(spent_by, 0.0) + spend.cost_usd
            for spent_by, value in other.items():
                agents.add_metric([tenant, spent_by, OTHER], value)
        yield from (usd, tokens, agents)


def _by_kind(row: FailureCostRow) -> tuple[tuple[str, Spend], ...]:
    return (("failed_runs", row.failed_runs), ("retried_attempts", row.retried_attempts))


class ServerMetrics:
    """Counters the receiver updates, plus the database gauges, rendered by ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "otel_diag_ingest_requests",
            "OTLP export requests by transport and result",
            ["transport", "result"],
            registry=r,
        )
        self.spans_received = Counter(
            "otel_diag_spans_received",
            "Spans decoded from OTLP requests",
            ["transport"],
            registry=r,
        )
        self.spans_stored = Counter(
            "otel_diag_spans_stored", "Spans written to the store", ["tenant"], registry=r
        )
        self.spans_refused = Counter(
            "otel_diag_spans_refused",
            "Spans in requests refused retryably (the client resends them)",
            ["reason"],
            registry=r,
        )
        self.spans_dropped = Counter(
            "otel_diag_spans_dropped",
            "Spans rejected for good and reported in partial_success",
            ["reason"],
            registry=r,
        )
        self.tenant_overrides = Counter(
            "otel_diag_spans_tenant_overridden",
            "Spans that claimed another tenant than their API key's (stored under the key's)",
            ["tenant"],
            registry=r,
        )
        self.attributes_dropped = Counter(
            "otel_diag_attributes_dropped",
            "Attributes beyond the per-span limit, not kept",
            registry=r,
        )
        self.events_dropped = Counter(
            "otel_diag_span_events_dropped",
            "Span events beyond the per-span limit, not kept (reported in partial_success)",
            registry=r,
        )
        self.timestamps_clamped = Counter(
            "otel_diag_timestamps_clamped",
            "Span and event timestamps more than a day in the future, read as the receive time",
            registry=r,
        )
        self.log_records = Counter(
            "otel_diag_log_records_received",
            "OTLP log records received, by kind: exception (stored as an error of its span), "
            "other (acknowledged, not stored), unlinked (an exception without trace context, "
            "dropped and reported in partial_success), invalid (malformed, rejected)",
            ["kind"],
            registry=r,
        )
        self.error_rows = Counter(
            "otel_diag_error_rows_written",
            "error_logs rows written (a re-sent span is written once, counted again)",
            registry=r,
        )
        self.observed_cost = Counter(
            "otel_diag_observed_cost_usd",
            "LLM cost observed on ingested spans, by tenant and model (USD); models without "
            f"a known price, and any beyond the first {MAX_MODEL_LABELS}, count as 'other'",
            ["tenant", "model"],
            registry=r,
        )
        self._models: set[str] = set()
        self.queue_depth = Gauge(
            "otel_diag_ingest_queue_depth",
            "OTLP requests being decoded/written or waiting for a worker",
            registry=r,
        )
        self.inflight_bytes = Gauge(
            "otel_diag_ingest_inflight_bytes",
            "Bytes of OTLP requests held by the receiver",
            registry=r,
        )

    def watch_databases(
        self, tenants: Callable[[], Iterable[str]], read: Callable[[str], Gauges]
    ) -> None:
        """Add the scrape-time database gauges (tenants to read, and how to read one)."""
        self.registry.register(_DatabaseCollector(tenants, read))

    def watch_failure_cost(
        self, tenants: Callable[[], Iterable[str]], read: Callable[[str], FailureCost]
    ) -> None:
        """Add the cost-of-failure gauges (tenants to read, and a tenant's
        :class:`~otel_diag.rows.FailureCost` over the last :data:`FAILURE_WINDOW_HOURS`)."""
        self.registry.register(_FailureCostCollector(tenants, read))

    def model_label(self, model: str) -> str:
        """``model`` as a label value: a client names its models, so only priced models
        (litellm's price map), and at most :data:`MAX_MODEL_LABELS` of them, get a series."""
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODEL_LABELS or lookup_price(model) is None:
            return OTHER
        self._models.add(model)
        return model

    def render(self, tenant: str | None = None) -> bytes:
        """The exposition; with ``tenant``, only its series and the server-wide ones."""
        if tenant is None:
            return generate_latest(self.registry)
        return generate_latest(_OneTenant(self.registry, tenant))  # type: ignore[arg-type]


class _OneTenant:
    """A registry view without the series of other tenants (for a tenant's own API key)."""

    def __init__(self, registry: CollectorRegistry, tenant: str) -> None:
        self._registry = registry
        self._tenant = tenant

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            family.samples = [
                s for s in family.samples if s.labels.get("tenant", self._tenant) == self._tenant
            ]
            yield family
