"""Read queries of runs, steps, errors and reports, answered as typed rows.

Results are :mod:`otel_diag.rows` dataclasses (times in UTC), so callers never hold
SQLAlchemy objects; :func:`otel_diag.rows.to_json` turns them into JSON.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, String, cast, func, select

from otel_diag.projection.ids import parse_run_ref
from otel_diag.rows import ErrorRow, ErrorShape, ErrorSummary, Report, Run, Step
from otel_diag.store.port import AmbiguousRunError
from otel_diag.store.sql.models import diagnostic_reports, error_logs, runs, steps, trace_runs
from otel_diag.timewindow import as_utc

T = TypeVar("T")


def resolve_run(conn: Connection, ref: str | uuid.UUID) -> uuid.UUID | None:
    """A run from its full UUID, a trace id, a run-id string, or a unique id prefix."""
    if isinstance(ref, uuid.UUID):
        candidates = [ref]
    else:
        raw = ref.strip()  # run-id strings are case-sensitive (uuid5 of the exact text)
        text = raw.lower()
        candidates = []
        for form in dict.fromkeys((raw, text)):
            direct = parse_run_ref(form)
            if direct is not None:
                candidates.append(direct)
        if len(text) == 32 and all(c in "0123456789abcdef" for c in text):
            hit = conn.execute(select(runs.c.id).where(runs.c.trace_id == text).limit(1)).first()
            if hit is None:  # a later trace of a run that spans several
                hit = conn.execute(
                    select(trace_runs.c.run_id).where(trace_runs.c.id == text)
                ).first()
            if hit:
                candidates.insert(0, hit[0])
    for cand in candidates:
        if conn.execute(select(runs.c.id).where(runs.c.id == cand)).first():
            return cand
    if isinstance(ref, str):
        prefix = ref.strip().lower().replace("-", "")
        if 4 <= len(prefix) < 32 and all(c in "0123456789abcdef" for c in prefix):
            id_text = func.replace(cast(runs.c.id, String), "-", "")
            hits = conn.execute(select(runs.c.id).where(id_text.like(prefix + "%")).limit(2)).all()
            if len(hits) > 1:
                raise AmbiguousRunError(f"run id prefix {ref!r} matches several runs")
            if hits:
                return hits[0][0]
    return None


def _rows(cls: type[T], mappings: Iterable[Any]) -> list[T]:
    return [typed(cls, m) for m in mappings]


def typed(cls: type[T], mapping: Mapping[str, Any] | Any) -> T:
    """A typed row from a result mapping: times in UTC, JSON lists as tuples."""
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in mapping:
            continue
        value = mapping[f.name]
        if isinstance(value, datetime):
            value = as_utc(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return cls(**values)


def get_run(conn: Connection, run_id: uuid.UUID) -> Run | None:
    row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
    return typed(Run, row) if row else None


def get_steps(conn: Connection, run_id: uuid.UUID) -> list[Step]:
    rows = conn.execute(
        select(steps).where(steps.c.run_id == run_id).order_by(steps.c.started_at, steps.c.span_id)
    ).mappings()
    return _rows(Step, rows)


def get_errors(
    conn: Connection, run_id: uuid.UUID, *, limit: int | None = None, offset: int = 0
) -> list[ErrorRow]:
    """A run's failures, oldest first; pages are cut in the database."""
    query = (
        select(error_logs)
        .where(error_logs.c.run_id == run_id)
        .order_by(error_logs.c.created_at, error_logs.c.id)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return _rows(ErrorRow, conn.execute(query).mappings())


def error_summary(conn: Connection, run_id: uuid.UUID) -> ErrorSummary:
    """Counts by category and by source, and the distinct error shapes (fingerprints).

    ``attempts`` counts failure occurrences (each retry attempt is one); ``failures``
    counts distinct shapes, so three failed attempts of one call read "1 failure, 3
    attempts". Neither counts the copies an exception leaves on the spans it propagated
    through: those are not rows.
    """
    by = {}
    for column in ("error_category", "source"):
        col = error_logs.c[column]
        rows = conn.execute(
            select(col, func.count()).where(error_logs.c.run_id == run_id).group_by(col)
        )
        by[column] = {k: n for k, n in rows}
    shapes = conn.execute(
        select(
            error_logs.c.fingerprint,
            func.min(error_logs.c.error_type),
            func.min(error_logs.c.error_category),
            func.count(),
            func.min(error_logs.c.created_at),
        )
        .where(error_logs.c.run_id == run_id)
        .group_by(error_logs.c.fingerprint)
        .order_by(func.min(error_logs.c.created_at))
    ).all()
    total = sum(by["source"].values())
    return ErrorSummary(
        total=total,
        failures=len(shapes),
        attempts=total,
        by_category=by["error_category"],
        by_source=by["source"],
        fingerprints=tuple(
            ErrorShape(f, t, c, n, as_utc(s) if isinstance(s, datetime) else as_utc(_parse(s)))
            for f, t, c, n, s in shapes
        ),
    )


def _parse(value: Any) -> datetime:
    """A timestamp an aggregate handed back as text (SQLite's MIN over a DATETIME)."""
    return datetime.fromisoformat(str(value))


def get_reports(
    conn: Connection, run_id: uuid.UUID, *, limit: int | None = None, offset: int = 0
) -> list[Report]:
    """A run's diagnostic reports, newest first."""
    query = (
        select(diagnostic_reports)
        .where(diagnostic_reports.c.run_id == run_id)
        .order_by(diagnostic_reports.c.created_at.desc(), diagnostic_reports.c.id)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return _rows(Report, conn.execute(query).mappings())


def latest_diagnosis(conn: Connection, run_id: uuid.UUID) -> Report | None:
    found = get_reports(conn, run_id, limit=1)
    return found[0] if found else None


def get_report(conn: Connection, report_id: uuid.UUID) -> Report | None:
    row = (
        conn.execute(select(diagnostic_reports).where(diagnostic_reports.c.id == report_id))
        .mappings()
        .first()
    )
    return typed(Report, row) if row else None


def list_runs(
    conn: Connection,
    *,
    status: str | None = None,
    since: datetime | None = None,
    agent: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Run]:
    query = select(runs).order_by(runs.c.started_at.desc(), runs.c.id)
    if status:
        query = query.where(runs.c.status == status)
    if since is not None:
        query = query.where(runs.c.started_at >= since)
    if agent:
        query = query.where(runs.c.agent_name == agent)
    return _rows(Run, conn.execute(query.limit(limit).offset(offset)).mappings())
