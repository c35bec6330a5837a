"""``ErrorLogSpanExporter``: SDK spans -> runs / steps / error_logs, in-process.

Loadable by ``opentelemetry-instrument --traces_exporter otel_diag`` (constructible with no
arguments; configuration comes from the environment). Like the SDK's own exporters it never
raises into the SDK thread: a failing database yields ``FAILURE`` and one log line per
outage (not one per span or batch), and a recovery line when writes succeed again.

The store (SQLAlchemy, the migrations) is imported on the first export, not when the
exporter is built: ``configure()`` and ``opentelemetry-instrument`` cost an app nothing
until it has spans to write. Its settings are read leniently (``load_settings(lenient=True)``):
a bad value of a server-side variable is logged once and its default used, never an
exporter that cannot be built.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_diag.config import Settings, load_settings
from otel_diag.spans.from_sdk import from_readable_span
from otel_diag.spans.record import SpanRecord

if TYPE_CHECKING:
    from otel_diag.store.port import Storage
    from otel_diag.store.sink import SpanSink, WriteResult

logger = logging.getLogger(__name__)


class ErrorLogSpanExporter(SpanExporter):
    """Maps failed spans to ``error_logs`` rows (and every agent/tool/LLM span to ``steps``).

    Args:
        database_url: SQLAlchemy URL; default from ``OTEL_DIAG_DATABASE_URL`` / config.
        tenant_id: tenant for spans that name none (default ``OTEL_DIAG_TENANT``).
        manager: share engines with other components (tests, the server).
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        tenant_id: str | None = None,
        manager: Storage | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or load_settings(
            lenient=True, database_url=database_url, tenant=tenant_id
        )
        self._database_url = database_url or self.settings.resolved_database_url
        self._manager = manager
        self._owns_manager = manager is None
        self._sink: SpanSink | None = None
        self._shutdown = False
        self._failing = False
        self._warned_tenants: set[str] = set()
        self._lock = threading.Lock()
        self.last_result: WriteResult | None = None
        self._diagnosis_worker: Any = None
        if self.settings.diagnosis_in_process:  # OTEL_DIAG_DIAGNOSIS_IN_PROCESS=true
            from otel_diag.diagnosis.inprocess import start_in_process

            self._diagnosis_worker = start_in_process(self.manager, self.settings)

    @property
    def manager(self) -> Storage:
        """The storage spans are written to (the store is loaded on first use)."""
        if self._manager is None:
            from otel_diag.store import open_storage

            self._manager = open_storage(self.settings, self._database_url)
        return self._manager

    @property
    def sink(self) -> SpanSink:
        """Where converted spans are written (built on first use, like :attr:`manager`)."""
        if self._sink is None:
            from otel_diag.store.sink import SpanSink

            self._sink = SpanSink(self.manager, self.settings)
        return self._sink

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        try:
            records = self._convert(spans)
            with self._lock:
                result = self.sink.write(records)
            self.last_result = result
            for reason in result.reasons:
                if reason not in self._warned_tenants:
                    self._warned_tenants.add(reason)
                    logger.warning("otel-diag refused spans: %s", reason)
            if self._failing:
                self._failing = False
                logger.warning("otel-diag export recovered; writing to %s again", self._where())
            return SpanExportResult.SUCCESS
        except Exception as exc:  # never raise into the SDK
            if not self._failing:
                self._failing = True
                logger.error(
                    "otel-diag export to %s failed (%s: %s); further failures are silent "
                    "until it recovers",
                    self._where(),
                    type(exc).__name__,
                    str(exc).splitlines()[0][:300] if str(exc) else "",
                )
            return SpanExportResult.FAILURE

    def _convert(self, spans: Sequence[ReadableSpan]) -> list[SpanRecord]:
        records: list[SpanRecord] = []
        bad = 0
        for span in spans:
            try:
                rec = from_readable_span(span)
            except Exception:
                bad += 1
                continue
            if rec is not None:
                records.append(rec)
        if bad:
            logger.warning("otel-diag skipped %d span(s) it could not read", bad)
        return records

    def _where(self) -> str:
        url = self._manager.base_url if self._manager is not None else self._database_url
        return url.split("@")[-1] if "@" in url else url

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Writes are synchronous: once ``export`` returned, the rows are committed."""
        return not self._shutdown

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        worker, self._diagnosis_worker = self._diagnosis_worker, None
        if worker is not None:
            worker.stop(timeout=5.0)
        with self._lock:
            if self._owns_manager and self._manager is not None:
                self._manager.dispose()
