"""Which database failures are worth a retry.

The bulk path writes through the raw drivers, so a failure can surface as a SQLAlchemy
error, a psycopg error or a sqlite3 error. A receiver must answer UNAVAILABLE / 503 (retry
later) for an outage, a lock timeout, a deadlock or a server restart, and only answer
INTERNAL for real bugs: collectors drop data on INTERNAL.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa_exc

# SQLSTATE classes / codes: connection exception, transaction rollback (serialization,
# deadlock), insufficient resources, operator intervention (shutdown), lock not available,
# read-only transaction (a failover to a standby).
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "40", "53", "57P", "55P03", "25006")
# undefined table, undefined column, invalid schema name: the schema is not (all) there.
_SCHEMA_MISSING_SQLSTATES = ("42P01", "42703", "3F000")
_SQLITE_SCHEMA_MISSING = ("no such table", "no such column")


def is_schema_missing(error: BaseException) -> bool:
    """True when the database answers but our tables are gone: a restore of an empty
    backup, a failover to a fresh instance, a wiped schema. Migrating again fixes it."""
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        error = error.orig
    if isinstance(error, sqlite3.OperationalError):
        return str(error).startswith(_SQLITE_SCHEMA_MISSING)
    return getattr(error, "sqlstate", None) in _SCHEMA_MISSING_SQLSTATES


def is_transient(error: BaseException) -> bool:
    """True for unreachable, locked, timed-out, restarted, deadlocked, read-only or
    not-yet-migrated databases: a later retry can succeed."""
    if is_schema_missing(error):
        return True
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        error = error.orig if error.orig is not None else error
    if isinstance(error, sqlite3.OperationalError):
        return True  # locked / busy / disk I/O
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        psycopg = None  # type: ignore[assignment]
    if psycopg is not None and isinstance(error, psycopg.Error):
        if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
            return True
        state = getattr(error, "sqlstate", None) or ""
        return state.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
    return isinstance(error, OSError)
