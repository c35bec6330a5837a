"""Error groups: failures across runs grouped by fingerprint (the same error shape).

A fingerprint hashes the source, category, exception type, step and the message with its
varying parts masked (:func:`otel_diag.classify.fingerprint`), so one bug hit
by a thousand runs is one group. The REST API (``GET /api/error-groups``), the CLI
(``otel-diag errors --groups``) and the alert kinds ``new_error_group`` and
``error_group_regression`` all read groups through this module.

Counts are of failure occurrences (``error_logs`` rows), never of the copies an exception
leaves on the spans it propagated through. Every query is bounded: the page's groups are
found with one aggregate over the window, then the page's details with indexed lookups.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, select

from otel_diag.rows import ErrorGroup, GroupDiagnosis, to_json
from otel_diag.store.port import GroupOrder
from otel_diag.store.rules import MAX_GROUP_NAMES
from otel_diag.store.sql.models import diagnostic_reports, error_logs, runs
from otel_diag.timewindow import as_utc

MAX_NAMES = MAX_GROUP_NAMES


def _window(since: datetime | None, until: datetime | None) -> list[Any]:
    clauses: list[Any] = []
    if since is not None:
        clauses.append(error_logs.c.created_at >= as_utc(since))
    if until is not None:
        clauses.append(error_logs.c.created_at < as_utc(until))
    return clauses


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
    """Groups with occurrences in ``[since, until)``, busiest (or as ``order`` says) first."""
    where = _window(since, until)
    if fingerprints is not None:
        if not fingerprints:
            return []
        where.append(error_logs.c.fingerprint.in_(list(fingerprints)))
    source = error_logs
    if service is not None or agent is not None:
        source = error_logs.join(runs, runs.c.id == error_logs.c.run_id)  # type: ignore[assignment]
        if service is not None:
            where.append(runs.c.service_name == service)
        if agent is not None:
            where.append(runs.c.agent_name == agent)
    n = func.count().label("n")
    n_runs = func.count(func.distinct(error_logs.c.run_id)).label("n_runs")
    first = func.min(error_logs.c.created_at).label("first")
    last = func.max(error_logs.c.created_at).label("last")
    sort = {
        "occurrences": (n.desc(),),
        "runs": (n_runs.desc(), n.desc()),
        "last_seen": (last.desc(),),
        "first_seen": (first.desc(),),
    }[order]
    # Counting distinct runs sorts every row of the window: only a page ranked by runs pays
    # for it in the ranking query; the page's own runs are counted after, with its names.
    page = conn.execute(
        select(error_logs.c.fingerprint, n, n_runs if order == "runs" else n)
        .select_from(source)
        .where(and_(*where))
        .group_by(error_logs.c.fingerprint)
        .order_by(*sort, error_logs.c.fingerprint)
        .limit(limit)
        .offset(offset)
    ).all()
    if not page:
        return []
    keys = [fp for fp, _, _ in page]
    run_counts, names = _runs_and_names(conn, keys, where)
    seen = _seen(conn, keys)
    # Each page group has an occurrence in the window, so when the window runs to now its
    # latest occurrence ever is in the window: look there only (fewer rows to rank).
    latest = _latest(conn, keys, _window(since, None) if until is None else [])
    diagnoses = _diagnoses(conn, keys)
    groups = []
    for fp, count, _ in page:
        row = latest[fp]
        services, agents = names.get(fp, ((), ()))
        groups.append(
            ErrorGroup(
                fingerprint=fp,
                error_type=row.error_type,
                error_category=row.error_category,
                source=row.source,
                step_name=row.step_name,
                message=row.error_message,
                occurrences=int(count),
                runs_affected=int(run_counts.get(fp, 0)),
                first_seen=as_utc(seen[fp][0]),
                last_seen=as_utc(seen[fp][1]),
                latest_run_id=row.run_id,
                latest_trace_id=row.trace_id,
                services=services,
                agents=agents,
                latest_diagnosis=diagnoses.get(fp),
            )
        )
    return groups


def _seen(conn: Connection, keys: list[str]) -> dict[str, tuple[datetime, datetime]]:
    # One row of per-group scalar subqueries: each is an endpoint lookup in
    # ix_error_logs_fingerprint_created, however many occurrences the group has.
    def bound(agg: Any, fp: str) -> Any:
        return select(agg(error_logs.c.created_at)).where(error_logs.c.fingerprint == fp)

    cells = [bound(agg, fp).scalar_subquery() for fp in keys for agg in (func.min, func.max)]
    row = conn.execute(select(*cells)).one()
    return {fp: (row[2 * i], row[2 * i + 1]) for i, fp in enumerate(keys) if row[2 * i] is not None}


def _latest(conn: Connection, keys: list[str], within: list[Any]) -> dict[str, Any]:
    # Each group's latest occurrence id by a backward walk of the (fingerprint, created_at)
    # index, then the page's few winners read whole.
    newest = [
        select(error_logs.c.id)
        .where(error_logs.c.fingerprint == fp, *within)
        .order_by(error_logs.c.created_at.desc(), error_logs.c.id)
        .limit(1)
        .scalar_subquery()
        for fp in keys
    ]
    winners = [i for i in conn.execute(select(*newest)).one() if i is not None]
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


def _runs_and_names(
    conn: Connection, keys: list[str], where: list[Any]
) -> tuple[dict[str, int], dict[str, tuple[tuple[str, ...], tuple[str, ...]]]]:
    """Runs affected and service/agent names of the page's groups, in one pass.

    Runs are counted per (group, service, agent); a run has one service and one agent, so
    the counts of a group add up to its distinct runs exactly.
    """
    rows = conn.execute(
        select(
            error_logs.c.fingerprint,
            runs.c.service_name,
            runs.c.agent_name,
            func.count(func.distinct(error_logs.c.run_id)),
        )
        .select_from(error_logs.join(runs, runs.c.id == error_logs.c.run_id))
        .where(error_logs.c.fingerprint.in_(keys), *where)
        .group_by(error_logs.c.fingerprint, runs.c.service_name, runs.c.agent_name)
    )
    counts: dict[str, int] = {}
    services: dict[str, set[str]] = {}
    agents: dict[str, set[str]] = {}
    for fp, service, agent, n_runs in rows:
        counts[fp] = counts.get(fp, 0) + int(n_runs)
        if service:
            services.setdefault(fp, set()).add(service)
        if agent:
            agents.setdefault(fp, set()).add(agent)
    names = {
        fp: (
            tuple(sorted(services.get(fp, ()))[:MAX_NAMES]),
            tuple(sorted(agents.get(fp, ()))[:MAX_NAMES]),
        )
        for fp in keys
    }
    return counts, names


def _diagnoses(conn: Connection, keys: list[str]) -> dict[str, GroupDiagnosis]:
    r = diagnostic_reports
    # Per group, the newest report whose run has an occurrence of it: a backward walk of
    # ix_diagnostic_reports_created that stops at the first report passing an indexed
    # probe of its run's errors, so a group's occurrences are never enumerated.
    newest = [
        select(r.c.id)
        .where(
            select(error_logs.c.id)
            .where(error_logs.c.run_id == r.c.run_id, error_logs.c.fingerprint == fp)
            .exists()
        )
        .order_by(r.c.created_at.desc(), r.c.id)
        .limit(1)
        .scalar_subquery()
        for fp in keys
    ]
    winners: dict[Any, list[str]] = {}  # one report can be the latest of several groups
    for fp, report_id in zip(keys, conn.execute(select(*newest)).one(), strict=True):
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
