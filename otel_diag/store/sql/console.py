"""The web console's queries: the filtered, sorted run list, run activity per time bucket,
and the latest diagnoses of any run.

Each is one bounded query (the console answers every page in well under 300 ms with 100k
runs in PostgreSQL): buckets are computed in the database from the run's start, the run
list sorts and pages there.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Integer, case, cast, func, or_, select
from sqlalchemy.sql import ColumnElement

from otel_diag.rows import FINISHED, Report, Run, RunStatus
from otel_diag.store.port import ActivityBucket, RunQuery
from otel_diag.store.sql.expressions import between, duration_ms
from otel_diag.store.sql.models import diagnostic_reports, runs
from otel_diag.store.sql.queries import typed

_HEX = re.compile(r"[0-9a-fA-F]+")


def _sort_key(conn: Connection, sort: str) -> ColumnElement[Any]:
    if sort == "duration":
        return duration_ms(conn, runs.c.started_at, runs.c.ended_at)
    if sort == "cost":
        return runs.c.cost_usd
    if sort == "errors":
        return runs.c.error_count
    if sort == "name":
        return runs.c.name
    return runs.c.started_at


def find_runs(conn: Connection, q: RunQuery) -> list[Run]:
    """See :meth:`otel_diag.store.port.TenantStore.find_runs`."""
    query = select(runs).where(between(runs.c.started_at, q.since, q.until))
    if q.status:
        query = query.where(runs.c.status == q.status)
    if q.agent:
        query = query.where(runs.c.agent_name == q.agent)
    if q.service:
        query = query.where(runs.c.service_name == q.service)
    text = (q.text or "").strip()
    if text:
        matches = [
            col.icontains(text, autoescape=True)
            for col in (runs.c.name, runs.c.agent_name, runs.c.service_name)
        ]
        if _HEX.fullmatch(text):  # trace ids are lowercase hex: other text cannot match
            matches.append(runs.c.trace_id.contains(text.lower(), autoescape=True))
        query = query.where(or_(*matches))
    key = _sort_key(conn, q.sort)
    ordered = key.desc() if q.descending else key.asc()
    order: list[ColumnElement[Any]] = [ordered.nulls_last()]
    if q.sort != "started_at":
        order.append(runs.c.started_at.desc())
    order.append(runs.c.id)
    rows = conn.execute(query.order_by(*order).limit(q.limit).offset(q.offset)).mappings()
    return [typed(Run, r) for r in rows]


def _epoch_bucket(conn: Connection, column: Any, seconds: int) -> ColumnElement[Any]:
    if conn.dialect.name == "postgresql":
        # date_part is double precision; EXTRACT is numeric since PostgreSQL 14 (slower)
        return cast(func.floor(func.date_part("epoch", column) / seconds), Integer) * seconds
    return cast(func.strftime("%s", column), Integer) // seconds * seconds


def activity(
    conn: Connection, since: datetime, until: datetime, bucket: timedelta
) -> list[ActivityBucket]:
    """See :meth:`otel_diag.store.port.TenantStore.activity`."""
    seconds = max(1, int(bucket.total_seconds()))
    start = _epoch_bucket(conn, runs.c.started_at, seconds).label("b")
    finished = [s.value for s in FINISHED]
    rows = conn.execute(
        select(
            start,
            func.count(),
            func.sum(case((runs.c.status.in_(finished), 1), else_=0)),
            func.sum(case((runs.c.status == RunStatus.FAILED.value, 1), else_=0)),
            func.sum(func.coalesce(runs.c.cost_usd, 0.0)),
        )
        .where(between(runs.c.started_at, since, until))
        .group_by(start)
        .order_by(start)
    ).all()
    return [
        ActivityBucket(
            start=datetime.fromtimestamp(int(b), UTC),
            runs=int(n),
            finished=int(fin or 0),
            failed=int(fail or 0),
            cost_usd=float(cost or 0.0),
        )
        for b, n, fin, fail, cost in rows
    ]


def latest_reports(conn: Connection, limit: int = 10) -> list[Report]:
    """See :meth:`otel_diag.store.port.TenantStore.latest_reports`."""
    rows = conn.execute(
        select(diagnostic_reports)
        .order_by(diagnostic_reports.c.created_at.desc(), diagnostic_reports.c.id)
        .limit(limit)
    ).mappings()
    return [typed(Report, r) for r in rows]
