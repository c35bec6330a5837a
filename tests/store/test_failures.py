"""Which database failures a receiver may answer with 'retry later'."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from sqlalchemy import exc as sa_exc

from otel_diag.store.sql.failures import is_schema_missing, is_transient


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.OperationalError("database is locked"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.TooManyConnections("too many clients"),
        sa_exc.OperationalError("SELECT 1", {}, Exception("down")),
        ConnectionRefusedError(),
    ],
)
def test_outages_locks_deadlocks_and_restarts_are_transient(error):
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.StringDataRightTruncation("value too long"),
        sqlite3.IntegrityError("constraint failed"),
        ValueError("a bug"),
    ],
)
def test_data_and_programming_errors_are_not_transient(error):
    assert not is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.UndefinedTable('relation "trace_runs" does not exist'),
        psycopg.errors.InvalidSchemaName('schema "tenant_acme" does not exist'),
        sqlite3.OperationalError("no such table: runs"),
        sa_exc.ProgrammingError("SELECT", {}, psycopg.errors.UndefinedTable("gone")),
    ],
)
def test_a_missing_schema_is_recognized_and_retryable(error):
    """An emptied database is "not ready" (migrate again, client retries), not a bug."""
    assert is_schema_missing(error) and is_transient(error)


def test_locks_and_bugs_are_not_a_missing_schema():
    assert not is_schema_missing(sqlite3.OperationalError("database is locked"))
    assert not is_schema_missing(psycopg.errors.StringDataRightTruncation("too long"))
