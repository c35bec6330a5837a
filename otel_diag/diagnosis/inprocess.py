"""Diagnosis inside an instrumented application (``OTEL_DIAG_DIAGNOSIS_IN_PROCESS=true``).

For long-lived apps that use the in-process exporter and run no ``otel-diag serve``: the
exporter starts a :class:`DiagnosisWorker` on its own manager and stops it on shutdown.
The worker's LLM requests and database work are not traced (suppressed instrumentation),
its diagnosis spans are marked so the exporter skips them, and nothing here may raise
into the application: a worker that cannot start is logged and left out. Runs that end
less than ``OTEL_DIAG_DECISION_WAIT`` seconds before the app exits are left for a worker
elsewhere (``otel-diag diagnose --worker``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from otel_diag.config import Settings
from otel_diag.store.port import Storage

if TYPE_CHECKING:
    from otel_diag.diagnosis.worker import DiagnosisWorker

logger = logging.getLogger(__name__)


def start_in_process(manager: Storage, settings: Settings) -> DiagnosisWorker | None:
    """A started worker, or None (diagnosis off, not configured, or it failed to start)."""
    if not settings.diagnosis_in_process or settings.diagnosis == "off":
        return None
    try:
        from otel_diag.diagnosis.worker import DiagnosisWorker

        worker = DiagnosisWorker(manager, settings)
        return worker if worker.start() else None
    except Exception as exc:
        logger.error("otel-diag in-process diagnosis not started (%s: %s)", type(exc).__name__, exc)
        return None
