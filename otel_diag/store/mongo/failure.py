"""The cost of failure on MongoDB: spend of failed runs and of retried attempts.

Definitions are :class:`otel_diag.rows.FailureCost`'s and the answers those of
:mod:`otel_diag.store.sql.failure_cost`; where SQL walks each retried attempt's subtree
with a recursive query, this walks it in Python over the steps of the runs concerned
(read once), with the same tie-breaks: a step under nested retried attempts is spent once,
by the outermost; an attempt's category is its own error's, else the last error raised
inside it (newest first, then the smallest id), else ``uncategorized``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo.database import Database

from otel_diag.rows import FailureCost, FailureCostRow, RunStatus, Spend, StepStatus
from otel_diag.store.mongo.reports import window
from otel_diag.store.mongo.writer import by_id
from otel_diag.store.rules import NO_AGENT

Doc = dict[str, Any]
UNDIAGNOSED = "undiagnosed"
UNCATEGORIZED = "uncategorized"
Key = tuple[str, str]  # (agent, category)


def _spend(n: int, inp: int, out: int, usd: float) -> Spend:
    return Spend(n, inp, out, round(usd, 9))


def _add(a: Spend, b: Spend) -> Spend:
    return Spend(
        a.count + b.count,
        a.input_tokens + b.input_tokens,
        a.output_tokens + b.output_tokens,
        round(a.cost_usd + b.cost_usd, 9),
    )


def _latest_categories(db: Database[Doc], run_ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Each run's latest report's category (newest by created_at, then smallest id)."""
    best: dict[uuid.UUID, tuple[int, bytes, Any]] = {}
    fields = {"run_id": 1, "created_at": 1, "error_category": 1}
    for r in db.diagnostic_reports.find({"run_id": {"$in": run_ids}}, fields):
        rank = (r["created_at"], bytes(255 - b for b in r["_id"].bytes))
        cur = best.get(r["run_id"])
        if cur is None or rank > cur[:2]:
            best[r["run_id"]] = (*rank, r.get("error_category"))
    return {run: v[2] for run, v in best.items()}


def _failed_runs(
    db: Database[Doc], since: datetime | None, until: datetime | None
) -> dict[Key, Spend]:
    query = {**window("started_at", since, until), "status": RunStatus.FAILED.value}
    fields = {"agent_name": 1, "input_tokens": 1, "output_tokens": 1, "cost_usd": 1}
    runs = list(db.runs.find(query, fields))
    categories = _latest_categories(db, [r["_id"] for r in runs])
    sums: dict[Key, list[Any]] = {}
    for r in runs:
        key = (r.get("agent_name") or NO_AGENT, categories.get(r["_id"]) or UNDIAGNOSED)
        s = sums.setdefault(key, [0, 0, 0, 0.0])
        s[0] += 1
        s[1] += int(r.get("input_tokens") or 0)
        s[2] += int(r.get("output_tokens") or 0)
        s[3] += float(r.get("cost_usd") or 0.0)
    return {k: _spend(*v) for k, v in sums.items()}


def _attempts(
    db: Database[Doc], since: datetime | None, until: datetime | None
) -> dict[Key, Spend]:
    query = {**window("started_at", since, until), "status": StepStatus.ERROR.value}
    run_ids = db.steps.distinct("run_id", query)
    if not run_ids:
        return {}
    steps = list(db.steps.find({"run_id": {"$in": run_ids}}))
    latest: dict[tuple[Any, str], int] = {}
    children: dict[tuple[str, str | None], list[Doc]] = defaultdict(list)
    for s in steps:
        name = (s["run_id"], s["step_name"])
        latest[name] = max(latest.get(name, s["started_at"]), s["started_at"])
        children[(s["trace_id"], s.get("parent_span_id"))].append(s)
    bound = window("started_at", since, until).get("started_at", {})
    roots = [
        s
        for s in steps
        if s["status"] == StepStatus.ERROR.value
        and s["started_at"] >= bound.get("$gte", s["started_at"])
        and s["started_at"] < bound.get("$lt", s["started_at"] + 1)
        and latest[(s["run_id"], s["step_name"])] > s["started_at"]
    ]
    # Walk each attempt's subtree; a step belongs to the root it is deepest below.
    owner: dict[tuple[str, str], tuple[int, uuid.UUID]] = {}
    walked: dict[uuid.UUID, list[tuple[Doc, int]]] = {}
    for root in roots:
        rows, stack, seen = [], [(root, 0)], set()
        while stack:
            step, depth = stack.pop()
            if step["span_id"] in seen:
                continue
            seen.add(step["span_id"])
            rows.append((step, depth))
            span = (step["trace_id"], step["span_id"])
            if span not in owner or depth > owner[span][0]:
                owner[span] = (depth, root["_id"])
            stack.extend((c, depth + 1) for c in children.get(span, ()))
        walked[root["_id"]] = rows
    errors: dict[tuple[str, str], list[Doc]] = defaultdict(list)
    fields = {"trace_id": 1, "span_id": 1, "error_category": 1, "created_at": 1}
    for e in db.error_logs.find({"run_id": {"$in": run_ids}}, fields):
        errors[(e["trace_id"], e["span_id"])].append(e)
    agents = {r: d.get("agent_name") for r, d in by_id(db.runs, run_ids).items()}
    sums: dict[Key, list[Any]] = {}
    for root in roots:
        candidates = [
            ((0 if step["span_id"] == root["span_id"] else 1, -e["created_at"], e["_id"].bytes), e)
            for step, _ in walked[root["_id"]]
            for e in errors.get((step["trace_id"], step["span_id"]), ())
        ]
        category = min(candidates, key=lambda c: c[0])[1]["error_category"] if candidates else None
        key = (agents.get(root["run_id"]) or NO_AGENT, category or UNCATEGORIZED)
        total = sums.setdefault(key, [0, 0, 0, 0.0])
        total[0] += 1
        for step, _ in walked[root["_id"]]:
            if owner[(step["trace_id"], step["span_id"])][1] == root["_id"]:
                total[1] += int(step.get("input_tokens") or 0)
                total[2] += int(step.get("output_tokens") or 0)
                total[3] += float(step.get("cost_usd") or 0.0)
    return {k: _spend(*v) for k, v in sums.items()}


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
    db: Database[Doc], since: datetime | None = None, until: datetime | None = None
) -> FailureCost:
    """The cost of failure over runs (and attempts) started in ``[since, until)``."""
    failed = _failed_runs(db, since, until)
    attempts = _attempts(db, since, until)
    total_runs = _roll_up(((("", ""), s) for s in failed.values()), 0).get("", Spend())
    total_attempts = _roll_up(((("", ""), s) for s in attempts.values()), 0).get("", Spend())
    return FailureCost(
        failed_runs=total_runs,
        retried_attempts=total_attempts,
        by_category=_rows(_roll_up(failed.items(), 1), _roll_up(attempts.items(), 1)),
        by_agent=_rows(_roll_up(failed.items(), 0), _roll_up(attempts.items(), 0)),
    )
