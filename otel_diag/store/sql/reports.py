"""The CLI's reports: ``otel-diag stats`` (runs, failures, durations per agent) and
``otel-diag cost`` (by model, agent and day, unpriced models apart).

Each is a few bounded queries whose work happens in the database (the 1M-step case must
answer in well under a second): percentiles use window functions (nearest rank) rather than
``percentile_cont``. The groups are rolled up by :mod:`otel_diag.store.rollups`, as on
MongoDB.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, select
from sqlalchemy.sql import ColumnElement

from otel_diag.report_rows import CategoryCount, CostBreakdown, MismatchExample, RunStats
from otel_diag.store.rollups import CostRollup, StatsRollup
from otel_diag.store.rules import MISMATCH_ABSOLUTE, MISMATCH_RELATIVE
from otel_diag.store.sql.expressions import NO_AGENT, between, day_bucket, duration_ms
from otel_diag.store.sql.models import error_logs, runs, steps
from otel_diag.timewindow import as_utc


def _percentiles(
    conn: Connection, since: datetime | None, until: datetime | None
) -> dict[str, tuple[Any, Any]]:
    """Per agent: (p50, p95) run duration in ms by nearest rank, computed in the database."""
    agent = func.coalesce(runs.c.agent_name, NO_AGENT)
    dur = duration_ms(conn, runs.c.started_at, runs.c.ended_at)
    ranked = (
        select(
            agent.label("agent"),
            dur.label("d"),
            func.row_number().over(partition_by=agent, order_by=dur).label("rn"),
            func.count().over(partition_by=agent).label("n"),
        )
        .where(
            between(runs.c.started_at, since, until),
            runs.c.status.in_(("ok", "failed")),
            runs.c.ended_at.is_not(None),
        )
        .subquery()
    )

    def rank(pct: int) -> Any:
        return func.max(case((ranked.c.rn == (ranked.c.n * pct + 99) // 100, ranked.c.d)))

    rows = conn.execute(select(ranked.c.agent, rank(50), rank(95)).group_by(ranked.c.agent)).all()
    return {a: (p50, p95) for a, p50, p95 in rows}


def run_stats(
    conn: Connection, since: datetime | None = None, until: datetime | None = None
) -> RunStats:
    """Totals and the per-agent comparison of runs started in ``[since, until)``."""
    agent = func.coalesce(runs.c.agent_name, NO_AGENT)
    failed = func.sum(case((runs.c.status == "failed", 1), else_=0))
    finished = func.sum(case((runs.c.status.in_(("ok", "failed")), 1), else_=0))
    rows = conn.execute(
        select(
            agent,
            func.count(),
            failed,
            finished,
            func.sum(runs.c.error_count),
            func.sum(runs.c.llm_calls),
            func.sum(runs.c.tool_calls),
            func.sum(runs.c.input_tokens),
            func.sum(runs.c.output_tokens),
            func.sum(runs.c.cost_usd),
            func.sum(runs.c.unpriced_tokens),
        )
        .where(between(runs.c.started_at, since, until))
        .group_by(agent)
    ).all()
    pct = _percentiles(conn, since, until)
    rollup = StatsRollup()
    for name, n, nfail, nfin, nerr, llm, tools, inp, out, cost, unpriced in rows:
        p50, p95 = pct.get(name, (None, None))
        rollup.agent(
            name,
            runs=n,
            failed=int(nfail or 0),
            finished=int(nfin or 0),
            errors=nerr,
            llm_calls=llm,
            tool_calls=tools,
            input_tokens=inp,
            output_tokens=out,
            cost_usd=cost,
            unpriced_tokens=unpriced,
            p50_ms=p50,
            p95_ms=p95,
        )
    return rollup.result(_categories(conn, since, until))


def _categories(
    conn: Connection, since: datetime | None, until: datetime | None, limit: int = 10
) -> list[CategoryCount]:
    rows = conn.execute(
        select(
            error_logs.c.source,
            error_logs.c.error_category,
            func.count(),
            func.count(func.distinct(error_logs.c.run_id)),
        )
        .where(between(error_logs.c.created_at, since, until))
        .group_by(error_logs.c.source, error_logs.c.error_category)
        .order_by(func.count().desc(), error_logs.c.source, error_logs.c.error_category)
        .limit(limit)
    ).all()
    return [CategoryCount(s, c, n, r) for s, c, n, r in rows]


def _mismatch(conn: Connection) -> ColumnElement[bool]:
    reported, computed = steps.c.cost_reported_usd, steps.c.cost_computed_usd
    return and_(
        reported.is_not(None),
        computed.is_not(None),
        func.abs(reported - computed) > MISMATCH_ABSOLUTE,
        func.abs(reported - computed) > MISMATCH_RELATIVE * func.abs(computed),
    )


def cost_breakdown(
    conn: Connection,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    examples: int = 10,
) -> CostBreakdown:
    """Cost by model and by day over the LLM steps started in ``[since, until)``, and by
    agent over the runs started in it.

    One grouped pass over the steps of the window (day x model x cost source, no join:
    the window may hold millions of steps) rolled up in :class:`CostRollup`, and one over
    the window's runs, whose stored aggregates already carry each run's tokens and cost, for
    the agents. Tokens of models without a price are listed apart; steps whose reported and
    computed cost disagree are counted with both totals, and a few recent ones returned.
    """
    mismatch = _mismatch(conn)
    day = day_bucket(conn, steps.c.started_at)
    rows = conn.execute(
        select(
            day,
            steps.c.model,
            steps.c.cost_source,
            func.count(),
            func.sum(steps.c.input_tokens),
            func.sum(steps.c.output_tokens),
            func.sum(steps.c.cost_usd),
            func.sum(case((mismatch, 1), else_=0)),
            func.sum(case((mismatch, steps.c.cost_reported_usd), else_=None)),
            func.sum(case((mismatch, steps.c.cost_computed_usd), else_=None)),
        )
        .where(between(steps.c.started_at, since, until), steps.c.cost_source.is_not(None))
        .group_by(day, steps.c.model, steps.c.cost_source)
    ).all()
    rollup = CostRollup()
    for d, model, source, n, inp, out, cost, nmis, rep, comp in rows:
        rollup.steps(
            day=_day(d),
            model=model,
            unpriced=source == "unpriced",
            calls=n,
            input_tokens=inp,
            output_tokens=out,
            cost_usd=cost,
        )
        if nmis:
            rollup.mismatch(model, int(nmis), rep, comp)
    agent = func.coalesce(runs.c.agent_name, NO_AGENT)
    for name, n, calls, inp, out, cost, unpriced in conn.execute(
        select(
            agent,
            func.count(),
            func.sum(runs.c.llm_calls),
            func.sum(runs.c.input_tokens),
            func.sum(runs.c.output_tokens),
            func.sum(runs.c.cost_usd),
            func.sum(runs.c.unpriced_tokens),
        )
        .where(between(runs.c.started_at, since, until))
        .group_by(agent)
    ):
        rollup.agent(
            name,
            runs=n,
            calls=calls,
            input_tokens=inp,
            output_tokens=out,
            cost_usd=cost,
            unpriced_tokens=unpriced,
        )
    found = _mismatch_examples(conn, since, until, examples) if rollup.mismatched else []
    return rollup.result(found)


def _day(value: Any) -> str:
    """A day bucket as ``YYYY-MM-DD`` (PostgreSQL returns a timestamp, SQLite a string)."""
    return value.date().isoformat() if isinstance(value, datetime) else str(value)


def _mismatch_examples(
    conn: Connection, since: datetime | None, until: datetime | None, limit: int
) -> list[MismatchExample]:
    rows = conn.execute(
        select(
            steps.c.run_id,
            steps.c.step_name,
            steps.c.model,
            steps.c.started_at,
            steps.c.input_tokens,
            steps.c.output_tokens,
            steps.c.cost_reported_usd.label("reported_usd"),
            steps.c.cost_computed_usd.label("computed_usd"),
        )
        .where(between(steps.c.started_at, since, until), _mismatch(conn))
        .order_by(steps.c.started_at.desc())
        .limit(limit)
    )
    return [
        MismatchExample(run, step, model, as_utc(at), *rest) for run, step, model, at, *rest in rows
    ]
