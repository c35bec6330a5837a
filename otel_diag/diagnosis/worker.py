"""The diagnosis batch processor: diagnoses every completed failed run, unattended.

Like the SDK's BatchSpanProcessor: one loop thread, a bounded amount of work in flight
(claims are taken ``batch_size`` at a time, diagnosed by at most
``OTEL_DIAG_DIAGNOSIS_CONCURRENCY`` threads), an explicit ``start()`` / ``stop(timeout)``,
and nothing ever raised out of its threads. The queue itself lives in the database (see
:class:`otel_diag.store.port.TenantStore`), so it survives restarts and any number of workers
(``otel-diag serve`` replicas, ``otel-diag diagnose --worker``) can share it; every tenant
found on storage is served.

Rather than polling on a fixed beat, the loop sleeps until the next pending run's
``OTEL_DIAG_DECISION_WAIT`` expires (at most ``poll_interval``), so a run is diagnosed
within milliseconds of becoming ready.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation

from otel_diag.config import Settings
from otel_diag.diagnosis import span
from otel_diag.diagnosis.service import DiagnosticsService, claim_lease, new_worker_id, utcnow
from otel_diag.rows import RULES_PROVIDER
from otel_diag.store.port import Claim, Storage

logger = logging.getLogger(__name__)

MAX_FAILURES = 3
"""Crashes of one run's diagnosis before it is parked (state ``error``) instead of retried."""
WARN_INTERVAL_S = 60.0
"""A tenant that keeps failing (database gone) is reported once per interval, not per round."""


class DiagnosisWorker:
    """Claims ready runs of every tenant and diagnoses them.

    Args:
        manager: engines of every tenant (shared with the server or the exporter).
        settings: configuration (default: the manager's).
        batch_size: runs claimed per tenant per round (default 2 x concurrency).
        poll_interval: longest sleep between two looks at the queue, in seconds.
        lease: seconds a claim stays valid if this worker dies (default: from the LLM budget).
    """

    def __init__(
        self,
        manager: Storage,
        settings: Settings | None = None,
        *,
        worker_id: str | None = None,
        batch_size: int | None = None,
        poll_interval: float = 1.0,
        lease: float | None = None,
        tracer_provider: Any = None,
    ) -> None:
        self.manager = manager
        self.settings = settings or manager.settings
        self.worker_id = worker_id or new_worker_id()
        self.concurrency = self.settings.diagnosis_concurrency
        self.batch_size = batch_size or 2 * self.concurrency
        self.poll_interval = poll_interval
        self.lease = lease if lease is not None else claim_lease(self.settings)
        self.tracer_provider = tracer_provider
        self.stats: Counter[str] = Counter()
        self._services: dict[str, DiagnosticsService] = {}
        self._failures: Counter[tuple[str, str]] = Counter()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._inflight: dict[Claim, Future[bool]] = {}
        self._last_claimed = 0
        self._failing = False
        self._tenant_warned: dict[str, float] = {}

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> bool:
        """Start the loop thread (no-op with ``OTEL_DIAG_DIAGNOSIS=off``); True if running."""
        if self.settings.diagnosis == "off":
            logger.info("diagnosis is off (OTEL_DIAG_DIAGNOSIS=off): worker not started")
            return False
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return True
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name="otel-diag-diagnosis", daemon=True
            )
            self._thread.start()
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop claiming, give back claims not started, wait up to ``timeout`` for the rest.

        Returns True if everything finished in time. Diagnoses still running after that
        keep their claims until the lease expires; if another worker takes them over, their
        late result is dropped (a run never gets two reports for one failure).
        """
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        thread = self._thread
        finished = True
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
            finished = not thread.is_alive()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        self._release_unstarted()
        span.flush(int(max(0.1, deadline - time.monotonic()) * 1000))
        return finished

    def _release_unstarted(self) -> None:
        with self._lock:
            unstarted = [c for c, f in self._inflight.items() if f.cancelled()]
        by_tenant: dict[str, list[Claim]] = {}
        for claim in unstarted:
            by_tenant.setdefault(claim.tenant or self.settings.tenant, []).append(claim)
        for tenant, claims in by_tenant.items():
            try:
                with suppress_instrumentation():
                    released = self.manager.tenant(tenant).release(claims)
                self._count("released", released)
            except Exception:
                logger.debug("could not release %d claim(s)", len(claims), exc_info=True)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- work -----------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim and diagnose one batch per tenant; the number of reports stored."""
        if self.settings.diagnosis == "off":
            return 0
        stored = claimed = 0
        with suppress_instrumentation():  # the queue's SQL is never traced into the store
            tenants = self.manager.discover_tenants()
        for tenant in tenants:
            if self._stop.is_set():
                break
            try:
                tenant_claimed, tenant_stored = self._run_tenant(tenant)
            except Exception as exc:  # one broken tenant must not stop the others' diagnoses
                self._tenant_failed(tenant, exc)
                continue
            self._tenant_warned.pop(tenant, None)
            claimed += tenant_claimed
            stored += tenant_stored
        self._last_claimed = claimed
        return stored

    def _tenant_failed(self, tenant: str, exc: Exception) -> None:
        """Skip a tenant whose database is gone or broken: one line per tenant per
        :data:`WARN_INTERVAL_S` (a traceback only for what is not a database failure)."""
        if self.manager.is_schema_missing(exc):
            self.manager.repair(tenant)
        now = time.monotonic()
        if now - self._tenant_warned.get(tenant, -WARN_INTERVAL_S) < WARN_INTERVAL_S:
            logger.debug("diagnosis of tenant %r skipped again: %s", tenant, exc)
            return
        self._tenant_warned[tenant] = now
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        logger.warning(
            "diagnosis of tenant %r skipped (%s: %s); other tenants go on, retrying quietly",
            tenant,
            type(exc).__name__,
            detail[0][:200] if detail else "",
            exc_info=None if self.manager.is_transient(exc) else exc,
        )

    def drain(self, max_rounds: int = 10_000) -> int:
        """``run_once`` until nothing is ready (``diagnose --worker --once``)."""
        total = 0
        for _ in range(max_rounds):
            total += self.run_once()
            if self._last_claimed == 0 or self._stop.is_set():
                break
        return total

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def _service(self, tenant: str) -> DiagnosticsService:
        with self._lock:
            service = self._services.get(tenant)
            if service is None:
                service = self._services[tenant] = DiagnosticsService(
                    tenant,
                    manager=self.manager,
                    settings=self.settings,
                    tracer_provider=self.tracer_provider,
                    worker_id=self.worker_id,
                )
            return service

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.concurrency, thread_name_prefix="otel-diag-diagnose"
                )
            return self._pool

    def _run_tenant(self, tenant: str) -> tuple[int, int]:
        with suppress_instrumentation():
            store = self.manager.tenant(tenant)
            claims = store.claim_ready(
                worker_id=self.worker_id,
                now=utcnow(),
                decision_wait=self.settings.decision_wait,
                lease=self.lease,
                limit=self.batch_size,
            )
        if not claims:
            return 0, 0
        self._count("claimed", len(claims))
        pool = self._executor()
        futures = {}
        for claim in claims:
            future = pool.submit(self._diagnose, tenant, claim)
            futures[claim] = future
            with self._lock:
                self._inflight[claim] = future
        wait(list(futures.values()))
        with self._lock:
            for claim in claims:
                self._inflight.pop(claim, None)
        if any(f.cancelled() for f in futures.values()):
            with suppress_instrumentation():
                store.release([c for c, f in futures.items() if f.cancelled()])
        return len(claims), sum(1 for f in futures.values() if not f.cancelled() and f.result())

    def _diagnose(self, tenant: str, claim: Claim) -> bool:
        """One claimed run; never raises (a thread of the pool)."""
        service = self._service(tenant)
        try:
            if self._stop.is_set():
                with suppress_instrumentation():
                    self._count("released", service.store.release([claim]))
                return False
            report = service.diagnose_claimed(claim)
        except Exception as exc:
            self._on_failure(service, claim, exc)
            return False
        if report is None:
            self._count("dropped")
            return False
        if report.reused_from:
            kind = "reused"
        else:
            kind = "rules" if report.llm_provider == RULES_PROVIDER else "llm"
        self._count("stored")
        self._count(kind)
        if report.cost_usd:
            self._count("cost_usd_micros", int(report.cost_usd * 1_000_000))
        return True

    def _on_failure(self, service: DiagnosticsService, claim: Claim, exc: Exception) -> None:
        self._count("failed")
        key = (service.tenant_id, str(claim.run_id))
        with self._lock:
            self._failures[key] += 1
            failures = self._failures[key]
        logger.warning(
            "diagnosis of run %s failed (%s: %s)",
            claim.run_id,
            type(exc).__name__,
            str(exc).splitlines()[0][:200] if str(exc) else "",
        )
        if failures >= MAX_FAILURES:
            try:
                with suppress_instrumentation():
                    service.store.mark_failed(claim, utcnow())
                with self._lock:
                    self._failures.pop(key, None)
            except Exception:
                logger.debug("could not park run %s", claim.run_id, exc_info=True)

    # --- the loop -----------------------------------------------------------------------
    def _loop(self) -> None:
        if self.settings.diagnosis == "auto":
            self._warm_up()
        while not self._stop.is_set():
            try:
                stored = self.run_once()
                if self._failing:
                    self._failing = False
                    logger.warning("otel-diag diagnosis worker recovered")
            except Exception as exc:  # a dead database must not kill the thread
                stored = 0
                if not self._failing:
                    self._failing = True
                    logger.error(
                        "otel-diag diagnosis worker failed (%s: %s); retrying quietly",
                        type(exc).__name__,
                        str(exc).splitlines()[0][:300] if str(exc) else "",
                    )
            if stored:
                continue
            self._wake.wait(self._sleep_for())
            self._wake.clear()

    def _warm_up(self) -> None:
        """Import litellm now (seconds), not while the first failed run waits for it, and
        say at start (once) when the model has no credentials (see :mod:`.credentials`)."""
        try:
            from otel_diag.diagnosis.credentials import CREDENTIALS
            from otel_diag.diagnosis.llm import load_litellm

            load_litellm()
            CREDENTIALS.missing(self.settings)
        except Exception:
            logger.debug("litellm warm-up failed", exc_info=True)

    def _sleep_for(self) -> float:
        """Until the next pending run becomes ready, at most ``poll_interval``."""
        try:
            soonest = self.next_ready_at()
        except Exception:
            return self.poll_interval
        if soonest is None:
            return self.poll_interval
        delay = (soonest - datetime.now(UTC)).total_seconds()
        return min(self.poll_interval, max(0.005, delay))

    def next_ready_at(self) -> datetime | None:
        """When the earliest pending run of any known tenant becomes ready."""
        times = []
        for tenant in self.manager.tenants():
            with suppress_instrumentation():
                times.append(self.manager.tenant(tenant).next_ready_at(self.settings.decision_wait))
        return min((t for t in times if t is not None), default=None)
