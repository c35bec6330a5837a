"""The one way otel-diag opens a write transaction, and a consistent read, on either database."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import weakref
from collections.abc import Iterator

from sqlalchemy import Connection, Engine

_writer_locks: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_guard = threading.Lock()


def _writer_lock(engine: Engine) -> threading.RLock:
    with _guard:
        lock = _writer_locks.get(engine)
        if lock is None:
            lock = _writer_locks[engine] = threading.RLock()
        return lock


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the write lock from its first statement.

    SQLite: ``BEGIN IMMEDIATE`` (a deferred transaction that reads first and writes later
    fails with "database is locked" instead of waiting its turn). The writers of one
    process also queue on a lock of their own first: SQLite's busy handler makes a waiting
    writer poll with sleeps of up to 100 ms, so under concurrent ingest the database sat
    idle between transactions; a queued thread starts the moment the previous one commits.
    (Other processes still meet at ``BEGIN IMMEDIATE``.) PostgreSQL: a plain transaction;
    writers serialize on row and advisory locks inside it.
    """
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            with conn.begin():
                yield conn
            return
        # The queue waits no longer than SQLite itself would (the connection's busy
        # timeout), and ends the same way: "database is locked", a retryable failure.
        raw = conn.connection.driver_connection
        busy_ms = raw.execute("PRAGMA busy_timeout").fetchone()[0]  # type: ignore[union-attr]
        lock = _writer_lock(engine)
        if not lock.acquire(timeout=max(0.0, busy_ms / 1000)):
            raise sqlite3.OperationalError(
                "database is locked (this process's other writers held it past the busy timeout)"
            )
        try:
            conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn
        finally:
            lock.release()


@contextlib.contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction whose statements all see the same committed state.

    For answers assembled from several statements that must agree (an error-group page
    ranks from the rollup, then reads the rows it names). PostgreSQL: ``REPEATABLE READ``
    (under READ COMMITTED each statement sees the commits made since the previous one).
    SQLite: one deferred transaction, which in WAL mode keeps its first read's snapshot.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with conn.begin():
            yield conn
