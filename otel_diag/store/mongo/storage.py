"""Every tenant's MongoDB data behind one ``mongodb://`` URL: the port's :class:`Storage`.

One client (and its connection pool) per storage; a database per tenant, named from the
URL's database (``otel_diag`` when the URL names none):

- the default tenant uses that database itself, another tenant ``<database>__<tenant>``;
- with ``{tenant}`` in the URL's database name, each tenant's database is that name with
  the id put in (``mongodb://host/diag_{tenant}``).

Tenant ids are validated before they name anything (:func:`otel_diag.tenants.
validate_tenant_id`). A tenant's indexes are created on its first use in the process (an
idempotent ``createIndexes``), and again by :meth:`MongoStorage.repair` if the database was
dropped or replaced meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from pymongo import MongoClient
from pymongo.database import Database

from otel_diag.config import DEFAULT_TENANT, Settings, load_settings
from otel_diag.store.mongo import failures
from otel_diag.store.mongo.indexes import ensure_indexes
from otel_diag.store.tenant_budget import BudgetWindow, NewTenantBudget
from otel_diag.tenants import TENANT_ID_RE, configured_tenants, validate_tenant_id

if TYPE_CHECKING:
    from otel_diag.store.mongo.tenant_store import MongoTenantStore

logger = logging.getLogger(__name__)

DEFAULT_DATABASE = "otel_diag"
MAX_DB_NAME = 63
SOCKET_TIMEOUT_S = 60
_TENANT_MARK = "__"


class MongoURLError(ValueError):
    """A ``mongodb://`` URL otel-diag cannot use."""


def database_name(base_url: str) -> str:
    """The database the URL names (``otel_diag`` when it names none)."""
    path = urlsplit(base_url).path.lstrip("/")
    return path or DEFAULT_DATABASE


def tenant_database(base_url: str, tenant: str) -> str:
    """The database that holds ``tenant``'s data (see the module docstring)."""
    base = database_name(base_url)
    if "{tenant}" in base:
        name = base.replace("{tenant}", tenant)
    elif tenant == DEFAULT_TENANT:
        name = base
    else:
        name = f"{base}{_TENANT_MARK}{tenant}"
    if len(name) > MAX_DB_NAME or any(c in name for c in '/\\. "$'):
        raise MongoURLError(
            f"MongoDB database name {name!r} (tenant {tenant!r}) is invalid or longer than "
            f"{MAX_DB_NAME} characters; use a shorter database name in the URL"
        )
    return name


def client_url(base_url: str) -> str:
    """The URL the client connects with: the database path removed (it may hold
    ``{tenant}``, which is no database name a driver accepts)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("mongodb", "mongodb+srv"):
        raise MongoURLError(f"not a MongoDB URL: {parts.scheme}://...")
    return urlunsplit((parts.scheme, parts.netloc, "/", parts.query, parts.fragment))


class MongoStorage:
    """The MongoDB implementation of :class:`otel_diag.store.port.Storage`."""

    def __init__(self, database_url: str | None = None, settings: Settings | None = None):
        self.settings = settings or load_settings()
        self.base_url = database_url or self.settings.resolved_database_url
        timeout_ms = max(1, int(self.settings.db_timeout * 1000))
        self.client: MongoClient[dict[str, Any]] = MongoClient(
            client_url(self.base_url),
            uuidRepresentation="standard",
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=SOCKET_TIMEOUT_S * 1000,
            maxPoolSize=8,
            connect=False,  # no network call until the first operation
        )
        tenant_database(self.base_url, DEFAULT_TENANT)  # a bad name fails here, not later
        self._ready: dict[str, Database[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._repairs: dict[str, float] = {}
        self._budget: NewTenantBudget | None = None

    # --- tenants ---------------------------------------------------------------------------
    def database(self, tenant_id: str | None = None) -> Database[dict[str, Any]]:
        """The tenant's database, its indexes created on first use in this process."""
        tenant = validate_tenant_id(tenant_id)
        db = self._ready.get(tenant)
        if db is not None:
            return db
        if self._budget is not None:
            self._budget.admit(tenant)
        with self._lock:
            db = self._ready.get(tenant)
            if db is None:
                db = self.client[tenant_database(self.base_url, tenant)]
                ensure_indexes(db)
                self._ready[tenant] = db
        return db

    def tenant(self, tenant_id: str | None = None) -> MongoTenantStore:
        from otel_diag.store.mongo.tenant_store import MongoTenantStore

        tenant = validate_tenant_id(tenant_id)
        return MongoTenantStore(self, tenant, self.database(tenant))

    def tenants(self) -> list[str]:
        return sorted(self._ready)

    def discover_tenants(self) -> list[str]:
        """Configured tenants, the ones opened here, and the tenant databases on the server
        (the default one first, if any)."""
        settings = self.settings
        found = {*configured_tenants(settings.api_keys, settings.tenant), *self._ready}
        try:
            found.update(self._stored_tenants())
        except Exception as exc:  # the caller goes on with the tenants it knows
            logger.debug("otel-diag: cannot list the tenants on MongoDB: %s", exc)
        others = sorted(t for t in found if t != DEFAULT_TENANT and TENANT_ID_RE.match(t))
        return [DEFAULT_TENANT, *others] if DEFAULT_TENANT in found else others

    def _stored_tenants(self) -> set[str]:
        base = database_name(self.base_url)
        if "{tenant}" in base:
            prefix, _, suffix = base.partition("{tenant}")
        else:
            prefix, suffix = base + _TENANT_MARK, ""
        found = set()
        for name in self.client.list_database_names():
            if name == base:
                found.add(DEFAULT_TENANT)
            elif name.startswith(prefix) and name.endswith(suffix):
                tenant = name[len(prefix) : len(name) - len(suffix)]
                if TENANT_ID_RE.match(tenant):
                    found.add(tenant)
        return found

    def limit_new_tenants(self, per_minute: int, window: BudgetWindow | None = None) -> None:
        self._budget = NewTenantBudget(self, per_minute, window) if per_minute > 0 else None

    def repair(self, tenant_id: str | None = None) -> bool:
        """Create the tenant's indexes again (a dropped or replaced database); True when in
        place. At most once per two seconds per tenant."""
        tenant = validate_tenant_id(tenant_id)
        last = self._repairs.get(tenant, 0.0)
        if time.monotonic() - last < 2.0 and tenant in self._ready:
            return True
        self._repairs[tenant] = time.monotonic()
        try:
            ensure_indexes(self.database(tenant))
        except Exception as exc:
            logger.warning(
                "otel-diag: re-creating the indexes of tenant %r failed: %s", tenant, exc
            )
            return False
        return True

    # --- failures --------------------------------------------------------------------------
    def is_transient(self, exc: BaseException) -> bool:
        return failures.is_transient(exc)

    def is_schema_missing(self, exc: BaseException) -> bool:
        return False  # nothing to migrate: collections appear with their first document

    def dispose(self) -> None:
        with self._lock:
            self._ready.clear()
        self.client.close()
