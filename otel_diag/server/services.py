"""The background services ``serve`` runs next to the receiver.

The diagnosis worker (claims completed failed runs of every tenant and diagnoses them) and
the alert evaluator (rules from config.toml). Each has ``start()`` and ``stop(timeout)``;
the server starts them after its ports are bound and stops them after the last request is
answered. They are imported here, lazily, so the receiver never pays for litellm.
"""

from __future__ import annotations

from otel_diag.config import Settings
from otel_diag.server.serve import BackgroundService
from otel_diag.store.port import Storage


def background_services(storage: Storage, settings: Settings) -> list[BackgroundService]:
    """The diagnosis worker and the alert evaluator over ``storage``.

    Raises ``AlertRuleError`` (a ``ValueError``) for a rule that cannot be evaluated, so
    ``serve`` refuses to start rather than run without the alert.
    """
    from otel_diag.alerts import AlertEvaluator
    from otel_diag.diagnosis.worker import DiagnosisWorker

    return [DiagnosisWorker(storage, settings), AlertEvaluator(storage, settings)]
