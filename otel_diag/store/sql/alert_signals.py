"""What the alert rules measure: one small query per signal (see :mod:`otel_diag.alerts`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, or_, select

from otel_diag.report_rows import CostlyRun, DiagnosisOutcomes, UnpricedModel
from otel_diag.rows import RULES_PROVIDER, FailedRun, GroupDiagnosis
from otel_diag.store.rollups import outcomes
from otel_diag.store.sql.expressions import NO_MODEL
from otel_diag.store.sql.models import diagnostic_reports, runs, steps
from otel_diag.timewindow import as_utc

DIAGNOSIS_ERROR = "error"
"""``runs.diagnosis_state`` of a run whose diagnosis kept failing (see diagnosis_queue)."""


def finished_runs(conn: Connection, since: datetime) -> tuple[int, int]:
    """(finished, failed) runs that started since ``since``."""
    finished, failed = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((runs.c.status == "failed", 1), else_=0)), 0),
        ).where(runs.c.started_at >= as_utc(since), runs.c.status.in_(("ok", "failed")))
    ).one()
    return int(finished), int(failed)


def recent_failed_runs(conn: Connection, since: datetime, limit: int = 5) -> list[FailedRun]:
    """Failed runs started since ``since``, newest first, with their latest diagnosis."""
    rows = conn.execute(
        select(
            runs.c.id,
            runs.c.trace_id,
            runs.c.name,
            runs.c.agent_name,
            runs.c.started_at,
            runs.c.ended_at,
            runs.c.error_count,
            runs.c.cost_usd,
        )
        .where(runs.c.started_at >= as_utc(since), runs.c.status == "failed")
        .order_by(runs.c.started_at.desc(), runs.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return []
    r = diagnostic_reports
    latest: dict[Any, GroupDiagnosis] = {}
    # At most ``limit`` runs: their reports newest first, the first seen per run wins.
    for rep in conn.execute(
        select(
            r.c.id,
            r.c.run_id,
            r.c.root_cause_analysis,
            r.c.error_category,
            r.c.resume_step,
            r.c.confidence_score,
            r.c.llm_provider,
            r.c.llm_model,
            r.c.created_at,
        )
        .where(r.c.run_id.in_([row.id for row in rows]))
        .order_by(r.c.created_at.desc(), r.c.id)
    ):
        if rep.run_id not in latest:
            latest[rep.run_id] = GroupDiagnosis(
                report_id=rep.id,
                run_id=rep.run_id,
                root_cause_analysis=rep.root_cause_analysis,
                error_category=rep.error_category,
                resume_step=rep.resume_step,
                confidence_score=rep.confidence_score,
                llm_provider=rep.llm_provider,
                llm_model=rep.llm_model,
                created_at=as_utc(rep.created_at),
            )
    return [
        FailedRun(
            id=row.id,
            trace_id=row.trace_id,
            name=row.name,
            agent_name=row.agent_name,
            started_at=as_utc(row.started_at),
            ended_at=as_utc(row.ended_at) if row.ended_at else None,
            error_count=int(row.error_count or 0),
            cost_usd=row.cost_usd,
            latest_diagnosis=latest.get(row.id),
        )
        for row in rows
    ]


def costly_runs(
    conn: Connection, since: datetime, threshold: float, limit: int = 10
) -> list[CostlyRun]:
    """Runs seen since ``since`` whose cost exceeds ``threshold`` USD, most expensive first."""
    rows = conn.execute(
        select(runs.c.id, runs.c.name, runs.c.agent_name, runs.c.trace_id, runs.c.cost_usd)
        .where(
            or_(runs.c.started_at >= as_utc(since), runs.c.last_span_at >= as_utc(since)),
            runs.c.cost_usd > threshold,
        )
        .order_by(runs.c.cost_usd.desc())
        .limit(limit)
    )
    return [CostlyRun(*r) for r in rows]


def cost_since(conn: Connection, since: datetime) -> float:
    """USD spent by LLM steps started since ``since``."""
    value = conn.execute(
        select(func.sum(steps.c.cost_usd)).where(steps.c.started_at >= as_utc(since))
    ).scalar_one()
    return float(value or 0.0)


def unpriced_models(conn: Connection, since: datetime) -> list[UnpricedModel]:
    """Models whose calls since ``since`` carried tokens but no known price."""
    model = func.coalesce(steps.c.model, NO_MODEL)
    tokens = func.sum(
        func.coalesce(steps.c.input_tokens, 0) + func.coalesce(steps.c.output_tokens, 0)
    )
    rows = conn.execute(
        select(model, func.count(), tokens)
        .where(steps.c.started_at >= as_utc(since), steps.c.cost_source == "unpriced")
        .group_by(model)
        .order_by(tokens.desc())
    ).all()
    return [UnpricedModel(m, n, int(t or 0)) for m, n, t in rows]


def diagnosis_outcomes(conn: Connection, since: datetime) -> DiagnosisOutcomes:
    """Diagnosis health since ``since`` (:class:`~otel_diag.report_rows.DiagnosisOutcomes`;
    a given-up run is parked by the queue in state ``error``, stamped ``diagnosed_at``)."""
    reason = diagnostic_reports.c.fallback_reason
    rows = conn.execute(
        select(reason, func.count())
        .where(
            diagnostic_reports.c.created_at >= as_utc(since),
            diagnostic_reports.c.llm_provider == RULES_PROVIDER,
            reason.is_not(None),
        )
        .group_by(reason)
    ).all()
    reasons = {str(r): int(n) for r, n in rows}
    reports = conn.execute(
        select(func.count()).where(diagnostic_reports.c.created_at >= as_utc(since))
    ).scalar_one()
    failed = conn.execute(
        select(func.count()).where(
            runs.c.diagnosis_state == DIAGNOSIS_ERROR, runs.c.diagnosed_at >= as_utc(since)
        )
    ).scalar_one()
    return outcomes(int(reports), int(failed), reasons)
