"""Throughput of ``ErrorLogSpanExporter.export()`` against raw inserts of the same rows.

Load: batches of 512 spans from 10-span agent traces (GenAI attributes), 10% of traces
failing with exception events and a 2 KB stack trace, recorded by a real ``TracerProvider``
(so attributes are the SDK's ``BoundedAttributes``, as an exporter receives them). In the
same run:

- export() into SQLite and into PostgreSQL (spans/s);
- the raw insert rate of exactly the rows export() wrote, with ``sqlite3.executemany`` and
  psycopg ``COPY`` into the same schema (the ceiling), and the ratio;
- the stock ``OTLPSpanExporter``'s encode cost per span (protobuf encode + serialize) on
  the same spans, against export()'s cost per span.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sqlite3
import tempfile
import time
import uuid
from datetime import datetime

import psycopg

from otel_diag.config import load_settings
from otel_diag.projection.project import project, trace_runs_in
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.spans.from_sdk import from_readable_span
from otel_diag.store.sql.engine import WAL_CHECKPOINT_PAGES, WAL_SIZE_LIMIT, TenantDBManager
from tests.bench.scratch import create_pg_database, drop_pg_database
from tests.factories import agent_trace, through_sdk

BATCH = 512
TRACES = 5_000  # 50k spans


def make_batches(seed: int = 7) -> list[list]:
    rng = random.Random(seed)
    spans = []
    for i in range(TRACES):
        spans.extend(through_sdk(agent_trace(failing=i % 10 == 0, rng=rng, run_key=None)))
    return [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]


def run_export(url: str, batches: list[list]) -> float:
    settings = load_settings(database_url=url)
    manager = TenantDBManager(url, settings)
    manager.get_engine()  # create + migrate outside the timed section
    exporter = ErrorLogSpanExporter(manager=manager, settings=settings)
    started = time.perf_counter()
    for batch in batches:
        exporter.export(batch)
    elapsed = time.perf_counter() - started
    manager.dispose()
    return elapsed


def _columns(row: object) -> dict:
    """A typed row as the column values the raw baselines insert (fields that are columns)."""
    return {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}  # type: ignore[arg-type]


def projected_rows(batches: list[list]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"runs": [], "steps": [], "error_logs": []}
    for batch in batches:
        recs = [r for r in map(from_readable_span, batch) if r is not None]
        proj = project(recs, trace_runs_in(recs))
        out["runs"].extend(map(_columns, proj.runs.values()))
        out["steps"].extend(map(_columns, proj.steps))
        out["error_logs"].extend(map(_columns, proj.errors))
    # Traces cut across batches give a run twice: keep one row, as the upsert would.
    out["runs"] = list({r["id"]: r for r in out["runs"]}.values())
    for row in out["runs"]:
        row.update(
            status="failed",
            last_span_at=row["ended_at"],
            step_count=0,
            llm_calls=0,
            tool_calls=0,
            input_tokens=0,
            output_tokens=0,
            unpriced_tokens=0,
            error_count=0,
        )
    return out


def _plain(value):
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def raw_sqlite(path: str, rows: dict[str, list[dict]]) -> float:
    TenantDBManager(f"sqlite:///{path}").get_engine().dispose()  # same schema + indexes
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")  # the pragmas otel-diag's engine sets
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    prepared = {}
    for table, table_rows in rows.items():
        cols = list(table_rows[0])
        prepared[table] = (cols, [tuple(_plain(r[c]) for c in cols) for r in table_rows])
    started = time.perf_counter()
    for table, (cols, tuples) in prepared.items():
        for i in range(0, len(tuples), BATCH):
            conn.execute("BEGIN")
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                tuples[i : i + BATCH],
            )
            conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def raw_copy(url: str, rows: dict[str, list[dict]]) -> float:
    TenantDBManager(url).get_engine().dispose()
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    prepared = {}
    for table, table_rows in rows.items():
        cols = list(table_rows[0])
        prepared[table] = (
            cols,
            [
                tuple(json.dumps(r[c]) if isinstance(r[c], dict) else r[c] for c in cols)
                for r in table_rows
            ],
        )
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        for table, (cols, tuples) in prepared.items():
            for i in range(0, len(tuples), BATCH):
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy,
                ):
                    for tup in tuples[i : i + BATCH]:
                        copy.write_row(tup)
                conn.commit()
        return time.perf_counter() - started


def otlp_encode_seconds(batches: list[list]) -> float:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    started = time.perf_counter()
    for batch in batches:
        encode_spans(batch).SerializeToString()
    return time.perf_counter() - started


def stage_costs(batches: list[list]) -> tuple[float, float]:
    """Seconds to convert every span to a record, and to project the records (no store)."""
    started = time.perf_counter()
    records = [[r for r in map(from_readable_span, batch) if r is not None] for batch in batches]
    converted = time.perf_counter()
    for recs in records:
        project(recs, trace_runs_in(recs))
    return converted - started, time.perf_counter() - converted


def main() -> None:
    batches = make_batches()
    n = sum(len(b) for b in batches)
    rows = projected_rows(batches)
    print(
        f"load: {n} spans in {len(batches)} batches of {BATCH}; rows: {len(rows['runs'])} runs, "
        f"{len(rows['steps'])} steps, {len(rows['error_logs'])} error_logs"
    )
    encode = otlp_encode_seconds(batches)
    print(
        f"OTLPSpanExporter encode+serialize: {n / encode:,.0f} spans/s ({encode / n * 1e6:.1f} us/span)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        t_exp = run_export(f"sqlite:///{tmp}/export.db", batches)
        t_raw = raw_sqlite(f"{tmp}/raw.db", rows)
    print(
        f"SQLite   export(): {n / t_exp:,.0f} spans/s ({t_exp / n * 1e6:.1f} us/span, "
        f"{t_exp / n / (encode / n):.2f}x OTLP encode) | raw executemany of the same rows: "
        f"{n / t_raw:,.0f} spans/s | export/raw = {t_raw / t_exp:.2f}"
    )
    t_convert, t_project = stage_costs(batches)
    print(
        f"  of which: SDK span -> record {t_convert / n * 1e6:.1f} us/span, projection "
        f"{t_project / n * 1e6:.1f} us/span, the rest (write, commit, settlement) "
        f"{(t_exp - t_convert - t_project) / n * 1e6:.1f} us/span"
    )
    pg_exp, url_exp = create_pg_database()
    pg_raw, url_raw = create_pg_database()
    try:
        t_exp = run_export(url_exp, batches)
        t_raw = raw_copy(url_raw, rows)
    finally:
        drop_pg_database(pg_exp)
        drop_pg_database(pg_raw)
    print(
        f"Postgres export(): {n / t_exp:,.0f} spans/s ({t_exp / n * 1e6:.1f} us/span, "
        f"{t_exp / n / (encode / n):.2f}x OTLP encode) | raw COPY of the same rows: "
        f"{n / t_raw:,.0f} spans/s | export/raw = {t_raw / t_exp:.2f}"
    )
    print("targets: >= 40,000 spans/s SQLite, >= 25,000 spans/s PostgreSQL, < 1x OTLP encode")


if __name__ == "__main__":
    main()
