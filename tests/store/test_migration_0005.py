"""Migration 0005 turns the copies earlier versions stored into one failure per occurrence."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, func, select, text

from otel_diag.store.sql import migrate
from otel_diag.store.sql.models import error_logs, error_propagations, runs

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
TRACE = "ab" * 16
SPANS = {"root": "1" * 16, "agent": "2" * 16, "try1": "3" * 16, "try2": "4" * 16}


def _old_shape(conn) -> uuid.UUID:
    """A run as version 0004 stored it: two tool attempts, then copies on agent and root."""
    run_id = uuid.uuid4()
    conn.execute(
        text(
            "INSERT INTO runs (id, trace_id, name, status, started_at, ended_at, root_seen, "
            "root_failed, step_count, llm_calls, tool_calls, input_tokens, output_tokens, "
            "unpriced_tokens, error_count, last_span_at) VALUES (:id, :t, 'trip', 'failed', "
            ":s, :e, true, true, 3, 0, 2, 0, 0, 0, 4, :e)"
        ),
        {"id": _uuid(conn, run_id), "t": TRACE, "s": T0, "e": T0 + timedelta(seconds=1)},
    )
    steps = {
        "agent": ("planner", "agent", SPANS["root"]),
        "try1": ("search", "tool", SPANS["agent"]),
        "try2": ("search", "tool", SPANS["agent"]),
    }
    step_ids = {}
    for label, (name, kind, parent) in steps.items():
        step_ids[label] = uuid.uuid4()
        conn.execute(
            text(
                "INSERT INTO steps (id, run_id, trace_id, span_id, parent_span_id, step_name, "
                "kind, status, started_at, ended_at, duration_ms, attempt) VALUES "
                "(:id, :run, :t, :span, :parent, :name, :kind, 'error', :s, :s, 1.0, 1)"
            ),
            {
                "id": _uuid(conn, step_ids[label]),
                "run": _uuid(conn, run_id),
                "t": TRACE,
                "span": SPANS[label],
                "parent": parent,
                "name": name,
                "kind": kind,
                "s": T0,
            },
        )
    errors = [
        ("try1", "search", 1, 1),
        ("try2", "search", 2, 2),
        ("agent", "planner", 1, 3),
        ("root", "invoke_workflow trip", 1, 4),
    ]
    for label, name, attempt, ms in errors:
        conn.execute(
            text(
                "INSERT INTO error_logs (id, run_id, step_id, step_name, source, error_category, "
                "error_type, error_message, context, attempt, created_at, trace_id, span_id, "
                "fingerprint) VALUES (:id, :run, :step, :name, 'tool', 'dependency', "
                "'ConnectionError', 'upstream unreachable', '{}', :attempt, :at, :t, :span, 'f')"
            ),
            {
                "id": _uuid(conn, uuid.uuid4()),
                "run": _uuid(conn, run_id),
                "step": _uuid(conn, step_ids[label]) if label in step_ids else None,
                "name": name,
                "attempt": attempt,
                "at": T0 + timedelta(milliseconds=ms),
                "t": TRACE,
                "span": SPANS[label],
            },
        )
    return run_id


def _uuid(conn, value: uuid.UUID) -> str:
    return value.hex if conn.dialect.name == "sqlite" else str(value)


def test_upgrading_folds_propagated_copies_into_the_failure_they_repeat(empty_db_url: str) -> None:
    engine = create_engine(empty_db_url)
    try:
        migrate.upgrade(engine, "0004")
        with engine.begin() as conn:
            run_id = _old_shape(conn)

        migrate.upgrade(engine)

        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    error_logs.c.step_name, error_logs.c.attempt, error_logs.c.propagated_to
                ).order_by(error_logs.c.created_at)
            ).all()
            count = conn.execute(select(runs.c.error_count).where(runs.c.id == run_id)).scalar()
            copies = conn.execute(select(func.count()).select_from(error_propagations)).scalar()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("search", 1, None),
        ("search", 2, ["planner", "invoke_workflow trip"]),
    ]
    assert count == 2
    assert copies == 2
