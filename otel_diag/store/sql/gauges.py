"""Point-in-time counts for ``serve``'s ``/metrics``: open runs, diagnosis states and spend.

Kept apart from :mod:`otel_diag.store.sql.queries` because these are scraped every few seconds:
each is one grouped query over an indexed column, with no per-row work in Python.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from otel_diag.report_rows import Gauges
from otel_diag.store.sql.models import diagnostic_reports, runs


def server_gauges(conn: Connection) -> Gauges:
    """Open runs, runs by diagnosis state, reports by provider, and the diagnoses' spend."""
    open_runs = conn.execute(
        select(func.count()).select_from(runs).where(runs.c.status == "running")
    ).scalar_one()
    states = {
        state: n
        for state, n in conn.execute(
            select(runs.c.diagnosis_state, func.count())
            .where(runs.c.diagnosis_state.is_not(None))
            .group_by(runs.c.diagnosis_state)
        )
    }
    reports: dict[str, int] = {}
    cost = 0.0
    for provider, n, spent in conn.execute(
        select(
            diagnostic_reports.c.llm_provider,
            func.count(),
            func.coalesce(func.sum(diagnostic_reports.c.cost_usd), 0.0),
        ).group_by(diagnostic_reports.c.llm_provider)
    ):
        reports[provider or "unknown"] = n
        cost += float(spent or 0.0)
    return Gauges(int(open_runs), states, reports, cost)
