"""The bulk path writes SQLite values in exactly the form SQLAlchemy stores and reads back.

Step and error times bypass SQLAlchemy's bind processing on the way in (``store/sql/bulk``),
so a formatting shortcut there must still give the text SQLAlchemy's own DateTime writes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from otel_diag.config import load_settings
from otel_diag.rows import Step
from otel_diag.store.sql.bulk import insert_ignore
from otel_diag.store.sql.engine import TenantDBManager
from otel_diag.store.sql.models import steps
from otel_diag.store.sql.transactions import write_transaction

EDGES = [
    datetime(2026, 12, 3, 5, 59, 59, 999_999, UTC),
    datetime(2026, 12, 3, 6, 0, 0, 0, UTC),
    datetime(2026, 12, 3, 6, 0, 0, 1, UTC),
    datetime(1969, 12, 31, 23, 59, 59, 500_000, UTC),
    datetime(2099, 1, 1, 0, 0, 0, 999_999, UTC),
]


def _step(at: datetime, run_id: uuid.UUID) -> Step:
    return Step(
        id=uuid.uuid4(),
        run_id=run_id,
        trace_id="a" * 32,
        span_id=uuid.uuid4().hex[:16],
        parent_span_id=None,
        step_name="search",
        kind="tool",
        status="ok",
        started_at=at,
        ended_at=at + timedelta(microseconds=999_999),
        duration_ms=1000.0,
    )


def test_bulk_written_times_are_the_text_sqlalchemy_writes_and_read_back_equal(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    manager = TenantDBManager(url, load_settings(database_url=url))
    try:
        engine = manager.get_engine()
        times = EDGES + [EDGES[1] + timedelta(microseconds=700 * i) for i in range(3000)]
        bulk = [_step(t, uuid.uuid4()) for t in times]
        by_orm = [_step(t, uuid.uuid4()) for t in EDGES]
        with write_transaction(engine) as conn:
            assert insert_ignore(conn, steps, bulk) == len(bulk)
            for row in by_orm:
                conn.execute(
                    insert(steps).values(
                        {
                            c.name: getattr(row, c.name)
                            for c in steps.columns
                            if hasattr(row, c.name)
                        }
                    )
                )
        with engine.connect() as conn:
            raw = conn.exec_driver_sql("SELECT id, started_at, ended_at FROM steps").all()
            read = {r.id: (r.started_at, r.ended_at) for r in conn.execute(select(steps))}
        text = {row[0]: (row[1], row[2]) for row in raw}
        for step in bulk:  # SQLite keeps no zone: SQLAlchemy reads the UTC wall clock back
            naive = (step.started_at.replace(tzinfo=None), step.ended_at.replace(tzinfo=None))
            assert read[step.id] == naive
        for orm_row, bulk_row in zip(by_orm, bulk, strict=False):
            assert text[orm_row.id.hex] == text[bulk_row.id.hex]  # same instant, same text
    finally:
        manager.dispose()
