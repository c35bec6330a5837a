"""SQL expressions the report queries share, written once for SQLite and PostgreSQL.

Durations and day / minute buckets are rendered by the dialect; time bounds are compared as
UTC, as the rows are stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    and_,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    true,
)
from sqlalchemy.sql import ColumnElement

from otel_diag.store.rules import NO_AGENT as NO_AGENT
from otel_diag.store.rules import NO_MODEL as NO_MODEL
from otel_diag.store.rules import rate as rate
from otel_diag.store.rules import rounded as rounded
from otel_diag.timewindow import as_utc


def between(column: Any, since: datetime | None, until: datetime | None) -> ColumnElement[bool]:
    clauses = []
    if since is not None:
        clauses.append(column >= as_utc(since))
    if until is not None:
        clauses.append(column < as_utc(until))
    return and_(*clauses) if clauses else true()


def duration_ms(conn: Connection, start: Any, end: Any) -> ColumnElement[Any]:
    if conn.dialect.name == "postgresql":
        return func.extract("epoch", end - start) * 1000.0
    return (func.julianday(end) - func.julianday(start)) * 86400000.0


def day_bucket(conn: Connection, column: Any) -> ColumnElement[Any]:
    """The UTC day of a timestamp (a timestamp on PostgreSQL, ``YYYY-MM-DD`` on SQLite).

    ``date_trunc`` rather than ``to_char``: this runs once per row of a large window.
    """
    if conn.dialect.name == "postgresql":
        # Constants inline (not bound): the planner matches this expression with the
        # statistics object of migration 0003 and then estimates the groups right.
        return func.date_trunc(
            literal_column("'day'"), func.timezone(literal_column("'UTC'"), column)
        )
    return func.substr(column, 1, 10)


def minute_bucket(conn: Connection, column: Any) -> ColumnElement[str]:
    """``YYYY-MM-DD HH:MI`` of a UTC timestamp."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI")
    return func.substr(column, 1, 16)


HOUR = 3600


def hour_bucket(dialect: str, column: Any) -> ColumnElement[int]:
    """Hours since the epoch of a UTC timestamp (floor of epoch seconds / 3600)."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / HOUR), Integer)
    # SQLite stores UTC text. strftime rounds fractional seconds to the millisecond (a row
    # at hh:59:59.9996 would land in the next hour), so only the whole seconds are read;
    # integer division truncates, so shift to positive first (exact after 1856).
    shift = 1_000_000
    seconds = cast(func.strftime("%s", func.substr(column, 1, 19)), Integer)
    return (seconds + shift * HOUR) // HOUR - shift


def one_of(dialect: str, column: Any, name: str) -> ColumnElement[bool]:
    """``column`` is one of the list bound as ``name`` at execution.

    PostgreSQL gets ``= ANY(array)``: one parameter, so the statement's text is the same
    for any number of values and psycopg prepares it after a few runs (no planning per
    batch). SQLite gets an expanding ``IN``.
    """
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))
