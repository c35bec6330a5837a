"""The CLI's reports on MongoDB: ``otel-diag stats`` and ``otel-diag cost``.

Same results as :mod:`otel_diag.store.sql.reports`. The sums and percentiles are computed
here, in one streamed pass over the window's documents (only the fields a report needs are
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

from otel_diag.rows import FINISHED, RunStatus, to_json
from otel_diag.store.mongo.codec import from_us, to_us
from otel_diag.store.rules import NO_AGENT, NO_MODEL, cost_mismatch, rate, rounded

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


def run_stats(db: Database[Doc], since: datetime | None, until: datetime | None) -> dict[str, Any]:
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
                "n": 0, "failed": 0, "finished": 0, "cost": None, "unpriced": 0,
                **dict.fromkeys(keys, 0),
            }  # fmt: skip
        g["n"] += 1
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
            g["cost"] = (g["cost"] or 0.0) + d["cost_usd"]
        g["unpriced"] += int(d.get("unpriced_tokens") or 0)
    agents = []
    totals: dict[str, Any] = {"runs": 0, "failed": 0, "finished": 0, "cost_usd": 0.0}
    totals.update({k: 0 for k in (*keys, "unpriced_tokens")})
    for name, g in sorted(groups.items(), key=lambda kv: (-kv[1]["n"], kv[0])):
        samples = durations.get(name, [])
        agents.append(
            {
                "agent": name,
                "runs": g["n"],
                "failed": g["failed"],
                "running": g["n"] - g["finished"],
                "failure_rate": rate(g["failed"], g["finished"]),
                "p50_ms": rounded(_nearest_rank(samples, 50)),
                "p95_ms": rounded(_nearest_rank(samples, 95)),
                **{k: g[k] for k in keys},
                "cost_usd": g["cost"],
                "unpriced_tokens": g["unpriced"],
            }
        )
        totals["runs"] += g["n"]
        totals["failed"] += g["failed"]
        totals["finished"] += g["finished"]
        totals["cost_usd"] += float(g["cost"] or 0.0)
        for k in keys:
            totals[k] += g[k]
        totals["unpriced_tokens"] += g["unpriced"]
    totals["running"] = totals["runs"] - totals.pop("finished")
    totals["failure_rate"] = rate(totals["failed"], totals["runs"] - totals["running"])
    return {
        "totals": totals,
        "agents": agents,
        "errors_by_category": _categories(db, since, until),
    }


def _categories(
    db: Database[Doc], since: datetime | None, until: datetime | None, limit: int = 10
) -> list[dict[str, Any]]:
    counts: dict[tuple[str, str], list[Any]] = {}
    fields = {"source": 1, "error_category": 1, "run_id": 1}
    for d in db.error_logs.find(window("created_at", since, until), fields):
        entry = counts.setdefault((d["source"], d["error_category"]), [0, set()])
        entry[0] += 1
        entry[1].add(d["run_id"])
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0][0], kv[0][1]))
    return [
        {"source": s, "category": c, "errors": n, "runs": len(r)}
        for (s, c), (n, r) in ordered[:limit]
    ]


def _bucket(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "unpriced_tokens": 0,
    }


def _strip(bucket: dict[str, Any], label: str | None = None) -> dict[str, Any]:
    out = dict(bucket)
    name = out.pop("name")
    out["cost_usd"] = round(out["cost_usd"], 9)
    return {label: name, **out} if label else out


def cost_breakdown(
    db: Database[Doc],
    since: datetime | None,
    until: datetime | None,
    *,
    examples: int = 10,
) -> dict[str, Any]:
    """Cost by model and by day over the LLM steps started in ``[since, until)``, and by
    agent over the runs started in it (see :func:`otel_diag.store.sql.reports.cost_breakdown`)."""
    by_model: dict[str, dict[str, Any]] = {}
    by_day: dict[str, dict[str, Any]] = {}
    unpriced: dict[str, dict[str, Any]] = {}
    mismatched: dict[str, dict[str, Any]] = {}
    total = _bucket("total")
    query = {**window("started_at", since, until), "cost_source": {"$ne": None}}
    fields = dict.fromkeys(
        ("started_at", "model", "cost_source", "input_tokens", "output_tokens", "cost_usd"), 1
    )
    fields.update(cost_reported_usd=1, cost_computed_usd=1)
    for d in db.steps.find(query, fields):
        model = d.get("model") or NO_MODEL
        day = from_us(d["started_at"]).date().isoformat()
        inp, out = int(d.get("input_tokens") or 0), int(d.get("output_tokens") or 0)
        unpriced_step = d.get("cost_source") == "unpriced"
        for bucket in (
            total,
            by_model.get(model) or by_model.setdefault(model, _bucket(model)),
            by_day.get(day) or by_day.setdefault(day, _bucket(day)),
        ):
            bucket["calls"] += 1
            bucket["input_tokens"] += inp
            bucket["output_tokens"] += out
            bucket["cost_usd"] += float(d.get("cost_usd") or 0.0)
            if unpriced_step:
                bucket["unpriced_tokens"] += inp + out
        if unpriced_step:
            u = unpriced.setdefault(
                model, {"model": model, "calls": 0, "input_tokens": 0, "output_tokens": 0}
            )
            u["calls"] += 1
            u["input_tokens"] += inp
            u["output_tokens"] += out
        reported, computed = d.get("cost_reported_usd"), d.get("cost_computed_usd")
        if cost_mismatch(reported, computed):
            mm = mismatched.setdefault(
                model, {"model": model, "steps": 0, "reported_usd": 0.0, "computed_usd": 0.0}
            )
            mm["steps"] += 1
            mm["reported_usd"] += float(reported or 0.0)
            mm["computed_usd"] += float(computed or 0.0)
    models = sorted(by_model.values(), key=lambda b: (-b["cost_usd"], b["name"]))
    return {
        "total": _strip(total),
        "by_model": [_strip(b, "model") for b in models],
        "by_agent": _agent_costs(db, since, until),
        "by_day": [_strip(b, "day") for b in sorted(by_day.values(), key=lambda b: b["name"])],
        "unpriced": sorted(
            unpriced.values(), key=lambda u: -(u["input_tokens"] + u["output_tokens"])
        ),
        "mismatches": {
            "by_model": sorted(mismatched.values(), key=lambda m: -m["steps"]),
            "examples": _mismatch_examples(db, since, until, examples) if mismatched else [],
        },
    }


def _agent_costs(
    db: Database[Doc], since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    agents: dict[str, dict[str, Any]] = {}
    fields = dict.fromkeys(
        ("agent_name", "llm_calls", "input_tokens", "output_tokens", "cost_usd"), 1
    )
    fields["unpriced_tokens"] = 1
    for d in db.runs.find(window("started_at", since, until), fields):
        name = d.get("agent_name") or NO_AGENT
        a = agents.setdefault(
            name,
            {
                "agent": name,
                "runs": 0,
                "calls": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cost_usd": 0.0,
                "unpriced_tokens": 0,
            },
        )
        a["runs"] += 1
        a["calls"] += int(d.get("llm_calls") or 0)
        a["input_tokens"] += int(d.get("input_tokens") or 0)
        a["output_tokens"] += int(d.get("output_tokens") or 0)
        a["cost_usd"] += float(d.get("cost_usd") or 0.0)
        a["unpriced_tokens"] += int(d.get("unpriced_tokens") or 0)
    for a in agents.values():
        a["cost_usd"] = round(a["cost_usd"], 9)
    return sorted(agents.values(), key=lambda r: (-r["cost_usd"], r["agent"]))


def _mismatch_examples(
    db: Database[Doc], since: datetime | None, until: datetime | None, limit: int
) -> list[dict[str, Any]]:
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
            to_json(
                {
                    "run_id": d["run_id"],
                    "step_name": d.get("step_name"),
                    "model": d.get("model"),
                    "started_at": from_us(d["started_at"]),
                    "input_tokens": d.get("input_tokens"),
                    "output_tokens": d.get("output_tokens"),
                    "reported_usd": d.get("cost_reported_usd"),
                    "computed_usd": d.get("cost_computed_usd"),
                }
            )
        )
        if len(out) >= limit:
            break
    return out
