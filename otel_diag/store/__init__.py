"""The store: everything otel-diag keeps, behind one port (:mod:`otel_diag.store.port`).

:func:`open_storage` picks the implementation from the database URL; the SQL one (SQLite
and PostgreSQL) lives in :mod:`otel_diag.store.sql`, the only code that imports SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otel_diag.config import Settings
    from otel_diag.store.port import Storage


def open_storage(settings: Settings, database_url: str | None = None) -> Storage:
    """Every tenant's storage at ``database_url`` (default: the settings' database)."""
    from otel_diag.store.sql.engine import TenantDBManager

    return TenantDBManager(database_url or settings.resolved_database_url, settings)
