"""Which database failures a receiver may answer with 'retry later'."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from sqlalchemy import exc as sa_exc

from otel_diag.store.failures import is_transient


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
        psycopg.errors.UndefinedTable("no such table"),
        sqlite3.IntegrityError("constraint failed"),
        ValueError("a bug"),
    ],
)
def test_data_and_programming_errors_are_not_transient(error):
    assert not is_transient(error)
