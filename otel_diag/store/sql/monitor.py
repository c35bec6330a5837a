"""One frame of ``otel-diag monitor``: rates, spend and the latest failures and diagnoses.

Its own small queries, run every refresh: a handful of counts over the window, not the
CLI's full ``stats`` report (per-agent percentiles are not on the dashboard).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, case, func, select

from otel_diag.redact import truncate
from otel_diag.report_rows import DiagnosisExcerpt, ErrorExcerpt, MinuteCount, MonitorFrame
from otel_diag.rows import FINISHED, RunStatus
from otel_diag.store.rollups import monitor_frame
from otel_diag.store.rules import EXCERPT_CHARS
from otel_diag.store.sql.expressions import NO_MODEL, minute_bucket
from otel_diag.store.sql.models import diagnostic_reports, error_logs, runs, steps
from otel_diag.timewindow import as_utc


def monitor_snapshot(
    conn: Connection,
    window: timedelta,
    now: datetime | None = None,
    *,
    errors: int = 10,
    diagnoses: int = 5,
) -> MonitorFrame:
    """What the live dashboard shows for the last ``window``: rates, cost, latest rows."""
    now = as_utc(now or datetime.now(UTC))
    since = now - window
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
    minute = minute_bucket(conn, runs.c.started_at)
    series = conn.execute(
        select(minute, func.count(), func.sum(case((runs.c.status == "failed", 1), else_=0)))
        .where(runs.c.started_at >= since)
        .group_by(minute)
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
    ).all()
    pending = conn.execute(
        select(func.count()).where(runs.c.diagnosis_state == "pending", runs.c.status == "failed")
    ).scalar_one()
    return monitor_frame(
        now=now,
        window=window,
        runs=int(runs_n),
        failed=int(failed_n),
        running=int(running_n),
        finished=int(finished_n),
        cost_usd=spent,
        pending_diagnoses=int(pending),
        per_minute=[MinuteCount(m, n, int(f or 0)) for m, n, f in series],
        models=[(m, n, c, t, u) for m, n, c, t, u in models],
        latest_errors=latest_errors(conn, errors),
        latest_diagnoses=latest_diagnoses(conn, diagnoses),
    )


def _cut(text: str, length: int | None) -> str:
    """A text the query cut to the excerpt, ending in the marker when it was longer."""
    if length is not None and length > EXCERPT_CHARS:
        return truncate(text, EXCERPT_CHARS, total=length)
    return text


def latest_errors(conn: Connection, limit: int = 10) -> list[ErrorExcerpt]:
    rows = conn.execute(
        select(
            error_logs.c.created_at,
            error_logs.c.run_id,
            error_logs.c.trace_id,
            error_logs.c.step_name,
            error_logs.c.source,
            error_logs.c.error_category,
            error_logs.c.error_type,
            func.substr(error_logs.c.error_message, 1, EXCERPT_CHARS),
            func.length(error_logs.c.error_message),
        )
        .order_by(error_logs.c.created_at.desc(), error_logs.c.id)
        .limit(limit)
    )
    return [
        ErrorExcerpt(as_utc(at), run, trace, step, source, category, kind, _cut(message, length))
        for at, run, trace, step, source, category, kind, message, length in rows
    ]


def latest_diagnoses(conn: Connection, limit: int = 5) -> list[DiagnosisExcerpt]:
    r = diagnostic_reports
    rows = conn.execute(
        select(
            r.c.created_at,
            r.c.run_id,
            r.c.llm_provider,
            r.c.llm_model,
            r.c.confidence_score,
            r.c.error_category,
            r.c.resume_step,
            func.substr(r.c.root_cause_analysis, 1, EXCERPT_CHARS),
            func.length(r.c.root_cause_analysis),
        )
        .order_by(r.c.created_at.desc(), r.c.id)
        .limit(limit)
    )
    return [
        DiagnosisExcerpt(as_utc(at), run, provider, model, conf, category, step, _cut(text, n))
        for at, run, provider, model, conf, category, step, text, n in rows
    ]
