"""The one way otel-diag opens a write transaction on either database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Connection, Engine


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the write lock from its first statement.

    SQLite: ``BEGIN IMMEDIATE`` (a deferred transaction that reads first and writes later
    fails with "database is locked" instead of waiting its turn). PostgreSQL: a plain
    transaction; writers serialize on row and advisory locks inside it.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            yield conn
