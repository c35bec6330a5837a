"""The CLI's reports on MongoDB: ``otel-diag stats`` and ``otel-diag cost``.

Same results as :mod:`otel_diag.store.sql.reports`: both feed :mod:`otel_diag.store.rollups`.
The per-group sums and percentiles are computed here, in one streamed pass over the window's documents (only the fields a report needs are
read), because FerretDB v1.24 implements almost no aggregation operators (no ``$min`` /
``$max`` / ``$push`` accumulators, no ``$cond``, ``$ifNull`` or ``$add``, no window
stages) and returned wrong sums when a ``$group`` had more than one accumulator. Memory
stays per group (agent, model, day), except the per-agent durations the percentiles need.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database

from otel_diag.report_rows import CategoryCount, CostBreakdown, MismatchExample, RunStats
from otel_diag.rows import FINISHED, RunStatus
from otel_diag.store.mongo.codec import from_us, to_us
from otel_diag.store.rollups import CostRollup, StatsRollup
from otel_diag.store.rules import NO_AGENT, cost_mismatch

Doc = dict[str, Any]
FAILED = RunStatus.FAILED.value
_FINISHED = {s.value for s in FINISHED}


def window(field: str, since: datetime | None, until: datetime | None) -> Doc:
    """The filter of ``[since, until)`` on a time field (µs)."""
    bound: Doc = {}
    if since is not None:
        bound["$gte"] = to_us(since)
    if until is not None:
        bound["$lt"] = to_us(until)
    return {field: bound} if bound else {}


def _nearest_rank(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    values.sort()
    return values[(len(values) * pct + 99) // 100 - 1]


def run_stats(db: Database[Doc], since: datetime | None, until: datetime | None) -> RunStats:
    """Totals and the per-agent comparison of runs started in ``[since, until)``."""
    keys = ("errors", "llm_calls", "tool_calls", "input_tokens", "output_tokens")
    stored = ("error_count", "llm_calls", "tool_calls", "input_tokens", "output_tokens")
    groups: dict[str, dict[str, Any]] = {}
    durations: dict[str, list[float]] = {}
    fields = dict.fromkeys(
        (*stored, "agent_name", "status", "started_at", "ended_at", "cost_usd"), 1
    )
    fields["unpriced_tokens"] = 1
    for d in db.runs.find(window("started_at", since, until), fields):
        agent = d.get("agent_name") or NO_AGENT
        g = groups.get(agent)
        if g is None:
            g = groups[agent] = {
                "runs": 0, "failed": 0, "finished": 0, "cost_usd": None, "unpriced_tokens": 0,
                **dict.fromkeys(keys, 0),
            }  # fmt: skip
        g["runs"] += 1
        status = d.get("status")
        g["failed"] += status == FAILED
        if status in _FINISHED:
            g["finished"] += 1
            if d.get("ended_at") is not None:
                ms = (d["ended_at"] - d["started_at"]) / 1000.0
                durations.setdefault(agent, []).append(ms)
        for key, column in zip(keys, stored, strict=True):
            g[key] += int(d.get(column) or 0)
        if d.get("cost_usd") is not None:
            g["cost_usd"] = (g["cost_usd"] or 0.0) + d["cost_usd"]
        g["unpriced_tokens"] += int(d.get("unpriced_tokens") or 0)
    rollup = StatsRollup()
    for name, g in groups.items():
        samples = durations.get(name, [])
        p50, p95 = _nearest_rank(samples, 50), _nearest_rank(samples, 95)
        rollup.agent(name, **g, p50_ms=p50, p95_ms=p95)
    return rollup.result(_categories(db, since, until))


def _categories(
    db: Database[Doc], since: datetime | None, until: datetime | None, limit: int = 10
) -> list[CategoryCount]:
    counts: dict[tuple[str, str], list[Any]] = {}
    fields = {"source": 1, "error_category": 1, "run_id": 1}
    for d in db.error_logs.find(window("created_at", since, until), fields):
        entry = counts.setdefault((d["source"], d["error_category"]), [0, set()])
        entry[0] += 1
        entry[1].add(d["run_id"])
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0][0], kv[0][1]))
    return [CategoryCount(s, c, n, len(r)) for (s, c), (n, r) in ordered[:limit]]


def cost_breakdown(
    db: Database[Doc],
    since: datetime | None,
    until: datetime | None,
    *,
    examples: int = 10,
) -> CostBreakdown:
    """Cost by model and by day over the LLM steps started in ``[since, until)``, and by
    agent over the runs started in it (see :func:`otel_diag.store.sql.reports.cost_breakdown`)."""
    rollup = CostRollup()
    query = {**window("started_at", since, until), "cost_source": {"$ne": None}}
    fields = dict.fromkeys(
        ("started_at", "model", "cost_source", "input_tokens", "output_tokens", "cost_usd"), 1
    )
    fields.update(cost_reported_usd=1, cost_computed_usd=1)
    for d in db.steps.find(query, fields):
        rollup.steps(
            day=from_us(d["started_at"]).date().isoformat(),
            model=d.get("model"),
            unpriced=d.get("cost_source") == "unpriced",
            calls=1,
            input_tokens=d.get("input_tokens"),
            output_tokens=d.get("output_tokens"),
            cost_usd=d.get("cost_usd"),
        )
        reported, computed = d.get("cost_reported_usd"), d.get("cost_computed_usd")
        if cost_mismatch(reported, computed):
            rollup.mismatch(d.get("model"), 1, reported, computed)
    _agent_costs(db, since, until, rollup)
    found = _mismatch_examples(db, since, until, examples) if rollup.mismatched else []
    return rollup.result(found)


def _agent_costs(
    db: Database[Doc], since: datetime | None, until: datetime | None, rollup: CostRollup
) -> None:
    agents: dict[str, dict[str, Any]] = {}
    fields = dict.fromkeys(
        ("agent_name", "llm_calls", "input_tokens", "output_tokens", "cost_usd"), 1
    )
    fields["unpriced_tokens"] = 1
    for d in db.runs.find(window("started_at", since, until), fields):
        name = d.get("agent_name") or NO_AGENT
        a = agents.get(name)
        if a is None:
            a = agents[name] = {
                "runs": 0, "calls": 0, "input_tokens": 0, "output_tokens": 0,
                "cost_usd": 0.0, "unpriced_tokens": 0,
            }  # fmt: skip
        a["runs"] += 1
        a["calls"] += int(d.get("llm_calls") or 0)
        a["input_tokens"] += int(d.get("input_tokens") or 0)
        a["output_tokens"] += int(d.get("output_tokens") or 0)
        a["cost_usd"] += float(d.get("cost_usd") or 0.0)
        a["unpriced_tokens"] += int(d.get("unpriced_tokens") or 0)
    for name, a in agents.items():
        rollup.agent(name, **a)


def _mismatch_examples(
    db: Database[Doc], since: datetime | None, until: datetime | None, limit: int
) -> list[MismatchExample]:
    query = {
        **window("started_at", since, until),
        "cost_reported_usd": {"$ne": None},
        "cost_computed_usd": {"$ne": None},
    }
    out = []
    for d in db.steps.find(query).sort("started_at", DESCENDING):
        if not cost_mismatch(d.get("cost_reported_usd"), d.get("cost_computed_usd")):
            continue
        out.append(
            MismatchExample(
                run_id=d["run_id"],
                step_name=d.get("step_name"),
                model=d.get("model"),
                started_at=from_us(d["started_at"]),
                input_tokens=d.get("input_tokens"),
                output_tokens=d.get("output_tokens"),
                reported_usd=d.get("cost_reported_usd"),
                computed_usd=d.get("cost_computed_usd"),
            )
        )
        if len(out) >= limit:
            break
    return out
