"""``DiagnosticsService``: the seed spec's API, ``analyze_failure`` and ``get_latest_diagnosis``.

One diagnosis, whoever asks for it (the batch worker, the REST API, the CLI):

1. reuse a recent LLM report for the same set of error fingerprints (``OTEL_DIAG_DIAGNOSIS_TTL``);
2. else, with ``OTEL_DIAG_DIAGNOSIS=auto``, credentials for the model (see
   :mod:`.credentials`) and under the hourly spend cap, ask the LLM with a budgeted,
   redacted prompt and validate the answer;
3. else, or when the LLM fails, times out or answers something invalid, the rules.

The report is stored in ``diagnostic_reports`` together with the run's claim (see
:class:`otel_diag.store.port.TenantStore`), then emitted as a span linked to the failed trace.
No database transaction is held while the LLM thinks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import TracerProvider

from otel_diag.config import Settings, load_settings
from otel_diag.diagnosis import reports
from otel_diag.diagnosis.context import diagnostic_context
from otel_diag.diagnosis.credentials import CREDENTIALS, NO_CREDENTIALS
from otel_diag.diagnosis.llm import LLMCallError, LLMResult, call_llm, token_counter
from otel_diag.diagnosis.prompt import build_prompt
from otel_diag.diagnosis.rules import diagnose_by_rules
from otel_diag.diagnosis.schema import (
    UNKNOWN_STEP,
    InvalidAnswer,
    parse_answer,
    response_schema,
    round_confidence,
)
from otel_diag.diagnosis.span import emit_report_span
from otel_diag.rows import ErrorRow, Report, Run, Step
from otel_diag.store import open_storage
from otel_diag.store.port import Claim, Storage, TenantStore
from otel_diag.tenants import validate_tenant_id

logger = logging.getLogger(__name__)

SPEND_WINDOW = timedelta(hours=1)
UNKNOWN_STEP_PENALTY = 0.2


def amended_confidence(llm: float, rules: float) -> float:
    """Confidence of an LLM answer whose resume step was replaced by the rules' choice.

    The rule: the LLM's confidence minus :data:`UNKNOWN_STEP_PENALTY` (it got one field
    wrong, so its analysis is trusted less), and never above the rules' own confidence,
    since the resume step is now theirs; at least 0.05.
    """
    return round_confidence(max(0.05, min(llm - UNKNOWN_STEP_PENALTY, rules)))


class RunNotFoundError(LookupError):
    """No run with that id, trace id or prefix in this tenant."""


class NothingToDiagnoseError(ValueError):
    """The run has no recorded errors."""


class DiagnosisDisabledError(RuntimeError):
    """``OTEL_DIAG_DIAGNOSIS=off``."""


@dataclass(slots=True)
class _Produced:
    row: Report
    outcome: str  # llm | rules | reused
    llm_ms: float
    produce_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Timing:
    """Where one diagnosis spent its time (milliseconds), for the benchmark and metrics."""

    run_id: str
    outcome: str  # llm | rules | reused
    produce_ms: float
    llm_ms: float
    store_ms: float


def new_worker_id(prefix: str = "worker") -> str:
    return f"{prefix}:{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claim_lease(settings: Settings) -> float:
    """Seconds a claim stays valid: two full LLM budgets plus a margin."""
    return 2 * settings.llm_timeout * (settings.llm_retries + 1) + 60


def utcnow() -> datetime:
    return datetime.now(UTC)


class DiagnosticsService:
    """Diagnoses failed runs of one tenant and stores the reports.

    Args:
        tenant_id: tenant whose runs to read (default ``OTEL_DIAG_TENANT`` / ``default``).
        manager: shared engines (the server, the worker); default the process-wide one.
        settings: resolved configuration; default the manager's.
        tracer_provider: where diagnosis spans go (default: see :mod:`.span`).
    """

    def __init__(
        self,
        tenant_id: str | None = None,
        *,
        manager: Storage | None = None,
        settings: Settings | None = None,
        tracer_provider: TracerProvider | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings or (manager.settings if manager else load_settings())
        self.manager = manager or open_storage(self.settings)
        self.tenant_id = validate_tenant_id(tenant_id or self.settings.tenant)
        self.tracer_provider = tracer_provider
        self.worker_id = worker_id or new_worker_id("api")
        self.timings: deque[Timing] = deque(maxlen=1000)

    @property
    def store(self) -> TenantStore:
        return self.manager.tenant(self.tenant_id)

    # --- the seed API -------------------------------------------------------------------
    def get_latest_diagnosis(self, run_id: str | uuid.UUID) -> Report | None:
        """The newest stored report of the run, or None (unknown run, or not diagnosed)."""
        store = self.store
        rid = store.resolve_run(run_id)
        if rid is None:
            return None
        latest = store.reports(rid, limit=1)
        return latest[0] if latest else None

    def analyze_failure(self, run_id: str | uuid.UUID, force: bool = False) -> Report:
        """Diagnose a run now and return the stored report.

        Without ``force``, a report that already answers the run's current errors is
        returned as is, and a worker diagnosing the run right now is waited for (at most
        one LLM budget). Raises :class:`RunNotFoundError`, :class:`NothingToDiagnoseError`,
        :class:`DiagnosisDisabledError`, or ``AmbiguousRunError`` for an ambiguous prefix.
        """
        if self.settings.diagnosis == "off":
            raise DiagnosisDisabledError("diagnosis is off (OTEL_DIAG_DIAGNOSIS=off)")
        with suppress_instrumentation():  # our own reads and writes are never traced
            result = self._analyze(run_id, force)
        if isinstance(result, tuple):
            row, run, steps, errors, started_ns = result
            self._emit(row, run, steps, errors, started_ns)
            return row
        return result

    def _load(
        self, store: TenantStore, run_id: uuid.UUID
    ) -> tuple[Run, list[Step], list[ErrorRow]] | None:
        run = store.run(run_id)
        if run is None:
            return None
        return run, store.steps(run_id), store.errors(run_id)

    def _analyze(self, run_id: str | uuid.UUID, force: bool) -> Any:
        store = self.store
        rid = store.resolve_run(run_id)
        if rid is None:
            raise RunNotFoundError(f"no run {str(run_id)!r} in tenant {self.tenant_id!r}")
        loaded = self._load(store, rid)
        if loaded is None:
            raise RunNotFoundError(f"no run {str(run_id)!r} in tenant {self.tenant_id!r}")
        latest = store.reports(rid, limit=1)
        run, steps, errors = loaded
        if not errors:
            raise NothingToDiagnoseError(f"run {rid} has no recorded errors")
        fingerprint = reports.run_fingerprint(errors)
        if not force and latest and latest[0].fingerprint == fingerprint:
            return latest[0]
        claim = store.claim_run(
            rid, worker_id=self.worker_id, now=utcnow(), lease=claim_lease(self.settings)
        )
        if claim is None and not force:
            budget = self.settings.llm_timeout * (self.settings.llm_retries + 1) + 5
            waited = self._wait_for_report(rid, fingerprint, budget)
            if waited is not None:
                return waited
        started_ns = time.time_ns()
        try:
            produced = self._produce(run, steps, errors, fingerprint, force=force)
            t0 = time.perf_counter()
            stored = claim is not None and store.complete(
                claim, produced.row, fingerprint=fingerprint, now=utcnow()
            )
            if not stored:
                store.insert_report(produced.row)
        except Exception:
            if claim is not None:
                with contextlib.suppress(Exception):
                    store.release([claim])
            raise
        self._record(run, produced, t0)
        return produced.row, run, steps, errors, started_ns

    # --- used by the batch worker -------------------------------------------------------
    def diagnose_claimed(self, claim: Claim) -> Report | None:
        """Diagnose a run this worker claimed; None if the run is gone or the claim was lost."""
        with suppress_instrumentation():
            store = self.store
            loaded = self._load(store, claim.run_id)
            if loaded is None:
                return None  # merged into its named run, or deleted
            run, steps, errors = loaded
            if not errors:
                store.mark_failed(claim, utcnow())
                return None
            fingerprint = reports.run_fingerprint(errors)
            started_ns = time.time_ns()
            produced = self._produce(run, steps, errors, fingerprint, force=False)
            t0 = time.perf_counter()
            if not store.complete(claim, produced.row, fingerprint=fingerprint, now=utcnow()):
                logger.info("diagnosis of run %s dropped: its claim was taken over", claim.run_id)
                return None
            self._record(run, produced, t0)
        self._emit(produced.row, run, steps, errors, started_ns)
        return produced.row

    # --- internals ----------------------------------------------------------------------
    def _record(self, run: Run, produced: _Produced, store_started: float) -> None:
        store_ms = (time.perf_counter() - store_started) * 1000
        self.timings.append(
            Timing(str(run.id), produced.outcome, produced.produce_ms, produced.llm_ms, store_ms)
        )
        row = produced.row
        extra = f" fallback={row.fallback_reason}" if row.fallback_reason else ""
        if row.reused_from:
            extra += f" reused_from={row.reused_from}"
        # The one line a diagnosis logs at the default level (see otel_diag.logs).
        logger.info(
            "diagnosed run %s tenant=%s provider=%s category=%s resume_step=%s "
            "confidence=%.2f duration_ms=%.0f%s",
            run.id,
            self.tenant_id,
            row.llm_provider,
            row.error_category,
            row.resume_step,
            row.confidence_score,
            produced.produce_ms + store_ms,
            extra,
        )

    def _wait_for_report(
        self, run_id: uuid.UUID, fingerprint: str | None, budget: float
    ) -> Report | None:
        deadline = time.monotonic() + budget
        delay = 0.05
        while time.monotonic() < deadline:
            latest = self.store.reports(run_id, limit=1)
            if latest and latest[0].fingerprint == fingerprint:
                return latest[0]
            time.sleep(delay)
            delay = min(1.0, delay * 2)
        return None

    def _produce(
        self,
        run: Run,
        steps: list[Step],
        errors: list[ErrorRow],
        fingerprint: str | None,
        *,
        force: bool,
    ) -> _Produced:
        t0 = time.perf_counter()
        settings = self.settings
        rules = diagnose_by_rules(run, steps, errors)
        step_names = list(dict.fromkeys(s.step_name for s in steps))

        def done(outcome: str, row: Report, llm_ms: float = 0.0) -> _Produced:
            elapsed = (time.perf_counter() - t0) * 1000
            row = replace(row, latency_ms=round(elapsed, 3))  # the whole diagnosis, LLM included
            return _Produced(row, outcome, llm_ms, elapsed)

        def fallback(reason: str, spent: LLMResult | None = None, llm_ms: float = 0.0) -> Any:
            row = reports.rules_report(
                run.id,
                rules,
                reason=reason,
                fingerprint=fingerprint,
                now=utcnow(),
                latency_ms=0.0,
                spent=spent,
            )
            return done("rules", row, llm_ms)

        now = utcnow()
        if not force and fingerprint and settings.diagnosis_ttl > 0:
            original = self.store.find_reusable(
                fingerprint, now - timedelta(seconds=settings.diagnosis_ttl)
            )
            if original is not None and (
                original.resume_step is None or original.resume_step in step_names
            ):
                row = reports.reused_report(
                    run.id, original, fingerprint=fingerprint, now=now, latency_ms=0.0
                )
                return done("reused", row)
        if settings.diagnosis == "rules":
            return fallback("mode_rules")
        if CREDENTIALS.missing(settings):
            return fallback(NO_CREDENTIALS)
        if settings.spend_cap_usd_per_hour > 0:
            spent = self.store.spend_since(now - SPEND_WINDOW)
            if spent >= settings.spend_cap_usd_per_hour:
                return fallback("spend_cap")
        prompt = build_prompt(
            diagnostic_context(run, steps, errors),
            count_tokens=token_counter(settings.llm_model),
        )
        try:
            result = call_llm(prompt.messages, response_schema(step_names), settings)
        except LLMCallError as exc:
            logger.debug("diagnosis LLM request failed (%s); using the rules", exc)
            return fallback(exc.reason, llm_ms=exc.latency_ms)
        try:
            answer = parse_answer(result.content, step_names)
        except InvalidAnswer as exc:
            logger.debug("diagnosis LLM answer rejected (%s); using the rules", exc)
            return fallback(exc.reason, spent=result, llm_ms=result.latency_ms)
        if answer.error_category is None:
            answer = replace(answer, error_category=rules.error_category)
        amended: str | None = None
        if UNKNOWN_STEP in answer.notes:
            # Keep the LLM's analysis and actions; the resume step becomes the rules' choice.
            logger.debug(
                "diagnosis LLM named resume step %r, not a step of run %s; the rules' %r used",
                answer.notes[UNKNOWN_STEP],
                run.id,
                rules.resume_step,
            )
            answer = replace(
                answer,
                resume_step=rules.resume_step,
                confidence_score=amended_confidence(
                    answer.confidence_score, rules.confidence_score
                ),
            )
            amended = UNKNOWN_STEP
        row = reports.llm_report(
            run.id,
            answer,
            result,
            fingerprint=fingerprint,
            now=utcnow(),
            latency_ms=0.0,
            fallback_reason=amended,
        )
        return done("llm", row, result.latency_ms)

    def _emit(
        self,
        row: Report,
        run: Run,
        steps: list[Step],
        errors: list[ErrorRow],
        started_ns: int,
    ) -> None:
        emit_report_span(
            row,
            run,
            reports.link_targets(steps, errors),
            tenant=self.tenant_id,
            started_ns=started_ns,
            provider=self.tracer_provider,
        )
