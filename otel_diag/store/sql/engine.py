"""Engines, one per tenant: a SQLite file each, or a PostgreSQL schema each.

``TenantDBManager.get_engine(tenant_id)`` validates the id, builds the engine with the
pragmas / timeouts that keep ingest safe, migrates it once, and caches it. A tenant id is
never pasted into a path or SQL unvalidated: it must match :data:`TENANT_ID_RE`.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from otel_diag.config import DEFAULT_TENANT, Settings, load_settings
from otel_diag.store.sql import migrate
from otel_diag.tenants import TENANT_ID_RE as TENANT_ID_RE
from otel_diag.tenants import InvalidTenantError as InvalidTenantError
from otel_diag.tenants import validate_tenant_id as validate_tenant_id

if TYPE_CHECKING:
    from otel_diag.store.sql.discovery import NewTenantBudget
    from otel_diag.store.sql.tenant_store import SqlTenantStore
    from otel_diag.store.tenant_budget import BudgetWindow

logger = logging.getLogger(__name__)

STATEMENT_TIMEOUT_S = 60
REPAIR_INTERVAL_S = 2.0
"""Least time between two attempts to migrate a tenant's emptied database again."""


class DatabaseURLError(ValueError):
    """A database URL otel-diag cannot use."""


def schema_for(tenant_id: str) -> str | None:
    """PostgreSQL schema of a tenant: None (the URL's default schema) for the default one."""
    return None if tenant_id == DEFAULT_TENANT else f"tenant_{tenant_id}"


def tenant_url(base_url: str, tenant_id: str) -> str:
    """The URL of one tenant's database: ``{tenant}`` substituted, or a sibling SQLite file."""
    if "{tenant}" in base_url:
        return base_url.replace("{tenant}", tenant_id)
    try:
        url = make_url(base_url)
    except ArgumentError as exc:
        raise DatabaseURLError(f"invalid database URL {base_url!r}: {exc}") from None
    if url.get_backend_name() == "sqlite" and tenant_id != DEFAULT_TENANT:
        if not url.database or url.database == ":memory:":
            raise DatabaseURLError("an in-memory SQLite database cannot hold several tenants")
        path = Path(url.database)
        return url.set(
            database=str(path.with_name(f"{path.stem}.{tenant_id}{path.suffix}"))
        ).render_as_string(hide_password=False)
    return base_url


WAL_CHECKPOINT_PAGES = 10_000
"""Pages the SQLite WAL grows by before a commit checkpoints it into the database file
(SQLite's default is 1,000). With ``synchronous=NORMAL`` a commit does not sync; a
checkpoint does, twice. At ingest rates the default checkpointed every few commits and
the syncs were most of a write's time (measured: 512-row commits 2x faster end to end);
durability is unchanged, the WAL file is larger (~40 MB, bounded by the next setting)."""
WAL_SIZE_LIMIT = 64 * 2**20
"""Bytes a WAL file is truncated back to after a checkpoint."""


def _wal(cur: Any, timeout: float) -> None:
    """Put the file in WAL mode, waiting out a process that is doing the same.

    Switching a new file to WAL needs an exclusive lock, and SQLite answers "database is
    locked" at once (no busy handler) when another connection opening the same new file
    holds it: two replicas or two threads starting together. It is retried until
    ``timeout``; a file already in WAL mode costs one query.
    """
    if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_engine(url: str, timeout: float) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": timeout, "check_same_thread": False},
        pool_size=4,
        max_overflow=4,
        pool_timeout=timeout,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _begin)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        _wal(cur, timeout)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_engine(url: str, schema: str | None, timeout: float) -> Engine:
    import psycopg  # only PostgreSQL engines pay for the driver import

    engine = create_engine(
        url,
        connect_args={
            "connect_timeout": max(1, int(timeout)),
            # A half-open connection must not hang an exporter or ingest thread for the
            # kernel's retransmit timeout (minutes): keepalives + a TCP user timeout.
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            "tcp_user_timeout": 60_000,
        },
        pool_size=4,
        max_overflow=4,
        pool_timeout=timeout,
        pool_pre_ping=True,
    )

    @event.listens_for(engine, "connect")
    def _session(dbapi_conn: Any, _record: Any) -> None:
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET lock_timeout = '{int(timeout * 1000)}ms'")
            # Bounded statements; migrations lift this for their own transaction.
            cur.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT_S}s'")
            if schema is not None:
                quoted = '"' + schema.replace('"', '""') + '"'
                # IF NOT EXISTS still races with a concurrent creator; then it exists now.
                with contextlib.suppress(psycopg.errors.UniqueViolation):
                    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
                cur.execute(f"SET search_path TO {quoted}")
        dbapi_conn.autocommit = autocommit

    return engine


def build_engine(url: str, tenant_id: str, timeout: float = 5.0) -> Engine:
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as exc:
        raise DatabaseURLError(f"invalid database URL {url!r}: {exc}") from None
    if backend == "sqlite":
        return _sqlite_engine(url, timeout)
    if backend == "postgresql":
        schema = None if "{tenant}" in url else schema_for(tenant_id)
        return _postgres_engine(url, schema, timeout)
    raise DatabaseURLError(
        f"unsupported database {backend!r}: use sqlite:///path or postgresql+psycopg://..."
    )


class TenantDBManager:
    """Per-tenant engines over one base URL, created and migrated on first use.

    It is also the SQL implementation of :class:`otel_diag.store.port.Storage`:
    :meth:`tenant` hands out a tenant's :class:`~otel_diag.store.port.TenantStore`.
    """

    def __init__(self, database_url: str | None = None, settings: Settings | None = None):
        self.settings = settings or load_settings()
        self.base_url = database_url or self.settings.resolved_database_url
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()
        self._repairs: dict[str, tuple[threading.Lock, list[float]]] = {}
        self._budget: NewTenantBudget | None = None

    def tenant(self, tenant_id: str | None = None) -> SqlTenantStore:
        """The tenant's store (its database created and migrated on first use)."""
        from otel_diag.store.sql.tenant_store import SqlTenantStore

        tenant = validate_tenant_id(tenant_id)
        return SqlTenantStore(self, tenant, self.get_engine(tenant))

    def is_transient(self, exc: BaseException) -> bool:
        """A failure worth a retry: the database is down, locked, restarting, read-only."""
        from otel_diag.store.sql.failures import is_transient

        return is_transient(exc)

    def is_schema_missing(self, exc: BaseException) -> bool:
        """The database answers but its schema is gone (restore, failover, wipe)."""
        from otel_diag.store.sql.failures import is_schema_missing

        return is_schema_missing(exc)

    def limit_new_tenants(self, per_minute: int, window: BudgetWindow | None = None) -> None:
        """Create at most ``per_minute`` new tenants per minute (0: no limit); beyond it
        :meth:`get_engine` raises ``TenantLimitReached`` (see :mod:`otel_diag.store.tenant_budget`)."""
        from otel_diag.store.sql.discovery import NewTenantBudget

        self._budget = NewTenantBudget(self, per_minute, window) if per_minute > 0 else None

    def get_engine(self, tenant_id: str | None = None) -> Engine:
        tenant = validate_tenant_id(tenant_id)
        engine = self._engines.get(tenant)
        if engine is not None:
            return engine
        if self._budget is not None:  # outside the lock: it may list storage
            self._budget.admit(tenant)
        with self._lock:
            engine = self._engines.get(tenant)
            if engine is None:
                url = tenant_url(self.base_url, tenant)
                engine = build_engine(url, tenant, self.settings.db_timeout)
                try:
                    migrate.upgrade(engine)
                except Exception:
                    engine.dispose()
                    raise
                self._engines[tenant] = engine
        return engine

    def repair(self, tenant_id: str | None = None) -> bool:
        """Migrate a tenant's database again after its schema vanished; True once it is back.

        A restore of an empty backup, a failover to a fresh instance or a wiped schema leaves
        an engine that connects but finds no tables. Whoever meets that (a write, the API,
        readiness) calls this: one repair runs at a time per tenant (callers arriving
        meanwhile wait for it, then find the schema in place), at most one per
        :data:`REPAIR_INTERVAL_S`, and the pool is renewed first so every connection is a
        fresh one (new instance, schema re-created by the connect hook).
        """
        tenant = validate_tenant_id(tenant_id)
        with self._lock:
            lock, last = self._repairs.setdefault(tenant, (threading.Lock(), [0.0]))
        with lock:
            engine = self._engines.get(tenant)
            if engine is None:
                return self._opened(tenant)
            if time.monotonic() - last[0] < REPAIR_INTERVAL_S:
                return migrate.is_current(engine)
            last[0] = time.monotonic()
            if migrate.is_current(engine):
                return True
            logger.warning(
                "otel-diag: the database of tenant %r has no schema (restored, replaced or "
                "wiped?); migrating it again",
                tenant,
            )
            engine.dispose()
            try:
                migrate.upgrade(engine)
            except Exception as exc:
                logger.warning("otel-diag: migrating tenant %r again failed: %s", tenant, exc)
                return False
            if not migrate.is_current(engine):  # e.g. tables dropped, version row kept
                logger.error(
                    "otel-diag: tenant %r: tables are missing although the schema version is "
                    "current; restore the database or drop its schema to have it re-created",
                    tenant,
                )
                return False
            return True

    def _opened(self, tenant: str) -> bool:
        try:
            self.get_engine(tenant)
        except Exception:
            return False
        return True

    def tenants(self) -> list[str]:
        return sorted(self._engines)

    def discover_tenants(self) -> list[str]:
        """Tenants the configuration names or storage holds, the default one first (if any).

        See :mod:`otel_diag.store.sql.discovery`.
        """
        from otel_diag.store.sql.discovery import discover

        return discover(self)

    def dispose(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


_manager: TenantDBManager | None = None
_manager_lock = threading.Lock()


def get_tenant_manager(database_url: str | None = None) -> TenantDBManager:
    """The process-wide manager (rebuilt if asked for another URL)."""
    global _manager
    with _manager_lock:
        wanted = database_url or load_settings().resolved_database_url
        if _manager is None or _manager.base_url != wanted:
            if _manager is not None:
                _manager.dispose()
            _manager = TenantDBManager(wanted)
        return _manager


def get_tenant_engine(tenant_id: str | None = None) -> Engine:
    """The engine of ``tenant_id`` (default tenant when None) from the process-wide manager."""
    return get_tenant_manager().get_engine(tenant_id)
