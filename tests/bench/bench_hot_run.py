"""A write to a run that already holds many errors costs what a write to a new run costs.

The writer keeps the error-group rollup exact by reading, before and after each write, the
rows the write can change (:mod:`otel_diag.store.sql.group_hours`). It reads the touched
(run, group) pairs from the earliest hour they change, not whole runs, so a long-lived run
key that keeps failing must not make each of its writes slower. Load: one run key, grown to
2,000 and then 20,000 errors (20 error shapes, one a second going back in time); at each
size, 20 exports of one failing span of that run. Baseline in the same run: the same
one-span export to a run with no errors. Figures only: no assertion on timing.

``python -m tests.bench hot_run`` runs it alone.
"""

from __future__ import annotations

import tempfile
import time

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import StatusCode

from otel_diag.config import load_settings
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store.sql.engine import TenantDBManager
from tests.bench.scratch import create_pg_database, drop_pg_database
from tests.factories import make_span, new_trace_id

WRITES = 20


def failing(i: int, at_ns: int, run_key: str) -> ReadableSpan:
    message = f"disk {i % 20} full"
    return make_span(
        f"tool{i % 7}",
        trace_id=new_trace_id(),
        start_ns=at_ns,
        attributes={"gen_ai.operation.name": "execute_tool", "otel_diag.run.id": run_key},
        status=StatusCode.ERROR,
        events=[
            Event("exception", {"exception.type": "IOError", "exception.message": message}, at_ns)
        ],
    )


def per_write_ms(exporter: ErrorLogSpanExporter, run_key: str, now: int) -> float:
    started = time.perf_counter()
    for k in range(WRITES):
        exporter.export([failing(10**6 + k, now, run_key)])
    return (time.perf_counter() - started) / WRITES * 1e3


def measure(label: str, url: str) -> None:
    manager = TenantDBManager(url, load_settings(database_url=url))
    manager.get_engine()
    exporter = ErrorLogSpanExporter(manager=manager, settings=manager.settings)
    now = time.time_ns()
    try:
        per_write_ms(exporter, "warm-up", now)
        baseline = per_write_ms(exporter, "fresh", now)
        stored = 0
        figures = []
        for size in (2_000, 20_000):
            while stored < size:
                spans = [failing(i, now - i * 10**9, "hot") for i in range(stored, stored + 500)]
                exporter.export(spans)
                stored += 500
            figures.append(f"{size:,} errors {per_write_ms(exporter, 'hot', now):.1f} ms")
        print(
            f"{label}: one-span export to a run with {', '.join(figures)}"
            f" | to a run with no errors {baseline:.1f} ms"
        )
    finally:
        exporter.shutdown()
        manager.dispose()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        measure("SQLite", f"sqlite:///{tmp}/hot.db")
    name, url = create_pg_database()
    try:
        measure("PostgreSQL", url)
    finally:
        drop_pg_database(name)


if __name__ == "__main__":
    main()
