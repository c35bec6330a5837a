"""Prometheus metrics of one ``serve`` instance, in a registry of its own.

A registry per server (not the process-global default) so two servers in one process (tests,
benchmarks) never share counters. Ingest counters are updated by the receiver as requests
finish; open runs, diagnosis outcomes and diagnosis spend are read from each tenant's
database at scrape time, so they are right across replicas and restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from otel_diag.projection.cost import lookup_price

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
        read: Callable[[str], dict[str, Any]],
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
            runs_open.add_metric([tenant], data["runs_open"])
            for state, n in sorted(data["diagnosis_states"].items()):
                states.add_metric([tenant, state], n)
            for provider, n in sorted(data["reports"].items()):
                reports.add_metric([tenant, provider], n)
            cost.add_metric([tenant], data["diagnosis_cost_usd"])
        yield from (up, runs_open, states, reports, cost)


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
        self, tenants: Callable[[], Iterable[str]], read: Callable[[str], dict[str, Any]]
    ) -> None:
        """Add the scrape-time database gauges (tenants to read, and how to read one)."""
        self.registry.register(_DatabaseCollector(tenants, read))

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
