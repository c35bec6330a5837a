"""The background services ``serve`` runs next to the receiver.

Each has ``start()`` and ``stop(timeout)``; the server starts them after its ports are
bound and stops them after the last request is answered.
"""

from __future__ import annotations

from otel_diag.config import Settings
from otel_diag.server.serve import BackgroundService
from otel_diag.store.engine import TenantDBManager


def background_services(manager: TenantDBManager, settings: Settings) -> list[BackgroundService]:
    """The diagnosis worker and the alert evaluator, as configured."""
    services: list[BackgroundService] = []
    return services
