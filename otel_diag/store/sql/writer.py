"""Bulk writes of a :class:`Projection` in one transaction per tenant.

Order inside the transaction: named traces are recorded in ``trace_runs`` (and runs that
were keyed by their trace id merged into the named run), then steps are inserted, the
batch's errors are settled against what the traces already recorded (an exception repeated
by the spans it propagated through is one failure, :mod:`otel_diag.store.sql.propagation`),
and the failures are inserted, both with ``ON CONFLICT DO NOTHING`` on their
deterministic ids, so a re-sent span adds nothing; last, runs are upserted. When every step and error of the batch was new
(the common case) the upsert *adds* the batch's counts to the run; when some already
existed (a re-send) or runs were merged, the counts are recomputed from the stored rows,
so they stay exact either way. Around all of it, the error-group rollup adds the
difference between what the write can change, read before and after it
(:mod:`otel_diag.store.sql.group_hours`). On PostgreSQL every multi-row write proceeds in key order,
so concurrent writers lock rows in the same order and cannot deadlock each other, and the
upsert's row lock makes their increments add up. SQLite writers are serialized by
``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ColumnElement

from otel_diag.projection.ids import placeholder_runs
from otel_diag.projection.project import Projection
from otel_diag.rows import DiagnosisState, RunStatus, RunUpdate, run_status
from otel_diag.store.sql import group_hours
from otel_diag.store.sql.bulk import insert_ignore, stage_postgres, staging_table, upsert_many
from otel_diag.store.sql.expressions import one_of
from otel_diag.store.sql.models import error_logs, runs, steps, trace_runs
from otel_diag.store.sql.propagation import Stored, read_stored, settle_propagation

CHUNK = 1000
_RUN_UPDATE_FIELDS = tuple(f.name for f in dataclasses.fields(RunUpdate))


def _least(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    return func.least(a, b) if dialect == "postgresql" else func.min(a, b)


def _greatest(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    return func.greatest(a, b) if dialect == "postgresql" else func.max(a, b)


def _run_values(update: RunUpdate) -> dict[str, Any]:
    """A run update as the column values of the upsert (counts are added by the caller)."""
    return {name: getattr(update, name) for name in _RUN_UPDATE_FIELDS}


def lock_traces(conn: Connection, trace_ids: Iterable[str]) -> None:
    """PostgreSQL: serialize writers of the same traces until this transaction ends.

    Without it, a writer storing spans that do not name their run could miss, under READ
    COMMITTED, the ``trace_runs`` row another writer is about to commit, and split one
    trace across two runs. Locks are taken in sorted order (no deadlocks). SQLite writers
    are already serialized by ``BEGIN IMMEDIATE``.
    """
    if conn.dialect.name != "postgresql":
        return
    ids = sorted(set(trace_ids))
    if ids:
        conn.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(h) FROM "
            "(SELECT hashtextextended(t, 0) AS h FROM unnest(%(ids)s::text[]) AS t "
            "ORDER BY t) AS ordered",
            {"ids": ids},
        )


def lookup_trace_runs(conn: Connection, trace_ids: Iterable[str]) -> dict[str, uuid.UUID]:
    """Named runs already stored for these traces (spans without a run id join them)."""
    wanted = list(dict.fromkeys(trace_ids))
    found: dict[str, uuid.UUID] = {}
    statement = _trace_runs_query(conn.dialect.name)
    for i in range(0, len(wanted), CHUNK):
        rows = conn.execute(statement, {"ids": wanted[i : i + CHUNK]})
        found.update({trace_id: run_id for trace_id, run_id in rows})
    return found


@lru_cache(maxsize=2)
def _trace_runs_query(dialect: str) -> Any:
    """Built once: every batch runs it (a new ``IN`` statement per batch cost more to build
    than to run)."""
    t = trace_runs.c
    return select(t.id, t.run_id).where(one_of(dialect, t.id, "ids"))


def merge_placeholder_runs(conn: Connection, trace_runs: dict[str, uuid.UUID]) -> list[uuid.UUID]:
    """Fold runs that were keyed by trace id into the named run their trace turned out to have.

    Spans of a trace can arrive before the span that names the run (children end first);
    those were stored under the trace-id run. Step and error ids do not depend on the run,
    so moving them is exact. Returns the run ids that were merged away.
    """
    placeholders = placeholder_runs(trace_runs)
    if not placeholders:
        return []
    existing = [
        row[0] for row in conn.execute(select(runs.c.id).where(runs.c.id.in_(list(placeholders))))
    ]
    for old in existing:
        new = placeholders[old]
        conn.execute(update(steps).where(steps.c.run_id == old).values(run_id=new))
        conn.execute(update(error_logs).where(error_logs.c.run_id == old).values(run_id=new))
        row = conn.execute(select(runs).where(runs.c.id == old)).mappings().one()
        conn.execute(runs.delete().where(runs.c.id == old))
        moved = RunUpdate(
            id=new,
            trace_id=row["trace_id"],
            name=row["name"],
            service_name=row["service_name"],
            agent_name=row["agent_name"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            root_seen=row["root_seen"],
            root_failed=row["root_failed"],
        )
        _upsert_runs(conn, [_run_values(moved)], row["last_span_at"])
    return existing


_COUNTS = (
    "step_count",
    "llm_calls",
    "tool_calls",
    "input_tokens",
    "output_tokens",
    "unpriced_tokens",
    "error_count",
)


def status_sql(root_seen: Any, root_failed: Any, error_count: Any) -> ColumnElement[Any]:
    """:func:`otel_diag.rows.run_status` as SQL, for updates that run in the database."""
    return case(
        (root_failed, RunStatus.FAILED.value),
        (root_seen, RunStatus.OK.value),
        (error_count > 0, RunStatus.FAILED.value),
        else_=RunStatus.RUNNING.value,
    )


_RUN_COLUMNS = (
    *_RUN_UPDATE_FIELDS,
    "last_span_at",
    *_COUNTS,
    "cost_usd",
    "status",
    "diagnosis_state",
)
"""The columns of an upserted run row, in the order the statements take them."""


@lru_cache(maxsize=2)
def _runs_upsert(dialect: str) -> Any:
    """The run upsert of a dialect, built once (its SQL text never changes).

    PostgreSQL: ``INSERT ... SELECT`` from the staging table (rows COPYed there first);
    SQLite: a one-row ``INSERT ... ON CONFLICT`` run for every row by ``executemany``.
    Either way the conflict clause merges into a stored run and *adds* the counts.
    """
    ins = (postgresql if dialect == "postgresql" else sqlite).insert(runs)
    ex = ins.excluded
    # The latest root decides (a retry in a new trace that succeeded makes the run ok).
    root_failed = case(
        (
            and_(ex.root_seen, or_(~runs.c.root_seen, ex.ended_at >= runs.c.ended_at)),
            ex.root_failed,
        ),
        else_=runs.c.root_failed,
    )
    root_seen = or_(runs.c.root_seen, ex.root_seen)
    errors_after = runs.c.error_count + ex.error_count
    updates: dict[str, Any] = {
        "started_at": _least(dialect, runs.c.started_at, ex.started_at),
        "ended_at": _greatest(dialect, runs.c.ended_at, ex.ended_at),
        "name": case((ex.root_seen, ex.name), else_=func.coalesce(runs.c.name, ex.name)),
        "trace_id": case((ex.root_seen, ex.trace_id), else_=runs.c.trace_id),
        "service_name": case(
            (and_(ex.root_seen, ex.service_name.is_not(None)), ex.service_name),
            else_=func.coalesce(runs.c.service_name, ex.service_name),
        ),
        "agent_name": func.coalesce(runs.c.agent_name, ex.agent_name),
        "root_seen": root_seen,
        "root_failed": root_failed,
        "last_span_at": ex.last_span_at,
        **{column: runs.c[column] + ex[column] for column in _COUNTS},
        "cost_usd": case(
            (ex.cost_usd.is_(None), runs.c.cost_usd),
            else_=func.coalesce(runs.c.cost_usd, 0.0) + ex.cost_usd,
        ),
        # New errors re-open a diagnosed run (late spans are diagnosed again).
        "diagnosis_state": case(
            (ex.error_count > 0, DiagnosisState.PENDING.value), else_=runs.c.diagnosis_state
        ),
        "status": status_sql(root_seen, root_failed, errors_after),
    }
    if dialect == "postgresql":
        staged = staging_table(runs)
        source = select(*(staged.c[c] for c in _RUN_COLUMNS)).order_by(staged.c.id)
        return ins.from_select(list(_RUN_COLUMNS), source).on_conflict_do_update(
            index_elements=[runs.c.id], set_=updates
        )
    return ins.on_conflict_do_update(index_elements=[runs.c.id], set_=updates)


def _upsert_runs(conn: Connection, rows: list[dict[str, Any]], now: datetime) -> None:
    """Insert runs or merge into them; count columns in ``rows`` are *added* on conflict.

    The row lock an upsert takes makes concurrent writers' increments add up. On
    PostgreSQL rows go in key order (COPY, then one ``INSERT ... SELECT ... ORDER BY id``),
    so concurrent writers lock runs in the same order.
    """
    for row in rows:
        row["last_span_at"] = now
        for column in _COUNTS:
            row.setdefault(column, 0)
        row.setdefault("cost_usd", None)
        errors = row["error_count"]
        row["status"] = run_status(row["root_seen"], row["root_failed"], errors).value
        row["diagnosis_state"] = DiagnosisState.PENDING.value if errors else None
    statement = _runs_upsert(conn.dialect.name)
    if conn.dialect.name == "postgresql":
        stage_postgres(conn, runs, rows)
        conn.execute(statement)
        return
    upsert_many(conn, runs, statement, rows)


def refresh_run_aggregates(conn: Connection, run_ids: Sequence[uuid.UUID]) -> None:
    """Recompute counts, tokens, cost, error count and status of ``run_ids`` from rows."""
    if not run_ids:
        return
    llm = case((steps.c.kind == "llm", 1), else_=0)
    tool = case((steps.c.kind == "tool", 1), else_=0)
    unpriced = case(
        (
            steps.c.cost_source == "unpriced",
            func.coalesce(steps.c.input_tokens, 0) + func.coalesce(steps.c.output_tokens, 0),
        ),
        else_=0,
    )
    step_agg = (
        select(
            steps.c.run_id.label("run_id"),
            func.count().label("n"),
            func.sum(llm).label("llm"),
            func.sum(tool).label("tool"),
            func.coalesce(func.sum(steps.c.input_tokens), 0).label("inp"),
            func.coalesce(func.sum(steps.c.output_tokens), 0).label("out"),
            func.sum(steps.c.cost_usd).label("cost"),
            func.sum(unpriced).label("unpriced"),
        )
        .where(steps.c.run_id.in_(run_ids))
        .group_by(steps.c.run_id)
        .subquery()
    )
    conn.execute(
        update(runs)
        .where(runs.c.id == step_agg.c.run_id)
        .values(
            step_count=step_agg.c.n,
            llm_calls=step_agg.c.llm,
            tool_calls=step_agg.c.tool,
            input_tokens=step_agg.c.inp,
            output_tokens=step_agg.c.out,
            cost_usd=step_agg.c.cost,
            unpriced_tokens=step_agg.c.unpriced,
        )
    )
    err_agg = (
        select(error_logs.c.run_id.label("run_id"), func.count().label("n"))
        .where(error_logs.c.run_id.in_(run_ids))
        .group_by(error_logs.c.run_id)
        .subquery()
    )
    conn.execute(
        update(runs)
        .where(runs.c.id == err_agg.c.run_id)
        .values(
            # New errors re-open a diagnosed run (issue: late spans re-diagnose).
            diagnosis_state=case(
                (err_agg.c.n != runs.c.error_count, DiagnosisState.PENDING.value),
                else_=runs.c.diagnosis_state,
            ),
            error_count=err_agg.c.n,
        )
    )
    status = status_sql(runs.c.root_seen, runs.c.root_failed, runs.c.error_count)
    conn.execute(update(runs).where(runs.c.id.in_(run_ids)).values(status=status))


def _add_deltas(proj: Projection, rows: dict[uuid.UUID, dict[str, Any]]) -> None:
    """Add this batch's counts (rows known to be new) to its run rows."""
    for row in rows.values():
        for column in _COUNTS:
            row[column] = 0
        row["cost_usd"] = None
    for step in proj.steps:
        row = rows[step.run_id]
        row["step_count"] += 1
        kind = step.kind
        if kind == "llm":
            row["llm_calls"] += 1
        elif kind == "tool":
            row["tool_calls"] += 1
        inp, out = step.input_tokens or 0, step.output_tokens or 0
        row["input_tokens"] += inp
        row["output_tokens"] += out
        if step.cost_usd is not None:
            row["cost_usd"] = (row["cost_usd"] or 0.0) + step.cost_usd
        if step.cost_source == "unpriced":
            row["unpriced_tokens"] += inp + out
    for error in proj.errors:
        rows[error.run_id]["error_count"] += 1


def write_projection(
    conn: Connection,
    proj: Projection,
    now: datetime,
    named_trace_runs: dict[str, uuid.UUID] | None = None,
) -> None:
    """Write one projection inside the caller's transaction.

    ``named_trace_runs`` (trace id -> run named by a span of this batch) lets earlier
    spans of those traces, stored under their trace-id run, join the named run.
    """
    run_ids = sorted(proj.runs)
    if not run_ids:
        return
    # The error-group rollup: what this write can change, and its share before it.
    stored = read_stored(conn, (e.trace_id for e in proj.errors))
    scope, merges = _rollup_scope(proj, stored, named_trace_runs)
    group_hours.lock_runs(conn, scope.runs)
    group_hours.include_merges(conn, scope, merges)
    before = group_hours.snapshot(conn, scope)
    merged: list[uuid.UUID] = []
    if named_trace_runs:
        insert_ignore(
            conn, trace_runs, [{"id": t, "run_id": r} for t, r in named_trace_runs.items()]
        )
        merged = merge_placeholder_runs(conn, named_trace_runs)
    new_steps = insert_ignore(conn, steps, proj.steps)
    # Errors that repeat an exception recorded beneath them are not new failures.
    settled = settle_propagation(conn, proj, stored)
    new_errors = insert_ignore(conn, error_logs, proj.errors)
    exact = (
        not merged
        and not settled
        and new_steps == len(proj.steps)
        and new_errors == len(proj.errors)
    )
    run_rows = {r: _run_values(proj.runs[r]) for r in run_ids}
    if exact:
        _add_deltas(proj, run_rows)
    _upsert_runs(conn, [run_rows[r] for r in run_ids], now)
    if not exact:
        # A re-send or a merge: recompute exactly from the stored rows.
        refresh_run_aggregates(conn, run_ids)
    group_hours.apply(conn, scope, before, group_hours.snapshot(conn, scope))


def _rollup_scope(
    proj: Projection, stored: Stored, named_trace_runs: dict[str, uuid.UUID] | None
) -> tuple[group_hours.Scope, dict[uuid.UUID, uuid.UUID]]:
    """What this write can change in the rollup: the batch's errors, the stored errors of
    its failing traces (settlement may move them), every run it upserts (their names may
    change), and the trace-id runs it may merge away, with the runs that absorb them."""
    changes = [(e.run_id, e.fingerprint, e.created_at) for e in proj.errors]
    changes += [(r["run_id"], r["fingerprint"], r["created_at"]) for r in stored.failures]
    merges = placeholder_runs(named_trace_runs or {})
    return group_hours.scope(proj.runs, changes, merges), merges
