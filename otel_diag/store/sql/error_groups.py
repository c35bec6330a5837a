"""Error groups: failures across runs grouped by fingerprint (the same error shape).

A fingerprint hashes the source, category, exception type, step and the message with its
varying parts masked (:func:`otel_diag.classify.fingerprint`), so one bug hit
by a thousand runs is one group. The REST API (``GET /api/error-groups``), the CLI
(``otel-diag errors --groups``) and the alert kinds ``new_error_group`` and
``error_group_regression`` all read groups through this module.

Counts are of failure occurrences (``error_logs`` rows), never of the copies an exception
leaves on the spans it propagated through. A window that runs to now is ranked from the
hourly rollup the writer keeps, plus the rows of the hour it starts in; a window with an
end is ranked with one aggregate over its rows (:mod:`.group_ranking`). Either way the
page's details are then indexed lookups per group.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ARRAY, Connection, String, func, literal, select

from otel_diag.rows import ErrorGroup, GroupDiagnosis, to_json
from otel_diag.store.port import GroupOrder
from otel_diag.store.rules import MAX_GROUP_NAMES
from otel_diag.store.sql.group_ranking import Filters, rank_hours, rank_rows, window
from otel_diag.store.sql.models import diagnostic_reports, error_logs
from otel_diag.timewindow import as_utc

MAX_NAMES = MAX_GROUP_NAMES


def list_error_groups(
    conn: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    service: str | None = None,
    agent: str | None = None,
    fingerprints: Sequence[str] | None = None,
    order: GroupOrder = "occurrences",
    limit: int = 50,
    offset: int = 0,
) -> list[ErrorGroup]:
    """Groups with occurrences in ``[since, until)``, busiest (or as ``order`` says) first.

    A window that runs to now (every API, CLI and alert query) is ranked from the hourly
    rollup; a window with an end counts the rows themselves.
    """
    if fingerprints is not None and not fingerprints:
        return []
    filters = Filters(service, agent, fingerprints)
    if until is None:
        page = rank_hours(conn, since, filters, order, limit, offset)
    else:
        page = rank_rows(conn, since, until, filters, order, limit, offset)
    if not page:
        return []
    keys = [ranked.fingerprint for ranked in page]
    seen = _seen(conn, keys)
    # Each page group has an occurrence in the window, so when the window runs to now its
    # latest occurrence ever is in the window: look there only (fewer rows to rank).
    latest = _latest(conn, keys, window(since, None) if until is None else [])
    diagnoses = _diagnoses(conn, keys)
    groups = []
    for ranked in page:
        fp = ranked.fingerprint
        row = latest[fp]
        groups.append(
            ErrorGroup(
                fingerprint=fp,
                error_type=row.error_type,
                error_category=row.error_category,
                source=row.source,
                step_name=row.step_name,
                message=row.error_message,
                occurrences=ranked.occurrences,
                runs_affected=ranked.runs,
                first_seen=as_utc(seen[fp][0]),
                last_seen=as_utc(seen[fp][1]),
                latest_run_id=row.run_id,
                latest_trace_id=row.trace_id,
                services=tuple(sorted(ranked.services - {""})[:MAX_NAMES]),
                agents=tuple(sorted(ranked.agents - {""})[:MAX_NAMES]),
                latest_diagnosis=diagnoses.get(fp),
            )
        )
    return groups


def _keys(conn: Connection, keys: list[str]) -> Any:
    """The page's fingerprints as a one-column table ``k(fp)``, passed as one value.

    Per-group lookups are correlated subqueries over it, so PostgreSQL plans each lookup
    once, not once per group, and the statement's text is the same for every page (built
    per group, planning and compiling 100 subqueries cost more than running them).
    """
    if conn.dialect.name == "postgresql":
        unnested = func.unnest(literal(keys, ARRAY(String))).table_valued("fp").render_derived("u")
        column = unnested.c.fp
    else:
        column = func.json_each(literal(json.dumps(keys))).table_valued("value").c.value
    return select(column.label("fp")).subquery("k")


def _seen(conn: Connection, keys: list[str]) -> dict[str, tuple[datetime, datetime]]:
    # Per group, two endpoint lookups in ix_error_logs_fingerprint_created, however many
    # occurrences the group has.
    k = _keys(conn, keys)

    def bound(agg: Any) -> Any:
        return (
            select(agg(error_logs.c.created_at))
            .where(error_logs.c.fingerprint == k.c.fp)
            .scalar_subquery()
        )

    rows = conn.execute(select(k.c.fp, bound(func.min), bound(func.max)))
    return {fp: (first, last) for fp, first, last in rows if first is not None}


def _latest(conn: Connection, keys: list[str], within: list[Any]) -> dict[str, Any]:
    # Each group's latest occurrence id by a backward walk of the (fingerprint, created_at)
    # index, then the page's few winners read whole.
    k = _keys(conn, keys)
    newest = (
        select(error_logs.c.id)
        .where(error_logs.c.fingerprint == k.c.fp, *within)
        .order_by(error_logs.c.created_at.desc(), error_logs.c.id)
        .limit(1)
        .scalar_subquery()
    )
    winners = [i for (i,) in conn.execute(select(newest).select_from(k)) if i is not None]
    rows = conn.execute(
        select(
            error_logs.c.fingerprint,
            error_logs.c.error_type,
            error_logs.c.error_category,
            error_logs.c.source,
            error_logs.c.step_name,
            error_logs.c.error_message,
            error_logs.c.run_id,
            error_logs.c.trace_id,
        ).where(error_logs.c.id.in_(winners))
    )
    return {row.fingerprint: row for row in rows}


def _diagnoses(conn: Connection, keys: list[str]) -> dict[str, GroupDiagnosis]:
    r = diagnostic_reports
    # Per group, the newest report whose run has an occurrence of it: a backward walk of
    # ix_diagnostic_reports_created that stops at the first report passing an indexed
    # probe of its run's errors, so a group's occurrences are never enumerated.
    k = _keys(conn, keys)
    newest = (
        select(r.c.id)
        .where(
            select(error_logs.c.id)
            .where(error_logs.c.run_id == r.c.run_id, error_logs.c.fingerprint == k.c.fp)
            .exists()
        )
        .order_by(r.c.created_at.desc(), r.c.id)
        .limit(1)
        .scalar_subquery()
    )
    winners: dict[Any, list[str]] = {}  # one report can be the latest of several groups
    for fp, report_id in conn.execute(select(k.c.fp, newest)):
        if report_id is not None:
            winners.setdefault(report_id, []).append(fp)
    if not winners:
        return {}
    reports = conn.execute(
        select(
            r.c.id,
            r.c.run_id,
            r.c.root_cause_analysis,
            r.c.error_category,
            r.c.resume_step,
            r.c.confidence_score,
            r.c.llm_provider,
            r.c.llm_model,
            r.c.created_at,
        ).where(r.c.id.in_(list(winners)))
    )
    out = {}
    for row in reports:
        diagnosis = GroupDiagnosis(
            report_id=row.id,
            run_id=row.run_id,
            root_cause_analysis=row.root_cause_analysis,
            error_category=row.error_category,
            resume_step=row.resume_step,
            confidence_score=row.confidence_score,
            llm_provider=row.llm_provider,
            llm_model=row.llm_model,
            created_at=as_utc(row.created_at),
        )
        for fp in winners[row.id]:
            out[fp] = diagnosis
    return out


def group_json(group: ErrorGroup, trace_url: str | None = None) -> dict[str, Any]:
    """A group as JSON-ready values (ids and times as strings), with its trace link."""
    return {**to_json(group), "latest_trace_url": trace_url}


def new_groups(conn: Connection, since: datetime, limit: int = 20) -> list[ErrorGroup]:
    """Groups whose first occurrence ever is at or after ``since``."""
    first = func.min(error_logs.c.created_at)
    keys = [
        fp
        for (fp,) in conn.execute(
            select(error_logs.c.fingerprint)
            .group_by(error_logs.c.fingerprint)
            .having(first >= as_utc(since))
            .order_by(first.desc())
            .limit(limit)
        )
    ]
    return list_error_groups(conn, since=since, fingerprints=keys, limit=limit)


def regressed_groups(
    conn: Connection, since: datetime, quiet: timedelta, limit: int = 20
) -> list[ErrorGroup]:
    """Groups seen again since ``since`` after at least ``quiet`` without an occurrence."""
    since = as_utc(since)
    recent = (
        select(
            error_logs.c.fingerprint.label("fp"),
            func.min(error_logs.c.created_at).label("back"),
        )
        .where(error_logs.c.created_at >= since)
        .group_by(error_logs.c.fingerprint)
        .subquery()
    )
    before = (
        select(
            error_logs.c.fingerprint.label("fp"),
            func.max(error_logs.c.created_at).label("last"),
        )
        .where(
            error_logs.c.created_at < since,
            error_logs.c.fingerprint.in_(select(recent.c.fp)),
        )
        .group_by(error_logs.c.fingerprint)
        .subquery()
    )
    candidates = conn.execute(
        select(recent.c.fp, recent.c.back, before.c.last).join(before, before.c.fp == recent.c.fp)
    ).all()
    keys = [fp for fp, back, last in candidates if as_utc(back) - as_utc(last) >= quiet][:limit]
    return list_error_groups(conn, since=since, fingerprints=keys, limit=limit)
