"""Which tenants exist: the ones the configuration names plus the ones found on storage.

A diagnosis worker (``serve``'s, or ``diagnose --worker`` on another host) must serve every
tenant, not only those its process happened to open, and must not invent one: with API keys
there is no ``default`` tenant unless a key names it. Storage is listed per layout:

* SQLite: the base file (the default tenant) and its siblings ``<stem>.<tenant><suffix>``,
  or the files a ``{tenant}`` path matches;
* PostgreSQL, a schema per tenant: the ``tenant_<id>`` schemas (and ``public`` when it holds
  a migrated default tenant);
* PostgreSQL, a database per tenant (``{tenant}`` in the database name): the databases on
  the server whose names match the pattern.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from otel_diag.config import DEFAULT_TENANT
from otel_diag.store.tenant_budget import NewTenantBudget as NewTenantBudget
from otel_diag.tenants import TENANT_ID_RE, configured_tenants

if TYPE_CHECKING:
    from otel_diag.store.sql.engine import TenantDBManager

logger = logging.getLogger(__name__)

_MARK = "__tenant__"
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def sqlite_tenants(database: str | None) -> set[str]:
    """Tenant ids of the SQLite files of ``database`` (with ``__tenant__`` marking the id)."""
    if not database or database == ":memory:":
        return set()
    path = Path(database).expanduser()
    if _MARK in path.name:
        pattern, tenants = path.name, set()
    else:  # the base file is the default tenant, its siblings the others
        pattern = f"{path.stem}.{_MARK}{path.suffix}"
        tenants = {DEFAULT_TENANT} if path.is_file() else set()
    if not path.parent.is_dir():
        return tenants
    prefix, _, suffix = pattern.partition(_MARK)
    names = (
        p.name
        for p in path.parent.glob(f"{prefix}*{suffix}")
        if not p.name.endswith(_SQLITE_SIDE_FILES)
    )
    return tenants | _matching(names, pattern)


def _matching(names: Iterable[str], pattern: str) -> set[str]:
    """The tenant ids in ``names`` that fit ``pattern`` (``prefix__tenant__suffix``)."""
    prefix, _, suffix = pattern.partition(_MARK)
    found = set()
    for name in names:
        long_enough = len(name) > len(prefix) + len(suffix)
        if long_enough and name.startswith(prefix) and name.endswith(suffix):
            tenant = name[len(prefix) : len(name) - len(suffix)]
            if TENANT_ID_RE.match(tenant):
                found.add(tenant)
    return found


def _schemas(conn: Connection) -> set[str]:
    rows = conn.execute(text("SELECT nspname FROM pg_namespace WHERE left(nspname, 7) = 'tenant_'"))
    found = {str(r[0])[len("tenant_") :] for r in rows}
    if conn.execute(text("SELECT to_regclass('public.alembic_version')")).scalar() is not None:
        found.add(DEFAULT_TENANT)
    return found


def _databases(manager: TenantDBManager, url: URL) -> set[str]:
    """Databases named by the pattern, read through any database of that server."""
    query = text("SELECT datname FROM pg_database WHERE NOT datistemplate")
    for engine in list(manager._engines.values()):
        try:
            with engine.connect() as conn:
                return _matching((str(r[0]) for r in conn.execute(query)), url.database or "")
        except Exception:
            continue
    maintenance = create_engine(url.set(database="postgres"), poolclass=NullPool)
    try:
        with maintenance.connect() as conn:
            return _matching((str(r[0]) for r in conn.execute(query)), url.database or "")
    finally:
        maintenance.dispose()


def discover(manager: TenantDBManager) -> list[str]:
    """Configured and stored tenants, the default one first (see the module docstring).

    Listing storage can fail (the server is down): the configured and opened tenants are
    still returned, so a worker goes on with what it knows.
    """
    settings = manager.settings
    found = {*configured_tenants(settings.api_keys, settings.tenant), *manager._engines}
    templated = "{tenant}" in manager.base_url
    url = make_url(manager.base_url.replace("{tenant}", _MARK))
    try:
        if url.get_backend_name() == "sqlite":
            found.update(sqlite_tenants(url.database))
        elif url.get_backend_name() == "postgresql" and not templated:
            anchor = next(iter(sorted(found)), DEFAULT_TENANT)
            with manager.get_engine(anchor).connect() as conn:
                found.update(_schemas(conn))
        elif url.get_backend_name() == "postgresql" and _MARK in (url.database or ""):
            found.update(_databases(manager, url))
    except Exception as exc:  # the caller reads the tenants it knows and reports the rest
        logger.debug("otel-diag: cannot list the tenants on storage: %s", exc)
    others = sorted(t for t in found if t != DEFAULT_TENANT and TENANT_ID_RE.match(t))
    return [DEFAULT_TENANT, *others] if DEFAULT_TENANT in found else others
