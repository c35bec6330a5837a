"""Error groups: failures across runs grouped by fingerprint (the same error shape).

A fingerprint hashes the source, category, exception type, step and the message with its
varying parts masked (:func:`otel_diag.classify.fingerprint`), so one bug hit
by a thousand runs is one group. The REST API (``GET /api/error-groups``), the CLI
(``otel-diag errors --groups``) and the alert kinds ``new_error_group`` and
``error_group_regression`` all read groups through this module.

Counts are of failure occurrences (``error_logs`` rows), never of the copies an exception
leaves on the spans it propagated through. A window that runs to now is ranked from the
hourly rollup the writer keeps (:mod:`otel_diag.store.sql.group_hours`) plus the rows of
the hour it starts in; a window with an end is ranked with one aggregate over its rows.
Either way the page's details are then indexed lookups per group.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import ARRAY, Connection, String, and_, bindparam, func, literal, select

from otel_diag.rows import ErrorGroup, GroupDiagnosis, to_json
from otel_diag.store.port import GroupOrder
from otel_diag.store.rules import MAX_GROUP_NAMES
from otel_diag.store.sql import group_hours
from otel_diag.store.sql.expressions import one_of
from otel_diag.store.sql.models import diagnostic_reports, error_group_hours, error_logs, runs
from otel_diag.timewindow import as_utc

MAX_NAMES = MAX_GROUP_NAMES


def _window(since: datetime | None, until: datetime | None) -> list[Any]:
    clauses: list[Any] = []
    if since is not None:
        clauses.append(error_logs.c.created_at >= as_utc(since))
    if until is not None:
        clauses.append(error_logs.c.created_at < as_utc(until))
    return clauses


@dataclass(slots=True)
class _Ranked:
    """A page group's counts in the window, before its details are looked up."""

    fingerprint: str
    occurrences: int = 0
    runs: int = 0
    services: set[str] = field(default_factory=set)
    agents: set[str] = field(default_factory=set)
    lo: int = 0
    """First hour with an occurrence in the window (rollup path)."""
    hi: int = 0
    """Last hour with an occurrence in the window (rollup path)."""


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
    if until is None:
        filters = _Filters(service, agent, fingerprints)
        page = _rank_hours(conn, since, filters, order, limit, offset)
    else:
        page = _rank_rows(conn, since, until, service, agent, fingerprints, order, limit, offset)
    if not page:
        return []
    keys = [ranked.fingerprint for ranked in page]
    seen = _seen(conn, keys)
    # Each page group has an occurrence in the window, so when the window runs to now its
    # latest occurrence ever is in the window: look there only (fewer rows to rank).
    latest = _latest(conn, keys, _window(since, None) if until is None else [])
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


@dataclass(frozen=True, slots=True)
class _Filters:
    service: str | None
    agent: str | None
    fingerprints: Sequence[str] | None

    def on_hours(self) -> list[Any]:
        t = error_group_hours.c
        clauses: list[Any] = []
        if self.service is not None:
            clauses.append(t.service_name == self.service)
        if self.agent is not None:
            clauses.append(t.agent_name == self.agent)
        if self.fingerprints is not None:
            clauses.append(t.fingerprint.in_(list(self.fingerprints)))
        return clauses

    def on_rows(self) -> list[Any]:
        """The names as conditions on ``error_logs`` joined to ``runs``."""
        clauses: list[Any] = []
        if self.service is not None:
            clauses.append(func.coalesce(runs.c.service_name, "") == self.service)
        if self.agent is not None:
            clauses.append(func.coalesce(runs.c.agent_name, "") == self.agent)
        return clauses

    def admits(self, service: str, agent: str) -> bool:
        """Whether a run of these names passes the filters."""
        return (self.service is None or service == self.service) and (
            self.agent is None or agent == self.agent
        )


def _rank_hours(
    conn: Connection,
    since: datetime | None,
    filters: _Filters,
    order: GroupOrder,
    limit: int,
    offset: int,
) -> list[_Ranked]:
    """One page of groups of ``[since, now)`` from ``error_group_hours``.

    Whole hours after the one ``since`` falls in are summed from the rollup; that first,
    partial hour is counted from its rows (a run counts there when it has no later
    occurrence of the group). Orders by time rank by hour first, then read exact times
    for the groups that can still reach the page, each within one hour of its rows.
    """
    t = error_group_hours.c
    edge = None if since is None else group_hours.hour_of(since)
    where = filters.on_hours()
    if edge is not None:
        where.append(t.hour > edge)
    tallies: dict[str, _Ranked] = {}
    query = (
        select(
            t.fingerprint,
            func.sum(t.occurrences),
            func.sum(t.runs_last),
            func.min(t.hour),
            func.max(t.hour),
        )
        .where(*where)
        .group_by(t.fingerprint)
    )
    for fp, n, n_runs, lo, hi in conn.execute(query):
        tallies[fp] = _Ranked(fp, int(n), int(n_runs), lo=int(lo), hi=int(hi))
    if since is not None and edge is not None:
        _count_edge(conn, since, edge, filters, tallies)
    ranked = list(tallies.values())
    if order == "occurrences":
        ranked.sort(key=lambda r: (-r.occurrences, r.fingerprint))
    elif order == "runs":
        ranked.sort(key=lambda r: (-r.runs, -r.occurrences, r.fingerprint))
    else:
        ranked = _by_exact_time(conn, since, filters, ranked, order, limit + offset)
    page = ranked[offset : offset + limit]
    _names(conn, edge, filters, page)
    return page


def _count_edge(
    conn: Connection, since: datetime, edge: int, filters: _Filters, tallies: dict[str, _Ranked]
) -> None:
    """Add the rows of ``[since, end of since's hour)`` to the tallies, with their names.

    Rows are counted per (group, run) first; the runs' names and later occurrences are then
    read by run key (joining ``runs`` to an hour of rows made PostgreSQL hash the whole
    runs table, and a per-row probe for a later occurrence cost more than the count).
    """
    e = error_logs.c
    end = group_hours.hour_start(edge + 1)
    where = [e.created_at >= as_utc(since), e.created_at < end]
    if filters.fingerprints is not None:
        where.append(e.fingerprint.in_(list(filters.fingerprints)))
    pairs = conn.execute(
        select(e.fingerprint, e.run_id, func.count())
        .where(*where)
        .group_by(e.fingerprint, e.run_id)
    ).all()
    run_ids = {run_id for _, run_id, _ in pairs}
    names = _run_names(conn, run_ids)
    later = _later_pairs(conn, run_ids, end)
    for fp, run_id, n in pairs:
        service, agent = names.get(run_id, ("", ""))
        if not filters.admits(service, agent):
            continue
        tally = tallies.get(fp)
        if tally is None:
            tally = tallies[fp] = _Ranked(fp, lo=edge, hi=edge)
        tally.occurrences += int(n)
        tally.runs += 0 if (fp, run_id) in later else 1
        tally.lo = edge
        tally.services.add(service)
        tally.agents.add(agent)


def _later_pairs(
    conn: Connection, run_ids: set[uuid.UUID], after: datetime
) -> set[tuple[str, uuid.UUID]]:
    """(group, run) pairs of these runs with an occurrence at or after ``after``."""
    statement = _later_pairs_sql(conn.dialect.name)
    wanted = list(run_ids)
    found: set[tuple[str, uuid.UUID]] = set()
    for i in range(0, len(wanted), 1000):
        params = {"ids": wanted[i : i + 1000], "after": after}
        found.update((fp, run_id) for fp, run_id in conn.execute(statement, params))
    return found


@lru_cache(maxsize=2)
def _later_pairs_sql(dialect: str) -> Any:
    e = error_logs.c
    return (
        select(e.fingerprint, e.run_id)
        .where(one_of(dialect, e.run_id, "ids"), e.created_at >= bindparam("after"))
        .distinct()
    )


def _run_names(conn: Connection, run_ids: set[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str]]:
    """Service and agent of each run ('' when unknown), by primary key."""
    statement = _run_names_sql(conn.dialect.name)
    wanted = list(run_ids)
    found: dict[uuid.UUID, tuple[str, str]] = {}
    for i in range(0, len(wanted), 1000):
        for run_id, service, agent in conn.execute(statement, {"ids": wanted[i : i + 1000]}):
            found[run_id] = (service or "", agent or "")
    return found


@lru_cache(maxsize=2)
def _run_names_sql(dialect: str) -> Any:
    ids = one_of(dialect, runs.c.id, "ids")
    return select(runs.c.id, runs.c.service_name, runs.c.agent_name).where(ids)


def _by_exact_time(
    conn: Connection,
    since: datetime | None,
    filters: _Filters,
    ranked: list[_Ranked],
    order: GroupOrder,
    needed: int,
) -> list[_Ranked]:
    """Rank by last (or first) occurrence in the window, newest first.

    The hour of each group's time is known from the rollup, so only the groups whose hour
    is at least the ``needed``-th newest can reach the page; their exact times are read.
    """
    newest_last = order == "last_seen"

    def hour(r: _Ranked) -> int:
        return r.hi if newest_last else r.lo

    ranked.sort(key=lambda r: -hour(r))
    if len(ranked) > needed:
        cutoff = hour(ranked[needed - 1])
        ranked = [r for r in ranked if hour(r) >= cutoff]
    e = error_logs.c
    agg = func.max if newest_last else func.min
    named = filters.service is not None or filters.agent is not None
    probes = []
    for r in ranked:
        start = group_hours.hour_start(hour(r))
        if since is not None:
            start = max(start, as_utc(since))
        source = error_logs.join(runs, runs.c.id == e.run_id) if named else error_logs
        probes.append(
            select(agg(e.created_at))
            .select_from(source)
            .where(
                e.fingerprint == r.fingerprint,
                e.created_at >= start,
                e.created_at < group_hours.hour_start(hour(r) + 1),
                *filters.on_rows(),
            )
            .scalar_subquery()
        )
    times: list[Any] = []
    for i in range(0, len(probes), 100):
        times.extend(conn.execute(select(*probes[i : i + 100])).one())
    exact = {r.fingerprint: as_utc(at) for r, at in zip(ranked, times, strict=True)}
    return sorted(ranked, key=lambda r: (-exact[r.fingerprint].timestamp(), r.fingerprint))


def _names(conn: Connection, edge: int | None, filters: _Filters, page: list[_Ranked]) -> None:
    """Services and agents of the page's groups in the window's whole hours."""
    if not page:
        return
    t = error_group_hours.c
    by_fp = {r.fingerprint: r for r in page}
    where = [*filters.on_hours(), t.fingerprint.in_(list(by_fp))]
    if edge is not None:
        where.append(t.hour > edge)
    query = select(t.fingerprint, t.service_name, t.agent_name).where(*where).distinct()
    for fp, service, agent in conn.execute(query):
        by_fp[fp].services.add(service)
        by_fp[fp].agents.add(agent)


def _rank_rows(
    conn: Connection,
    since: datetime | None,
    until: datetime,
    service: str | None,
    agent: str | None,
    fingerprints: Sequence[str] | None,
    order: GroupOrder,
    limit: int,
    offset: int,
) -> list[_Ranked]:
    """One page of groups of ``[since, until)``, counted from the rows of the window."""
    where = _window(since, until)
    if fingerprints is not None:
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
    ranked = [_Ranked(fp, int(count)) for fp, count, _ in page]
    _runs_and_names(conn, ranked, where)
    return ranked


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


def _runs_and_names(conn: Connection, page: list[_Ranked], where: list[Any]) -> None:
    """Runs affected and service/agent names of the page's groups, in one pass.

    Runs are counted per (group, service, agent); a run has one service and one agent, so
    the counts of a group add up to its distinct runs exactly.
    """
    by_fp = {r.fingerprint: r for r in page}
    rows = conn.execute(
        select(
            error_logs.c.fingerprint,
            runs.c.service_name,
            runs.c.agent_name,
            func.count(func.distinct(error_logs.c.run_id)),
        )
        .select_from(error_logs.join(runs, runs.c.id == error_logs.c.run_id))
        .where(error_logs.c.fingerprint.in_(list(by_fp)), *where)
        .group_by(error_logs.c.fingerprint, runs.c.service_name, runs.c.agent_name)
    )
    for fp, service, agent, n_runs in rows:
        ranked = by_fp[fp]
        ranked.runs += int(n_runs)
        ranked.services.add(service or "")
        ranked.agents.add(agent or "")


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
