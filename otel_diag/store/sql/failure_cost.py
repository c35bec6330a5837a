"""The cost of failure: tokens and USD spent by failed runs and by retried attempts.

Definitions are :class:`otel_diag.rows.FailureCost`'s. Three grouped queries, all the work
in the database (window functions and a recursive walk down each retried attempt's steps,
both in SQLite >= 3.25 and PostgreSQL), rolled up here by category and by agent:

1. failed runs started in the window, by (agent, category of the latest report);
2. retried attempts started in the window, by (agent, the attempt's category: its own
   error's, else the last error raised inside it), with their spend: each attempt's
   subtree of steps, every step counted once, under its outermost retried attempt.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, exists, func, literal, select
from sqlalchemy.orm import aliased

from otel_diag.rows import FailureCost, FailureCostRow, RunStatus, Spend, StepStatus
from otel_diag.store.sql.expressions import NO_AGENT, between
from otel_diag.store.sql.models import diagnostic_reports, error_logs, runs, steps

UNDIAGNOSED = "undiagnosed"
"""Category of a failed run without a diagnosis yet."""
UNCATEGORIZED = "uncategorized"
"""Category of a retried attempt without a recorded error inside it."""

Key = tuple[str, str]  # (agent, category)


def _failed_runs(
    conn: Connection, since: datetime | None, until: datetime | None
) -> dict[Key, Spend]:
    r = diagnostic_reports
    ranked = select(
        r.c.run_id,
        r.c.error_category,
        func.row_number()
        .over(partition_by=r.c.run_id, order_by=(r.c.created_at.desc(), r.c.id))
        .label("rn"),
    ).subquery()
    agent = func.coalesce(runs.c.agent_name, NO_AGENT)
    category = func.coalesce(ranked.c.error_category, UNDIAGNOSED)
    rows = conn.execute(
        select(
            agent,
            category,
            func.count(),
            func.sum(runs.c.input_tokens),
            func.sum(runs.c.output_tokens),
            func.sum(runs.c.cost_usd),
        )
        .select_from(runs.outerjoin(ranked, and_(ranked.c.run_id == runs.c.id, ranked.c.rn == 1)))
        .where(runs.c.status == RunStatus.FAILED, between(runs.c.started_at, since, until))
        .group_by(agent, category)
    ).all()
    return {(a, c): _spend(n, i, o, u) for a, c, n, i, o, u in rows}


def _retried(since: datetime | None, until: datetime | None) -> Any:
    """Failed steps in the window followed by a step of the same name in the same run."""
    later = aliased(steps)
    return and_(
        steps.c.status == StepStatus.ERROR,
        between(steps.c.started_at, since, until),
        exists().where(
            later.c.run_id == steps.c.run_id,
            later.c.step_name == steps.c.step_name,
            later.c.started_at > steps.c.started_at,
        ),
    )


def _attempts(conn: Connection, since: datetime | None, until: datetime | None) -> dict[Key, Spend]:
    child = aliased(steps)
    walk = (
        select(
            steps.c.id.label("root"),
            steps.c.span_id.label("root_span"),
            steps.c.run_id,
            steps.c.trace_id,
            steps.c.span_id,
            literal(0).label("depth"),
            steps.c.input_tokens,
            steps.c.output_tokens,
            steps.c.cost_usd,
        )
        .where(_retried(since, until))
        .cte("attempt_steps", recursive=True)
    )
    up = walk.alias("up")
    walk = walk.union_all(
        select(
            up.c.root,
            up.c.root_span,
            up.c.run_id,
            child.c.trace_id,
            child.c.span_id,
            up.c.depth + 1,
            child.c.input_tokens,
            child.c.output_tokens,
            child.c.cost_usd,
        ).where(child.c.trace_id == up.c.trace_id, child.c.parent_span_id == up.c.span_id)
    )
    # The attempt's category: its own error, else the last one raised inside it (the one
    # that propagated up and ended it).
    category = (
        select(
            walk.c.root,
            error_logs.c.error_category,
            func.row_number()
            .over(
                partition_by=walk.c.root,
                order_by=(
                    case((walk.c.span_id == walk.c.root_span, 0), else_=1),
                    error_logs.c.created_at.desc(),
                    error_logs.c.id,
                ),
            )
            .label("rn"),
        )
        .select_from(
            walk.join(
                error_logs,
                and_(
                    error_logs.c.trace_id == walk.c.trace_id,
                    error_logs.c.span_id == walk.c.span_id,
                ),
            )
        )
        .subquery()
    )
    # A step under nested retried attempts is spent once, by the outermost (deepest below it).
    once = select(
        walk,
        func.row_number()
        .over(partition_by=(walk.c.trace_id, walk.c.span_id), order_by=walk.c.depth.desc())
        .label("rn"),
    ).subquery()
    spent = (
        select(
            once.c.root,
            func.sum(once.c.input_tokens).label("inp"),
            func.sum(once.c.output_tokens).label("out"),
            func.sum(once.c.cost_usd).label("usd"),
        )
        .where(once.c.rn == 1)
        .group_by(once.c.root)
        .subquery()
    )
    roots = select(walk.c.root, walk.c.run_id).where(walk.c.depth == 0).subquery()
    agent = func.coalesce(runs.c.agent_name, NO_AGENT)
    cat = func.coalesce(category.c.error_category, UNCATEGORIZED)
    rows = conn.execute(
        select(
            agent,
            cat,
            func.count(),
            func.sum(spent.c.inp),
            func.sum(spent.c.out),
            func.sum(spent.c.usd),
        )
        .select_from(
            roots.join(runs, runs.c.id == roots.c.run_id)
            .outerjoin(category, and_(category.c.root == roots.c.root, category.c.rn == 1))
            .outerjoin(spent, spent.c.root == roots.c.root)
        )
        .group_by(agent, cat)
    ).all()
    return {(a, c): _spend(n, i, o, u) for a, c, n, i, o, u in rows}


def _spend(n: Any, inp: Any, out: Any, usd: Any) -> Spend:
    return Spend(int(n or 0), int(inp or 0), int(out or 0), round(float(usd or 0.0), 9))


def _add(a: Spend, b: Spend) -> Spend:
    return Spend(
        a.count + b.count,
        a.input_tokens + b.input_tokens,
        a.output_tokens + b.output_tokens,
        round(a.cost_usd + b.cost_usd, 9),
    )


def _rows(runs_by: dict[str, Spend], attempts_by: dict[str, Spend]) -> tuple[FailureCostRow, ...]:
    names = set(runs_by) | set(attempts_by)
    rows = [FailureCostRow(n, runs_by.get(n, Spend()), attempts_by.get(n, Spend())) for n in names]
    rows.sort(key=lambda r: (-(r.failed_runs.cost_usd + r.retried_attempts.cost_usd), r.name))
    return tuple(rows)


def _roll_up(table: Iterable[tuple[Key, Spend]], index: int) -> dict[str, Spend]:
    out: dict[str, Spend] = defaultdict(Spend)
    for key, spend in table:
        out[key[index]] = _add(out[key[index]], spend)
    return dict(out)


def failure_cost(
    conn: Connection, since: datetime | None = None, until: datetime | None = None
) -> FailureCost:
    """The cost of failure over runs (and attempts) started in ``[since, until)``."""
    failed = _failed_runs(conn, since, until)
    attempts = _attempts(conn, since, until)
    total_runs = _roll_up(((("", ""), s) for s in failed.values()), 0).get("", Spend())
    total_attempts = _roll_up(((("", ""), s) for s in attempts.values()), 0).get("", Spend())
    return FailureCost(
        failed_runs=total_runs,
        retried_attempts=total_attempts,
        by_category=_rows(_roll_up(failed.items(), 1), _roll_up(attempts.items(), 1)),
        by_agent=_rows(_roll_up(failed.items(), 0), _roll_up(attempts.items(), 0)),
    )
