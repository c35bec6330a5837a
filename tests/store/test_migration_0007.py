"""Migration 0007 counts the error-group rollup from the rows already stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, create_engine, select, text

from otel_diag.store.sql import migrate
from otel_diag.store.sql.models import error_group_hours

T0 = datetime(2026, 11, 30, 12, 5, tzinfo=UTC)
H = int(T0.timestamp() // 3600)


def _run(conn: Connection, service: str, agent: str | None) -> str:
    run_id = uuid.uuid4()
    value = run_id.hex if conn.dialect.name == "sqlite" else str(run_id)
    conn.execute(
        text(
            "INSERT INTO runs (id, trace_id, name, service_name, agent_name, status, started_at, "
            "ended_at, root_seen, root_failed, step_count, llm_calls, tool_calls, input_tokens, "
            "output_tokens, unpriced_tokens, error_count, last_span_at) VALUES (:id, :t, 'trip', "
            ":service, :agent, 'failed', :s, :s, true, true, 0, 0, 0, 0, 0, 0, 1, :s)"
        ),
        {"id": value, "t": run_id.hex, "service": service, "agent": agent, "s": T0},
    )
    return value


def _error(conn: Connection, run_id: str, fingerprint: str, at: datetime) -> None:
    error_id = uuid.uuid4()
    conn.execute(
        text(
            "INSERT INTO error_logs (id, run_id, step_name, source, error_category, error_type, "
            "error_message, context, attempt, created_at, trace_id, span_id, fingerprint) "
            "VALUES (:id, :run, 'search', 'tool', 'dependency', 'IOError', 'disk full', '{}', "
            "1, :at, :t, :span, :fp)"
        ),
        {
            "id": error_id.hex if conn.dialect.name == "sqlite" else str(error_id),
            "run": run_id,
            "at": at,
            "t": "ab" * 16,
            "span": error_id.hex[:16],
            "fp": fingerprint,
        },
    )


def test_upgrading_counts_each_group_hour_and_each_runs_last_hour(empty_db_url: str) -> None:
    engine = create_engine(empty_db_url)
    try:
        migrate.upgrade(engine, "0006")
        with engine.begin() as conn:
            shop = _run(conn, "shop", None)
            depot = _run(conn, "depot", "buyer")
            _error(conn, shop, "f", T0)
            _error(conn, shop, "f", T0 + timedelta(hours=2))  # the run's last "f"
            _error(conn, shop, "g", T0 + timedelta(minutes=30))
            _error(conn, depot, "f", T0 + timedelta(minutes=10))

        migrate.upgrade(engine)

        t = error_group_hours.c
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    t.fingerprint, t.hour, t.service_name, t.agent_name, t.occurrences, t.runs_last
                )
            ).all()
    finally:
        engine.dispose()
    assert sorted(tuple(r) for r in rows) == [
        ("f", H, "depot", "buyer", 1, 1),
        ("f", H, "shop", "", 1, 0),
        ("f", H + 2, "shop", "", 1, 1),
        ("g", H, "shop", "", 1, 1),
    ]
