"""The CLI's reports: ``otel-diag stats`` (runs, failures, durations per agent) and
``otel-diag cost`` (by model, agent and day, unpriced models apart).

Each is a few bounded queries whose work happens in the database (the 1M-step case must
answer in well under a second): percentiles use window functions (nearest rank) rather than
``percentile_cont``. Results are JSON-ready dicts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, select
from sqlalchemy.sql import ColumnElement

from otel_diag.rows import to_json
from otel_diag.store.rules import MISMATCH_ABSOLUTE, MISMATCH_RELATIVE
from otel_diag.store.sql.expressions import (
    NO_AGENT,
    NO_MODEL,
    between,
    day_bucket,
    duration_ms,
    rate,
    rounded,
)
from otel_diag.store.sql.models import error_logs, runs, steps


def _percentiles(
    conn: Connection, since: datetime | None, until: datetime | None
) -> dict[str, tuple[float | None, float | None]]:
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
    return {a: (rounded(p50), rounded(p95)) for a, p50, p95 in rows}


def run_stats(
    conn: Connection, since: datetime | None = None, until: datetime | None = None
) -> dict[str, Any]:
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
        .order_by(func.count().desc(), agent)
    ).all()
    pct = _percentiles(conn, since, until)
    keys = ("errors", "llm_calls", "tool_calls", "input_tokens", "output_tokens")
    agents = []
    totals: dict[str, Any] = {"runs": 0, "failed": 0, "finished": 0, "cost_usd": 0.0}
    totals.update({k: 0 for k in (*keys, "unpriced_tokens")})
    for name, n, nfail, nfin, *sums in rows:
        values = dict(zip((*keys, "cost_usd", "unpriced_tokens"), sums, strict=True))
        p50, p95 = pct.get(name, (None, None))
        agents.append(
            {
                "agent": name,
                "runs": n,
                "failed": int(nfail or 0),
                "running": n - int(nfin or 0),
                "failure_rate": rate(int(nfail or 0), int(nfin or 0)),
                "p50_ms": p50,
                "p95_ms": p95,
                **{k: int(values[k] or 0) for k in keys},
                "cost_usd": values["cost_usd"],
                "unpriced_tokens": int(values["unpriced_tokens"] or 0),
            }
        )
        totals["runs"] += n
        totals["failed"] += int(nfail or 0)
        totals["finished"] += int(nfin or 0)
        totals["cost_usd"] += float(values["cost_usd"] or 0.0)
        for k in (*keys, "unpriced_tokens"):
            totals[k] += int(values[k] or 0)
    totals["running"] = totals["runs"] - totals.pop("finished")
    totals["failure_rate"] = rate(totals["failed"], totals["runs"] - totals["running"])
    return {
        "totals": totals,
        "agents": agents,
        "errors_by_category": _categories(conn, since, until),
    }


def _categories(
    conn: Connection, since: datetime | None, until: datetime | None, limit: int = 10
) -> list[dict[str, Any]]:
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
    return [{"source": s, "category": c, "errors": n, "runs": r} for s, c, n, r in rows]


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
) -> dict[str, Any]:
    """Cost by model and by day over the LLM steps started in ``[since, until)``, and by
    agent over the runs started in it.

    One grouped pass over the steps of the window (day x model x cost source, no join:
    the window may hold millions of steps) rolled up here, and one over the window's runs,
    whose stored aggregates already carry each run's tokens and cost, for the agents.
    Tokens of models without a price are listed apart; steps whose reported and computed
    cost disagree are counted with both totals, and a few recent ones returned as examples.
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
    by: dict[str, dict[str, dict[str, Any]]] = {"model": {}, "day": {}}
    unpriced: dict[str, dict[str, Any]] = {}
    mismatched: dict[str, dict[str, Any]] = {}
    total = _bucket("total")
    for d, model, source, n, inp, out, cost, nmis, rep, comp in rows:
        m = model or NO_MODEL
        inp, out = int(inp or 0), int(out or 0)
        for bucket in (total, _get(by["model"], m), _get(by["day"], _day(d))):
            bucket["calls"] += n
            bucket["input_tokens"] += inp
            bucket["output_tokens"] += out
            bucket["cost_usd"] += float(cost or 0.0)
            if source == "unpriced":
                bucket["unpriced_tokens"] += inp + out
        if source == "unpriced":
            u = unpriced.setdefault(
                m, {"model": m, "calls": 0, "input_tokens": 0, "output_tokens": 0}
            )
            u["calls"] += n
            u["input_tokens"] += inp
            u["output_tokens"] += out
        if nmis:
            mm = mismatched.setdefault(
                m, {"model": m, "steps": 0, "reported_usd": 0.0, "computed_usd": 0.0}
            )
            mm["steps"] += int(nmis)
            mm["reported_usd"] += float(rep or 0.0)
            mm["computed_usd"] += float(comp or 0.0)
    by_model = sorted(by["model"].values(), key=lambda b: (-b["cost_usd"], b["name"]))
    return {
        "total": _strip(total),
        "by_model": [_strip(b, "model") for b in by_model],
        "by_agent": _agent_costs(conn, since, until),
        "by_day": [_strip(b, "day") for b in sorted(by["day"].values(), key=lambda b: b["name"])],
        "unpriced": sorted(
            unpriced.values(), key=lambda u: -(u["input_tokens"] + u["output_tokens"])
        ),
        "mismatches": {
            "by_model": sorted(mismatched.values(), key=lambda m: -m["steps"]),
            "examples": _mismatch_examples(conn, since, until, examples) if mismatched else [],
        },
    }


def _day(value: Any) -> str:
    """A day bucket as ``YYYY-MM-DD`` (PostgreSQL returns a timestamp, SQLite a string)."""
    return value.date().isoformat() if isinstance(value, datetime) else str(value)


def _agent_costs(
    conn: Connection, since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    agent = func.coalesce(runs.c.agent_name, NO_AGENT)
    rows = conn.execute(
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
    ).all()
    out = [
        {
            "agent": a,
            "runs": n,
            "calls": int(calls or 0),
            "input_tokens": int(inp or 0),
            "output_tokens": int(outp or 0),
            "cost_usd": round(float(cost or 0.0), 9),
            "unpriced_tokens": int(unp or 0),
        }
        for a, n, calls, inp, outp, cost, unp in rows
    ]
    return sorted(out, key=lambda r: (-r["cost_usd"], r["agent"]))


def _bucket(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "unpriced_tokens": 0,
    }


def _get(table: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    bucket = table.get(key)
    if bucket is None:
        bucket = table[key] = _bucket(key)
    return bucket


def _strip(bucket: dict[str, Any], label: str | None = None) -> dict[str, Any]:
    out = dict(bucket)
    name = out.pop("name")
    out["cost_usd"] = round(out["cost_usd"], 9)
    return {label: name, **out} if label else out


def _mismatch_examples(
    conn: Connection, since: datetime | None, until: datetime | None, limit: int
) -> list[dict[str, Any]]:
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
    ).mappings()
    return [to_json(r) for r in rows]
