"""The ingest core both transports share: admission, one hop off the loop, store, answer.

Why this shape:

* **Bounded.** :class:`~otel_diag.receiver.admission.Admission` caps the requests and the
  body bytes held at once (and, with several API-key tenants, each tenant's share), counted
  from before a body is read until it is stored; one more is refused with UNAVAILABLE / 503
  and a retry delay, so a client faster than the database (or an attacker) costs bounded
  memory, never a growing queue. After a burst the freed memory is given back
  (:mod:`otel_diag.receiver.memory`).
* **One hop.** Decompression, decoding, projection and the database write of a request run
  in a single executor call (:func:`otel_diag.receiver.work.ingest_body`); the event loop
  only moves bytes. The executor is a thread pool, or with ``OTEL_DIAG_INGEST_PROCESSES`` a
  pool of worker processes, which spreads the Python work over the machine's cores.
* **A 2xx means stored.** The answer is sent after the rows are committed. A database that
  is down or locked yields UNAVAILABLE / 503, so the client (or a collector's persistent
  queue) resends; writes are idempotent, so a resend never duplicates a row.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial

from otel_diag.config import Settings
from otel_diag.metrics import ServerMetrics
from otel_diag.receiver.admission import Admission, Slot
from otel_diag.receiver.errors import IngestError, InternalError, Overloaded, StoreUnavailable
from otel_diag.receiver.memory import Trimmer
from otel_diag.receiver.work import (
    JSON,
    LOGS,
    PROTOBUF,
    TRACES,
    Summary,
    ingest_body,
    ingest_in_worker,
    init_worker,
)
from otel_diag.store.sink import SpanSink
from otel_diag.store.tenant_budget import BudgetWindow

logger = logging.getLogger(__name__)

__all__ = ["JSON", "LOGS", "PROTOBUF", "TRACES", "IngestOutcome", "Ingestor", "Slot"]


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What a request stored; ``rejected`` > 0 becomes OTLP ``partial_success``."""

    spans: int
    accepted: int
    rejected: int
    error_message: str


class Ingestor:
    """Turns raw OTLP request bodies into stored rows for any transport."""

    def __init__(
        self,
        sink: SpanSink,
        settings: Settings,
        metrics: ServerMetrics,
        *,
        workers: int | None = None,
        processes: int | None = None,
        max_inflight: int | None = None,
        max_request_bytes: int | None = None,
        tenant_share: float | None = None,
        new_tenants: BudgetWindow | None = None,
    ) -> None:
        self.sink = sink
        self._new_tenants = new_tenants
        self.settings = settings
        self.metrics = metrics
        self.max_request_bytes = max_request_bytes or settings.max_request_bytes
        self.processes = max(0, settings.ingest_processes if processes is None else processes)
        self._workers = max(1, workers or settings.ingest_workers)
        self._executor = self._new_executor()
        self._lock = threading.Lock()
        self._failing = False
        self._trimmer = Trimmer()
        self.admission = Admission(
            max(1, max_inflight or settings.max_inflight),
            settings.max_inflight_bytes,
            tenant_share=tenant_share,
            on_idle=self._trimmer.idle,
        )
        metrics.queue_depth.set_function(lambda: self.admission.requests)
        metrics.inflight_bytes.set_function(lambda: self.admission.bytes)

    def _new_executor(self) -> Executor:
        if self.processes:
            return ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),  # never fork a gRPC process
                initializer=init_worker,
                initargs=(self.settings, os.getpid(), self._new_tenants),
            )
        return ThreadPoolExecutor(self._workers, thread_name_prefix="otel-diag-ingest")

    @property
    def max_inflight(self) -> int:
        return self.admission.max_requests

    async def admit(self, reserve: int = 0, tenant: str | None = None) -> Slot:
        """Hold a slot of ``reserve`` bytes for ``tenant`` (see :class:`Admission`), or raise
        :class:`Overloaded`; use it as ``with await ingestor.admit(...) as slot:``."""
        return await self.admission.admit(reserve, tenant)

    async def process(
        self,
        body: bytes | bytearray,
        *,
        fmt: str,
        transport: str,
        encoding: str | None = None,
        tenant: str | None = None,
        signal: str = TRACES,
    ) -> IngestOutcome:
        """Decode and store one request off the event loop; raises an :class:`IngestError`.

        ``signal`` is :data:`TRACES` or :data:`LOGS` (exceptions reported as log records).
        """
        loop = asyncio.get_running_loop()
        limit = self.max_request_bytes
        if self.processes:
            call = partial(ingest_in_worker, body, fmt, encoding, tenant, limit, signal)
        else:
            call = partial(ingest_body, self.sink, body, fmt, encoding, tenant, limit, signal)
        try:
            summary = await loop.run_in_executor(self._executor, call)
        except IngestError as exc:
            self._failed(exc, transport)
            raise
        except BrokenProcessPool:
            self._replace_broken_pool()
            raise StoreUnavailable("an ingest worker process died; retry") from None
        except RuntimeError as exc:
            if "shutdown" not in str(exc):  # a bug of ours, not a stopping executor
                logger.error("otel-diag: ingest failed", exc_info=exc)
                raise InternalError(f"internal error: {type(exc).__name__}") from None
            # "cannot schedule new futures after (interpreter) shutdown": we are stopping.
            raise Overloaded(f"otel-diag is shutting down: {exc}") from None
        except Exception as exc:  # a bug of ours: answer INTERNAL, keep serving
            logger.error("otel-diag: ingest failed", exc_info=exc)
            raise InternalError(f"internal error: {type(exc).__name__}") from None
        self._stored(summary, transport, tenant, signal)
        return IngestOutcome(
            spans=summary.spans,
            accepted=summary.accepted,
            rejected=summary.rejected,
            error_message="; ".join(summary.reasons),
        )

    def count(self, transport: str, result: str) -> None:
        """Count one finished request (``ok`` or an :class:`IngestError` reason)."""
        self.metrics.requests.labels(transport, result).inc()

    def _failed(self, exc: IngestError, transport: str) -> None:
        spans = exc.spans
        if spans:
            self.metrics.spans_received.labels(transport).inc(spans)
        if isinstance(exc, StoreUnavailable):
            self.metrics.spans_refused.labels(exc.reason).inc(spans)
            if not self._failing:
                self._failing = True
                logger.error(
                    "otel-diag: %s; refusing ingest with UNAVAILABLE until it recovers", exc
                )
        elif isinstance(exc, InternalError):
            self.metrics.spans_refused.labels(exc.reason).inc(spans)

    def _stored(
        self, s: Summary, transport: str, forced_tenant: str | None, signal: str = TRACES
    ) -> None:
        if self._failing:
            self._failing = False
            logger.warning("otel-diag: database writes recovered")
        m = self.metrics
        if signal == LOGS:
            for kind, count in (
                ("exception", s.accepted),
                ("other", s.other_logs),
                ("unlinked", s.unlinked_logs),
                ("invalid", s.rejected_spans - s.unlinked_logs),
            ):
                if count:
                    m.log_records.labels(kind).inc(count)
        else:
            m.spans_received.labels(transport).inc(s.spans)
        if s.dropped_attributes:
            m.attributes_dropped.inc(s.dropped_attributes)
        if s.dropped_events:
            m.events_dropped.inc(s.dropped_events)
        if s.clamped_times:
            m.timestamps_clamped.inc(s.clamped_times)
        if s.tenant_claims and forced_tenant is not None:
            m.tenant_overrides.labels(forced_tenant).inc(s.tenant_claims)
        if s.rejected_spans and signal == TRACES:
            m.spans_dropped.labels("invalid_span").inc(s.rejected_spans)
        if s.rejected_tenant:
            m.spans_dropped.labels("invalid_tenant").inc(s.rejected_tenant)
        for tenant, count in s.tenants.items():
            m.spans_stored.labels(tenant).inc(count)
        if s.error_rows:
            m.error_rows.inc(s.error_rows)
        for (tenant, model), cost in s.cost_by_model.items():
            if cost > 0:
                m.observed_cost.labels(tenant, m.model_label(model)).inc(cost)

    def _replace_broken_pool(self) -> None:
        with self._lock:
            broken = self._executor
            if self.admission.closed or not isinstance(broken, ProcessPoolExecutor):
                return
            if not getattr(broken, "_broken", False):
                return  # someone replaced it already
            logger.error("otel-diag: an ingest worker process died; starting a new pool")
            self._executor = self._new_executor()
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self, wait: bool = True) -> None:
        """Refuse new requests and (optionally) wait for the ones being written."""
        self.admission.close()
        self._executor.shutdown(wait=wait, cancel_futures=not wait)
