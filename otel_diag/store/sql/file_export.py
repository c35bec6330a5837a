"""Streaming reads for ``otel-diag export``: a million rows without a million rows in memory.

Rows come in batches from a server-side cursor (PostgreSQL) or a lazily stepped SQLite
cursor, so memory stays flat whatever the table size. Every value is rendered to its
export form by the database itself (UUIDs dashed, timestamps as ISO 8601 UTC with
microseconds, JSON as text), which keeps both backends' files identical and skips the
per-value Python conversions that would otherwise cap the export rate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, Table, Text, Uuid, cast, func, literal, select
from sqlalchemy.sql import ColumnElement, Select

from otel_diag.store.port import ExportFilter
from otel_diag.store.rules import EXPORT_COLUMNS, EXPORT_JSON_COLUMNS
from otel_diag.store.sql.models import error_logs, runs, steps
from otel_diag.timewindow import as_utc

# table name -> (table, exported columns in file order, the time column filters apply to);
# the columns are every backend's (otel_diag.store.rules.EXPORT_COLUMNS).
EXPORTS: dict[str, tuple[Table, tuple[str, ...], str]] = {
    name: (table, *EXPORT_COLUMNS[name])
    for name, table in (("errors", error_logs), ("runs", runs), ("steps", steps))
}
JSON_COLUMNS = EXPORT_JSON_COLUMNS
"""Columns holding JSON text (a JSON export parses them back into objects)."""


def columns(table_name: str, *, trace_url: bool = False) -> tuple[str, ...]:
    """Exported column names in file order (``trace_url`` last when a template is set)."""
    names = EXPORTS[table_name][1]
    return (*names, "trace_url") if trace_url else names


def _as_text(conn: Connection, column: Any) -> ColumnElement[Any]:
    """The column rendered to its export form by the database."""
    pg = conn.dialect.name == "postgresql"
    if isinstance(column.type, Uuid):
        if pg:
            return cast(column, Text)
        parts = [func.substr(column, 1, 8)]
        for start, length in ((9, 4), (13, 4), (17, 4), (21, 12)):
            parts.append(func.substr(column, start, length))
        out: Any = parts[0]
        for part in parts[1:]:
            out = out.op("||")("-").op("||")(part)
        return out  # type: ignore[no-any-return]
    if isinstance(column.type, DateTime):
        if pg:
            stamp = func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US')
        else:
            stamp = func.replace(column, " ", "T")
        return stamp.op("||")("+00:00")  # type: ignore[no-any-return]
    if isinstance(column.type, JSON):
        return cast(column, Text)
    return column  # type: ignore[no-any-return]


def _query(
    conn: Connection,
    table_name: str,
    flt: ExportFilter,
    *,
    count: bool = False,
    trace_url_template: str | None = None,
) -> Select[Any]:
    table, names, time_name = EXPORTS[table_name]
    time_col = table.c[time_name]
    if count:
        query: Select[Any] = select(func.count()).select_from(table)
    else:
        values = [_as_text(conn, table.c[n]).label(n) for n in names]
        if trace_url_template:
            url = func.replace(literal(trace_url_template), "{trace_id}", table.c.trace_id)
            values.append(url.label("trace_url"))
        query = select(*values)
    if flt.since is not None:
        query = query.where(time_col >= as_utc(flt.since))
    if flt.until is not None:
        query = query.where(time_col < as_utc(flt.until))
    run_col = table.c.id if table is runs else table.c.run_id
    if flt.run_id is not None:
        query = query.where(run_col == flt.run_id)
    run_filters = []
    if flt.status:
        run_filters.append(runs.c.status == flt.status)
    if flt.agent:
        run_filters.append(runs.c.agent_name == flt.agent)
    if run_filters and table is runs:
        query = query.where(*run_filters)
    elif run_filters:
        query = query.where(run_col.in_(select(runs.c.id).where(*run_filters)))
    if count:
        if flt.limit is not None:
            inner = query.with_only_columns(table.c.id).limit(flt.limit).subquery()
            return select(func.count()).select_from(inner)
        return query
    # Time order through the time column's index: no sort of the whole export.
    query = query.order_by(time_col)
    return query.limit(flt.limit) if flt.limit is not None else query


def count_rows(conn: Connection, table_name: str, flt: ExportFilter) -> int:
    """How many rows an export with ``flt`` will write (for a progress bar)."""
    return int(conn.execute(_query(conn, table_name, flt, count=True)).scalar_one())


def iter_batches(
    conn: Connection,
    table_name: str,
    flt: ExportFilter,
    batch_size: int = 5000,
    *,
    trace_url_template: str | None = None,
) -> Iterator[Sequence[Sequence[Any]]]:
    """Rows of ``table_name`` matching ``flt`` in time order, ``batch_size`` at a time.

    Values are str, int, float or None, in :func:`columns` order.
    """
    query = _query(conn, table_name, flt, trace_url_template=trace_url_template)
    streaming = conn.execution_options(stream_results=True, yield_per=batch_size)
    result = streaming.execute(query)
    try:
        yield from result.partitions(batch_size)
    finally:
        result.close()


def can_copy(conn: Connection) -> bool:
    """Whether :func:`copy_csv` works here (PostgreSQL through psycopg)."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def copy_csv(
    conn: Connection,
    table_name: str,
    flt: ExportFilter,
    write: Callable[[bytes], Any],
    *,
    trace_url_template: str | None = None,
) -> int:
    """PostgreSQL: the export as CSV with a header, by ``COPY (query) TO STDOUT``.

    The server renders the CSV and streams it in chunks; nothing is held in memory. Same
    query, columns and values as :func:`iter_batches`. Returns the number of rows.
    """
    query = _query(conn, table_name, flt, trace_url_template=trace_url_template)
    compiled = query.compile(dialect=conn.dialect)
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("no database connection to COPY from")
    with driver.cursor() as cursor:
        statement = f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, HEADER)"
        with cursor.copy(statement, compiled.params) as copy:
            for chunk in copy:
                write(bytes(chunk))
        return int(cursor.rowcount)
