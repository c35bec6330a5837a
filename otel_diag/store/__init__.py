"""The store: everything otel-diag keeps, behind one port (:mod:`otel_diag.store.port`).

:func:`open_storage` picks the implementation from the database URL: the SQL one (SQLite
and PostgreSQL) lives in :mod:`otel_diag.store.sql`, the only code that imports SQLAlchemy;
the MongoDB one (``mongodb://``) in :mod:`otel_diag.store.mongo`, the only code that
imports pymongo. Each is imported only when a URL of its kind is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otel_diag.config import Settings
    from otel_diag.store.port import Storage


def open_storage(settings: Settings, database_url: str | None = None) -> Storage:
    """Every tenant's storage at ``database_url`` (default: the settings' database)."""
    url = database_url or settings.resolved_database_url
    if is_mongodb_url(url):
        from otel_diag.store.mongo.storage import MongoStorage

        return MongoStorage(url, settings)
    from otel_diag.store.sql.engine import TenantDBManager

    return TenantDBManager(url, settings)


def is_mongodb_url(url: str) -> bool:
    """Whether ``url`` names a MongoDB server (``mongodb://`` or ``mongodb+srv://``)."""
    return url.strip().lower().startswith(("mongodb://", "mongodb+srv://"))
