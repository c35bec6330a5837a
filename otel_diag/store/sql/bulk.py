"""Idempotent bulk inserts straight through the DBAPI, inside SQLAlchemy's transaction.

SQLAlchemy's per-row bind processing (UUID, DateTime, JSON) costs more than the insert
itself at ingest rates, so the hot tables are written with values already in the driver's
wire form, on the same connection and transaction:

- SQLite: ``INSERT OR IGNORE`` through ``sqlite3.executemany``; UUIDs as 32-char hex and
  datetimes as ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC), exactly what SQLAlchemy stores, so the
  ORM and Core read them back unchanged.
- PostgreSQL: a binary ``COPY`` into a per-session temp table, then ``INSERT ... SELECT ...
  ON CONFLICT (id) DO NOTHING`` (measured faster than one ``unnest``-of-arrays INSERT, and far
  faster than executemany); the conflict clause keeps re-sent spans from adding rows. Binary,
  typed by the table's columns: times and numbers go out in C without being formatted as
  text and parsed back by the server, and text needs no escaping (7 % of an export to
  PostgreSQL, interleaved runs of the exporter bench).

Rows are typed rows (dataclasses such as :class:`otel_diag.rows.Step`; their fields that
are columns of the table are written) or mappings keyed by column name.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table
from sqlalchemy.sql import sqltypes

# Converters work on a whole column (a list comprehension per column, not a Python call
# per value): at ingest rates the per-value call costs more than the conversion.
ColumnConverter = Callable[[Sequence[Any]], list[Any]]


def sqlite_datetimes(values: Sequence[datetime | None]) -> list[str | None]:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` of UTC datetimes, the seconds part formatted once.

    An aware ``isoformat`` costs 2.8 us (it formats the offset, then we cut it off); a
    batch's times fall in a few seconds, so the seconds text is kept per whole second
    (``round`` of the timestamp less its microseconds is exact) and only the microseconds
    are formatted per value: 1.6 us. Any other value (naive, or another zone) is formatted
    whole, as before.
    """
    seconds: dict[int, str] = {}
    out: list[str | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        if v.tzinfo is not UTC:
            out.append(v.isoformat(" ", "microseconds")[:26])
            continue
        micro = v.microsecond
        key = round(v.timestamp() - micro / 1e6)
        base = seconds.get(key)
        if base is None:
            base = seconds[key] = v.isoformat(" ", "seconds")[:19]
        out.append(f"{base}.{micro:06d}")
    return out


def _uuid_hexes(values: Sequence[uuid.UUID | None]) -> list[str | None]:
    return [None if v is None else f"{v.int:032x}" for v in values]  # == UUID.hex


def _json_texts(values: Sequence[Any]) -> list[str | None]:
    dumps = json.dumps
    return [None if v is None else dumps(v) for v in values]


def _ints(values: Sequence[Any]) -> list[int | None]:
    return [None if v is None else int(v) for v in values]


_SQLITE_CONVERTERS: dict[type, ColumnConverter] = {
    sqltypes.Uuid: _uuid_hexes,
    sqltypes.DateTime: sqlite_datetimes,
    sqltypes.JSON: _json_texts,
    sqltypes.Boolean: _ints,
}


def _aware(values: Sequence[datetime | None]) -> list[datetime | None]:
    """Naive times as UTC: a binary ``COPY`` into ``timestamptz`` takes only aware ones."""
    return [v if v is None or v.tzinfo is not None else v.replace(tzinfo=UTC) for v in values]


_PG_CONVERTERS: dict[type, ColumnConverter] = {sqltypes.DateTime: _aware}
_PG_COPY_TYPES: dict[type, str] = {
    sqltypes.Uuid: "uuid",
    sqltypes.DateTime: "timestamptz",
    sqltypes.BigInteger: "int8",
    sqltypes.Integer: "int4",
    sqltypes.Float: "float8",
    sqltypes.Boolean: "bool",
    sqltypes.JSON: "jsonb",
    sqltypes.String: "text",
}
"""The binary ``COPY`` type of each column type (first match; BigInteger before Integer)."""


def _first_match(col_type: Any, table_map: dict[type, Any]) -> Any:
    """The entry of the first class ``col_type`` (or the type a decorator wraps) is."""
    impl = getattr(col_type, "impl", None)
    for sa_type, value in table_map.items():
        if isinstance(col_type, sa_type) or isinstance(impl, sa_type):
            return value
    return None


@lru_cache(maxsize=64)
def _copy_types(table: Table, cols: tuple[str, ...]) -> tuple[str, ...]:
    """PostgreSQL type names of ``cols`` for a binary ``COPY`` (which sends no types)."""
    names = tuple(_first_match(table.columns[c].type, _PG_COPY_TYPES) for c in cols)
    if None in names:
        raise TypeError(f"a column of {table.name} has no binary COPY type: {cols}")
    return names


@lru_cache(maxsize=64)
def _plan(
    table: Table, cols: tuple[str, ...], dialect: str
) -> tuple[tuple[int, ColumnConverter], ...]:
    """(column index, converter) for the columns whose values need converting."""
    table_map = _SQLITE_CONVERTERS if dialect == "sqlite" else _PG_CONVERTERS
    plan = []
    for i, name in enumerate(cols):
        convert = _first_match(table.columns[name].type, table_map)
        if convert is not None:
            plan.append((i, convert))
    return tuple(plan)


def _tuples(
    table: Table, cols: tuple[str, ...], rows: Sequence[Any], dialect: str
) -> list[tuple[Any, ...]]:
    """The rows' values of ``cols`` in the driver's wire form, one tuple per row."""
    plan = _plan(table, cols, dialect)
    get = itemgetter(*cols) if isinstance(rows[0], Mapping) else attrgetter(*cols)
    values = list(map(get, rows))
    if not plan:
        return values
    columns: list[Sequence[Any]] = list(zip(*values, strict=True))
    for i, convert in plan:
        columns[i] = convert(columns[i])
    return list(zip(*columns, strict=True))


_ROW_COLUMNS: dict[tuple[str, type], tuple[str, ...]] = {}


def _row_columns(table: Table, row_type: type) -> tuple[str, ...]:
    """The table's columns that are fields of a typed row class (computed once per pair)."""
    key = (table.name, row_type)
    cols = _ROW_COLUMNS.get(key)
    if cols is None:
        fields = {f.name for f in dataclasses.fields(row_type)}
        cols = _ROW_COLUMNS[key] = tuple(c.name for c in table.columns if c.name in fields)
    return cols


def _columns(table: Table, rows: Sequence[Any]) -> tuple[str, ...]:
    """The table's columns the rows carry, in table order (at least two: the key and more)."""
    first = rows[0]
    if isinstance(first, Mapping):
        cols = tuple(c.name for c in table.columns if c.name in first)
    else:
        cols = _row_columns(table, type(first))
    if len(cols) < 2:
        raise ValueError(f"rows for {table.name} carry fewer than two of its columns: {cols}")
    return cols


def _sqlite_insert(conn: Connection, table: Table, rows: Sequence[Any]) -> int:
    cols = _columns(table, rows)
    sql = (
        f"INSERT OR IGNORE INTO {table.name} ({', '.join(cols)}) "
        f"VALUES ({', '.join('?' * len(cols))})"
    )
    data = _tuples(table, cols, rows, "sqlite")
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, data)
        return int(cursor.rowcount)
    finally:
        cursor.close()


_STAGING_METADATA = MetaData()


def stage_postgres(conn: Connection, table: Table, rows: Sequence[Any]) -> Table:
    """COPY ``rows`` into the session's temp staging table for ``table``; return it.

    LIKE resolves through search_path, i.e. the tenant's schema. ON COMMIT DELETE ROWS
    empties it at commit: a plain DELETE would leave dead rows, and temp tables are never
    vacuumed.
    """
    cols = _columns(table, rows)
    staging = f"_otel_diag_in_{table.name}"
    with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
        # One round trip; the DELETE matters when a table is staged twice in a transaction.
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} "
            f"(LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS; "
            f"DELETE FROM {staging}"
        )
        with cur.copy(f"COPY {staging} ({', '.join(cols)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(_copy_types(table, cols)))
            for values in _tuples(table, cols, rows, "postgresql"):
                copy.write_row(values)
    return staging_table(table)


@lru_cache(maxsize=16)
def staging_table(table: Table) -> Table:
    """The session's temp table :func:`stage_postgres` fills for ``table`` (for SELECTs)."""
    return Table(
        f"_otel_diag_in_{table.name}",
        _STAGING_METADATA,
        *(Column(c.name, c.type) for c in table.columns),
    )


def _postgres_insert(conn: Connection, table: Table, rows: Sequence[Any]) -> int:
    cols = _columns(table, rows)
    stage_postgres(conn, table, rows)
    col_list = ", ".join(cols)
    # Key order: concurrent writers then take unique-index locks in the same order, so
    # overlapping re-sends wait for each other instead of deadlocking.
    key = ", ".join(c.name for c in table.primary_key.columns)
    with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(
            f"INSERT INTO {table.name} ({col_list}) SELECT {col_list} "
            f"FROM _otel_diag_in_{table.name} ORDER BY {key} ON CONFLICT DO NOTHING"
        )
        return int(cur.rowcount)


_COMPILED: dict[tuple[Any, tuple[str, ...]], tuple[str, tuple[tuple[int, Any], ...]]] = {}


def _compiled_sqlite(
    conn: Connection, statement: Any, cols: tuple[str, ...]
) -> tuple[str, tuple[tuple[int, Any], ...]]:
    """SQL text of a one-row statement for ``cols`` and, per ``?``, (column index, constant).

    The index is -1 for a parameter that is a constant of the statement (a literal in its
    ``ON CONFLICT`` clause); compiled once per statement and column set.
    """
    key = (statement, cols)
    found = _COMPILED.get(key)
    if found is None:
        compiled = statement.compile(dialect=conn.dialect, column_keys=list(cols))
        index = {c: i for i, c in enumerate(cols)}
        order = tuple(
            (index.get(name, -1), compiled.params.get(name)) for name in compiled.positiontup
        )
        found = _COMPILED[key] = (str(compiled), order)
    return found


def upsert_many(conn: Connection, table: Table, statement: Any, rows: Sequence[Any]) -> None:
    """SQLite: run a one-row ``INSERT ... ON CONFLICT DO UPDATE`` once per row, in one
    ``executemany`` (values converted like :func:`insert_ignore`'s)."""
    if not rows:
        return
    cols = _columns(table, rows)
    sql, order = _compiled_sqlite(conn, statement, cols)
    data = _tuples(table, cols, rows, "sqlite")
    if any(i < 0 for i, _ in order) or [i for i, _ in order] != list(range(len(cols))):
        data = [tuple(row[i] if i >= 0 else const for i, const in order) for row in data]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, data)
    finally:
        cursor.close()


def insert_ignore(conn: Connection, table: Table, rows: Sequence[Any]) -> int:
    """Insert ``rows`` (typed rows or mappings, see above) skipping keys that already exist.

    Returns how many rows were new.
    """
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        return _postgres_insert(conn, table, rows)
    return _sqlite_insert(conn, table, rows)
