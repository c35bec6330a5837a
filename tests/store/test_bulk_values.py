"""Whatever a span can put in a row comes back unchanged through the bulk write path.

The hot tables bypass SQLAlchemy's bind processing (``store/sql/bulk``): SQLite gets values
in SQLAlchemy's stored form through ``executemany``, PostgreSQL a binary ``COPY`` typed by
the table's columns. Text that COPY's text format would have to escape (tabs, newlines,
backslashes), non-ASCII, bounds of every numeric column, NULLs, JSON with nesting and
escapes, and microsecond times must all read back as written.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from otel_diag.config import load_settings
from otel_diag.rows import ErrorRow, Step
from otel_diag.store.sql.bulk import insert_ignore
from otel_diag.store.sql.engine import TenantDBManager
from otel_diag.store.sql.models import error_logs, steps
from otel_diag.store.sql.transactions import write_transaction

AWKWARD = [
    "tab\there",
    "new\nline\r\n",
    "back\\slash \\N \\.",
    "quotes ' \" `",
    "héllo — 日本語 🚀",
    "x" * 256,
]
TIMES = [
    datetime(2026, 12, 3, 5, 59, 59, 999_999, UTC),
    datetime(2026, 12, 3, 6, 0, 0, 0, UTC),
    datetime(1970, 1, 1, 0, 0, 0, 1, UTC),
    datetime(2099, 12, 31, 23, 59, 59, 500_000, UTC),
]


def _step(i: int, text: str, at: datetime, run_id: uuid.UUID) -> Step:
    return Step(
        id=uuid.uuid4(),
        run_id=run_id,
        trace_id=f"{i:032x}",
        span_id=f"{i:016x}",
        parent_span_id=None if i % 2 else f"{i + 1:016x}",
        step_name=text,
        kind="llm",
        status="ok",
        started_at=at,
        ended_at=at + timedelta(microseconds=1),
        duration_ms=0.001 if i % 2 else 123456.789,
        model=text[:128] if i % 2 else None,
        input_tokens=2**40 - 1 if i % 2 else None,
        output_tokens=0,
        cost_usd=1e-12 if i % 2 else None,
        cost_reported_usd=0.0,
        attempt=2**31 - 1 if i % 2 else 1,
        error_type=None,
    )


def _error(i: int, text: str, at: datetime, run_id: uuid.UUID) -> ErrorRow:
    return ErrorRow(
        id=uuid.uuid4(),
        run_id=run_id,
        step_id=None if i % 2 else uuid.uuid4(),
        step_name=text,
        source="tool",
        error_category="timeout",
        error_type=text,
        error_message=text * 3,
        stack_trace=None if i % 2 else "\n".join(AWKWARD),
        context={
            "text": text,
            "nested": {"list": [1, 2.5, None, True, '\\"\u2028'], "empty": {}},
            "number": -(2**53),
        },
        attempt=3,
        created_at=at,
        trace_id=f"{i:032x}",
        span_id=f"{i:016x}",
        input_tokens=2**40 - 1,
        cost_usd=None if i % 2 else 0.5,
        fingerprint=f"{i:064x}",
        propagated_to=None if i % 2 else ("outer", text),
    )


def test_awkward_values_read_back_as_written(db_url: str) -> None:
    manager = TenantDBManager(db_url, load_settings(database_url=db_url))
    try:
        engine = manager.get_engine()
        run_id = uuid.uuid4()
        cases = [(text, at) for text in AWKWARD for at in TIMES]
        step_rows = [_step(i, text, at, run_id) for i, (text, at) in enumerate(cases)]
        error_rows = [_error(i, text, at, run_id) for i, (text, at) in enumerate(cases)]
        with write_transaction(engine) as conn:
            assert insert_ignore(conn, steps, step_rows) == len(step_rows)
            assert insert_ignore(conn, error_logs, error_rows) == len(error_rows)
            assert insert_ignore(conn, steps, step_rows) == 0  # a re-send adds nothing
        with engine.connect() as conn:
            stored_steps = {r.id: r for r in conn.execute(select(steps))}
            stored_errors = {r.id: r for r in conn.execute(select(error_logs))}
        for row, table, stored in (
            *((s, steps, stored_steps) for s in step_rows),
            *((e, error_logs, stored_errors) for e in error_rows),
        ):
            back = stored[row.id]
            for column in table.columns:
                if not hasattr(row, column.name):
                    continue
                wrote, read = getattr(row, column.name), getattr(back, column.name)
                if isinstance(wrote, datetime) and read.tzinfo is None:  # SQLite keeps no zone
                    wrote = wrote.replace(tzinfo=None)
                if isinstance(wrote, tuple):
                    wrote = list(wrote)  # a JSON array reads back as a list
                assert read == wrote, (table.name, column.name)
    finally:
        manager.dispose()


def test_a_naive_time_is_stored_as_utc(db_url: str) -> None:
    """Rows carry aware UTC times; a naive one (a caller's slip) is taken as UTC, not lost."""
    manager = TenantDBManager(db_url, load_settings(database_url=db_url))
    try:
        engine = manager.get_engine()
        naive = datetime(2026, 12, 3, 7, 30, 0, 250_000)
        row = dataclasses.replace(_step(1, "naive", TIMES[0], uuid.uuid4()), started_at=naive)
        with write_transaction(engine) as conn:
            assert insert_ignore(conn, steps, [row]) == 1
        with engine.connect() as conn:
            read = conn.execute(select(steps.c.started_at)).scalar_one()
        assert read.replace(tzinfo=None) == naive
        assert read.tzinfo is None or read.utcoffset() == timedelta(0)
    finally:
        manager.dispose()
