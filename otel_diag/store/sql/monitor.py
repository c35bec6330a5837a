"""One frame of ``otel-diag monitor``: rates, spend and the latest failures and diagnoses.

Its own small queries, run every refresh: a handful of counts over the window, not the
CLI's full ``stats`` report (per-agent percentiles are not on the dashboard).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, func, select

from otel_diag.redact import truncate
from otel_diag.rows import FINISHED, RunStatus, to_json
from otel_diag.store.rules import EXCERPT_CHARS
from otel_diag.store.sql.expressions import NO_MODEL, minute_bucket, rate
from otel_diag.store.sql.models import diagnostic_reports, error_logs, runs, steps
from otel_diag.timewindow import as_utc


def monitor_snapshot(
    conn: Connection,
    window: timedelta,
    now: datetime | None = None,
    *,
    errors: int = 10,
    diagnoses: int = 5,
) -> dict[str, Any]:
    """What the live dashboard shows for the last ``window``: rates, cost, latest rows."""
    now = as_utc(now or datetime.now(UTC))
    since = now - window
    minutes = window.total_seconds() / 60.0
    failed = RunStatus.FAILED.value
    runs_n, failed_n, running_n, finished_n, spent = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((runs.c.status == failed, 1), else_=0)), 0),
            func.coalesce(
                func.sum(case((runs.c.status == RunStatus.RUNNING.value, 1), else_=0)), 0
            ),
            func.coalesce(
                func.sum(case((runs.c.status.in_([s.value for s in FINISHED]), 1), else_=0)), 0
            ),
            func.coalesce(func.sum(runs.c.cost_usd), 0.0),
        ).where(runs.c.started_at >= since)
    ).one()
    stats: dict[str, Any] = {
        "runs": int(runs_n),
        "failed": int(failed_n),
        "running": int(running_n),
        "failure_rate": rate(int(failed_n), int(finished_n)),
        "cost_usd": float(spent or 0.0),
    }
    minute = minute_bucket(conn, runs.c.started_at)
    series = conn.execute(
        select(minute, func.count(), func.sum(case((runs.c.status == "failed", 1), else_=0)))
        .where(runs.c.started_at >= since)
        .group_by(minute)
        .order_by(minute)
    ).all()
    model = func.coalesce(steps.c.model, NO_MODEL)
    models = conn.execute(
        select(
            model,
            func.count(),
            func.sum(steps.c.cost_usd),
            func.sum(
                func.coalesce(steps.c.input_tokens, 0) + func.coalesce(steps.c.output_tokens, 0)
            ),
            func.sum(case((steps.c.cost_source == "unpriced", 1), else_=0)),
        )
        .where(steps.c.started_at >= since, steps.c.cost_source.is_not(None))
        .group_by(model)
        .order_by(func.sum(steps.c.cost_usd).desc())
    ).all()
    pending = conn.execute(
        select(func.count()).where(runs.c.diagnosis_state == "pending", runs.c.status == "failed")
    ).scalar_one()
    return {
        "now": now.isoformat(),
        "window_minutes": round(minutes, 2),
        "runs": stats["runs"],
        "failed": stats["failed"],
        "running": stats["running"],
        "runs_per_minute": round(stats["runs"] / minutes, 3),
        "failure_rate": stats["failure_rate"],
        "cost_usd": round(stats["cost_usd"], 9),
        "cost_per_minute": round(stats["cost_usd"] / minutes, 9),
        "pending_diagnoses": pending,
        "per_minute": [{"minute": m, "runs": n, "failed": int(f or 0)} for m, n, f in series],
        "models": [
            {
                "model": m,
                "calls": n,
                "cost_usd": round(float(c or 0.0), 9),
                "cost_per_minute": round(float(c or 0.0) / minutes, 9),
                "tokens": int(t or 0),
                "unpriced_calls": int(u or 0),
            }
            for m, n, c, t, u in models
        ],
        "latest_errors": latest_errors(conn, errors),
        "latest_diagnoses": latest_diagnoses(conn, diagnoses),
    }


def _excerpt(row: dict[str, Any]) -> dict[str, Any]:
    """The row without its ``length``, its long text ending in the truncation marker."""
    length = int(row.pop("length") or 0)
    for key in ("error_message", "root_cause_analysis"):
        if key in row and length > EXCERPT_CHARS:
            row[key] = truncate(row[key], EXCERPT_CHARS, total=length)
    return row


def latest_errors(conn: Connection, limit: int = 10) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            error_logs.c.created_at,
            error_logs.c.run_id,
            error_logs.c.trace_id,
            error_logs.c.step_name,
            error_logs.c.source,
            error_logs.c.error_category,
            error_logs.c.error_type,
            func.substr(error_logs.c.error_message, 1, EXCERPT_CHARS).label("error_message"),
            func.length(error_logs.c.error_message).label("length"),
        )
        .order_by(error_logs.c.created_at.desc(), error_logs.c.id)
        .limit(limit)
    ).mappings()
    return [_excerpt(to_json(r)) for r in rows]


def latest_diagnoses(conn: Connection, limit: int = 5) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            diagnostic_reports.c.created_at,
            diagnostic_reports.c.run_id,
            diagnostic_reports.c.llm_provider,
            diagnostic_reports.c.llm_model,
            diagnostic_reports.c.confidence_score,
            diagnostic_reports.c.error_category,
            diagnostic_reports.c.resume_step,
            func.substr(diagnostic_reports.c.root_cause_analysis, 1, EXCERPT_CHARS).label(
                "root_cause_analysis"
            ),
            func.length(diagnostic_reports.c.root_cause_analysis).label("length"),
        )
        .order_by(diagnostic_reports.c.created_at.desc(), diagnostic_reports.c.id)
        .limit(limit)
    ).mappings()
    return [_excerpt(to_json(r)) for r in rows]
