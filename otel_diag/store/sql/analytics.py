"""Aggregate reads for ``stats``, ``cost``, ``monitor`` and the alert rules.

Each function is one or two bounded queries whose work happens in the database (the
1M-step case must answer in well under a second), written once for SQLite and PostgreSQL:
percentiles use window functions (nearest rank) rather than ``percentile_cont``, and day and
minute buckets are rendered by the dialect. Results are JSON-ready dicts, like
:mod:`otel_diag.store.sql.queries`. Time bounds are compared as UTC, as the rows are stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal_column, or_, select, true
from sqlalchemy.sql import ColumnElement

from otel_diag.rows import RULES_PROVIDER, to_json
from otel_diag.store.sql.models import diagnostic_reports, error_logs, runs, steps
from otel_diag.timewindow import as_utc

NO_AGENT = "(no agent)"
NO_MODEL = "(no model)"
DIAGNOSIS_ERROR = "error"
"""``runs.diagnosis_state`` of a run whose diagnosis kept failing (see diagnosis_queue)."""
CHOSEN_FALLBACKS = frozenset({"mode_rules", "spend_cap"})
"""``fallback_reason`` values that are a configured choice, not a failed LLM diagnosis."""
MISMATCH_RELATIVE = 0.01
"""A reported cost disagrees with the computed one when they differ by more than 1 % ..."""
MISMATCH_ABSOLUTE = 1e-6
"""... and by more than a millionth of a dollar (rounding noise on tiny calls)."""


def _between(column: Any, since: datetime | None, until: datetime | None) -> ColumnElement[bool]:
    clauses = []
    if since is not None:
        clauses.append(column >= as_utc(since))
    if until is not None:
        clauses.append(column < as_utc(until))
    return and_(*clauses) if clauses else true()


def duration_ms(conn: Connection, start: Any, end: Any) -> ColumnElement[Any]:
    if conn.dialect.name == "postgresql":
        return func.extract("epoch", end - start) * 1000.0
    return (func.julianday(end) - func.julianday(start)) * 86400000.0


def day_bucket(conn: Connection, column: Any) -> ColumnElement[Any]:
    """The UTC day of a timestamp (a timestamp on PostgreSQL, ``YYYY-MM-DD`` on SQLite).

    ``date_trunc`` rather than ``to_char``: this runs once per row of a large window.
    """
    if conn.dialect.name == "postgresql":
        # Constants inline (not bound): the planner matches this expression with the
        # statistics object of migration 0003 and then estimates the groups right.
        return func.date_trunc(
            literal_column("'day'"), func.timezone(literal_column("'UTC'"), column)
        )
    return func.substr(column, 1, 10)


def minute_bucket(conn: Connection, column: Any) -> ColumnElement[str]:
    """``YYYY-MM-DD HH:MI`` of a UTC timestamp."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI")
    return func.substr(column, 1, 16)


def _rate(failed: int, finished: int) -> float | None:
    return round(failed / finished, 4) if finished else None


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
            _between(runs.c.started_at, since, until),
            runs.c.status.in_(("ok", "failed")),
            runs.c.ended_at.is_not(None),
        )
        .subquery()
    )

    def rank(pct: int) -> Any:
        return func.max(case((ranked.c.rn == (ranked.c.n * pct + 99) // 100, ranked.c.d)))

    rows = conn.execute(select(ranked.c.agent, rank(50), rank(95)).group_by(ranked.c.agent)).all()
    return {a: (_round(p50), _round(p95)) for a, p50, p95 in rows}


def _round(value: Any, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


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
        .where(_between(runs.c.started_at, since, until))
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
                "failure_rate": _rate(int(nfail or 0), int(nfin or 0)),
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
    totals["failure_rate"] = _rate(totals["failed"], totals["runs"] - totals["running"])
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
        .where(_between(error_logs.c.created_at, since, until))
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
        .where(_between(steps.c.started_at, since, until), steps.c.cost_source.is_not(None))
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
        .where(_between(runs.c.started_at, since, until))
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
        .where(_between(steps.c.started_at, since, until), _mismatch(conn))
        .order_by(steps.c.started_at.desc())
        .limit(limit)
    ).mappings()
    return [to_json(r) for r in rows]


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
    stats = run_stats(conn, since, None)["totals"]
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
            func.substr(error_logs.c.error_message, 1, 300).label("error_message"),
        )
        .order_by(error_logs.c.created_at.desc(), error_logs.c.id)
        .limit(limit)
    ).mappings()
    return [to_json(r) for r in rows]


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
            func.substr(diagnostic_reports.c.root_cause_analysis, 1, 300).label(
                "root_cause_analysis"
            ),
        )
        .order_by(diagnostic_reports.c.created_at.desc(), diagnostic_reports.c.id)
        .limit(limit)
    ).mappings()
    return [to_json(r) for r in rows]


# --- alert signals -----------------------------------------------------------------------


def finished_runs(conn: Connection, since: datetime) -> tuple[int, int]:
    """(finished, failed) runs that started since ``since``."""
    finished, failed = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((runs.c.status == "failed", 1), else_=0)), 0),
        ).where(runs.c.started_at >= as_utc(since), runs.c.status.in_(("ok", "failed")))
    ).one()
    return int(finished), int(failed)


def costly_runs(
    conn: Connection, since: datetime, threshold: float, limit: int = 10
) -> list[dict[str, Any]]:
    """Runs seen since ``since`` whose cost exceeds ``threshold`` USD, most expensive first."""
    rows = conn.execute(
        select(runs.c.id, runs.c.name, runs.c.agent_name, runs.c.trace_id, runs.c.cost_usd)
        .where(
            or_(runs.c.started_at >= as_utc(since), runs.c.last_span_at >= as_utc(since)),
            runs.c.cost_usd > threshold,
        )
        .order_by(runs.c.cost_usd.desc())
        .limit(limit)
    ).mappings()
    return [to_json(r) for r in rows]


def cost_since(conn: Connection, since: datetime) -> float:
    """USD spent by LLM steps started since ``since``."""
    value = conn.execute(
        select(func.sum(steps.c.cost_usd)).where(steps.c.started_at >= as_utc(since))
    ).scalar_one()
    return float(value or 0.0)


def unpriced_models(conn: Connection, since: datetime) -> list[dict[str, Any]]:
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
    return [{"model": m, "calls": n, "tokens": int(t or 0)} for m, n, t in rows]


def diagnosis_outcomes(conn: Connection, since: datetime) -> dict[str, Any]:
    """Diagnosis health since ``since``.

    ``llm_fallbacks``: reports the rules wrote because the LLM call failed, timed out or
    answered something invalid (``fallback_reason`` set, other than the rules mode or the
    spend cap, which are choices rather than failures); ``failed_runs``: runs whose
    diagnosis was given up (the queue parks them in state ``error``, stamping
    ``diagnosed_at``); ``fallback_reasons``: every rules report by reason.
    """
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
    return {
        "reports": int(reports),
        "llm_fallbacks": sum(n for r, n in reasons.items() if r not in CHOSEN_FALLBACKS),
        "failed_runs": int(failed),
        "fallback_reasons": reasons,
    }
