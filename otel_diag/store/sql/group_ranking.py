"""Ranking error groups: which groups make a page, with their counts and names.

Two ways to the same answer (tests hold them equal on both SQL backends):

- a window that runs to now (every API, CLI, console and alert query) is ranked from the
  hourly rollup the writer keeps (:mod:`otel_diag.store.sql.group_hours`), plus the rows of
  the hour it starts in;
- a window with an end is ranked with one aggregate over its rows.

:mod:`otel_diag.store.sql.error_groups` then looks up each page group's details.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select

from otel_diag.store.port import GroupOrder
from otel_diag.store.sql import group_hours
from otel_diag.store.sql.expressions import one_of
from otel_diag.store.sql.models import error_group_hours, error_logs, runs
from otel_diag.timewindow import as_utc

CHUNK = 1000


def window(since: datetime | None, until: datetime | None) -> list[Any]:
    """``error_logs.created_at`` in ``[since, until)`` (either end open when None)."""
    clauses: list[Any] = []
    if since is not None:
        clauses.append(error_logs.c.created_at >= as_utc(since))
    if until is not None:
        clauses.append(error_logs.c.created_at < as_utc(until))
    return clauses


@dataclass(slots=True)
class Ranked:
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

    def add(self, service: str, agent: str, occurrences: int, runs: int) -> None:
        """Count occurrences and runs of runs with these names."""
        self.occurrences += occurrences
        self.runs += runs
        self.services.add(service)
        self.agents.add(agent)


@dataclass(frozen=True, slots=True)
class Filters:
    """Which runs and groups a page counts: one rule for both paths.

    A run whose service or agent is unknown has the name '' (the rollup's key columns
    cannot be NULL), so ``service=""`` matches those runs on either path.
    """

    service: str | None
    agent: str | None
    fingerprints: Sequence[str] | None

    def on_hours(self) -> list[Any]:
        """The filters as conditions on ``error_group_hours``."""
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

    @property
    def named(self) -> bool:
        """Whether rows must be joined to their runs to apply the filters."""
        return self.service is not None or self.agent is not None

    def admits(self, service: str, agent: str) -> bool:
        """Whether a run of these names passes the filters."""
        return (self.service is None or service == self.service) and (
            self.agent is None or agent == self.agent
        )


def rank_hours(
    conn: Connection,
    since: datetime | None,
    filters: Filters,
    order: GroupOrder,
    limit: int,
    offset: int,
) -> list[Ranked]:
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
    tallies: dict[str, Ranked] = {}
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
        tallies[fp] = Ranked(fp, int(n), int(n_runs), lo=int(lo), hi=int(hi))
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
    conn: Connection, since: datetime, edge: int, filters: Filters, tallies: dict[str, Ranked]
) -> None:
    """Add the part of the window in ``since``'s hour to the tallies, with its names.

    Whichever side of ``since`` is shorter is read from the rows: the rows after it are
    added, or the rows before it are taken off the hour's rollup. Either way at most half
    an hour of rows is read.
    """
    start, end = group_hours.hour_start(edge), group_hours.hour_end(edge)
    if since - start >= end - since:
        for fp, service, agent, n, counted_last in _edge_pairs(conn, since, end, filters):
            _tally(tallies, fp, edge).add(service, agent, n, 1 if counted_last else 0)
        return
    t = error_group_hours.c
    hour = select(t.fingerprint, t.service_name, t.agent_name, t.occurrences, t.runs_last)
    kept = {
        (fp, service, agent): [n, n_runs]
        for fp, service, agent, n, n_runs in conn.execute(
            hour.where(t.hour == edge, *filters.on_hours())
        )
    }
    for fp, service, agent, n, counted_last in _edge_pairs(conn, start, since, filters):
        left = kept.get((fp, service, agent))
        if left is not None:  # always, unless a write committed in between
            left[0] -= n
            left[1] -= 1 if counted_last else 0
    for (fp, service, agent), (n, n_runs) in kept.items():
        if n > 0:
            _tally(tallies, fp, edge).add(service, agent, n, n_runs)


def _tally(tallies: dict[str, Ranked], fp: str, edge: int) -> Ranked:
    tally = tallies.get(fp)
    if tally is None:
        tally = tallies[fp] = Ranked(fp, lo=edge, hi=edge)
    tally.lo = edge
    return tally


def _edge_pairs(
    conn: Connection, low: datetime, high: datetime, filters: Filters
) -> Iterator[tuple[str, str, str, int, bool]]:
    """Per (group, run) with rows in ``[low, high)``: its group, service, agent, rows
    there, and whether its last row of the group is there (none at or after ``high``).

    Rows are counted per (group, run) first; the runs' names and later occurrences are then
    read by run key (joining ``runs`` to an hour of rows made PostgreSQL hash the whole
    runs table, and a per-row probe for a later occurrence cost more than the count).
    """
    e = error_logs.c
    where = [e.created_at >= as_utc(low), e.created_at < high]
    if filters.fingerprints is not None:
        where.append(e.fingerprint.in_(list(filters.fingerprints)))
    pairs = conn.execute(
        select(e.fingerprint, e.run_id, func.count())
        .where(*where)
        .group_by(e.fingerprint, e.run_id)
    ).all()
    run_ids = {run_id for _, run_id, _ in pairs}
    names = _run_names(conn, run_ids)
    later = _later_pairs(conn, run_ids, high)
    for fp, run_id, n in pairs:
        service, agent = names.get(run_id, ("", ""))
        if filters.admits(service, agent):
            yield fp, service, agent, int(n), (fp, run_id) not in later


def _later_pairs(
    conn: Connection, run_ids: set[uuid.UUID], after: datetime
) -> set[tuple[str, uuid.UUID]]:
    """(group, run) pairs of these runs with an occurrence at or after ``after``."""
    statement = _later_pairs_sql(conn.dialect.name)
    wanted = list(run_ids)
    found: set[tuple[str, uuid.UUID]] = set()
    for i in range(0, len(wanted), CHUNK):
        params = {"ids": wanted[i : i + CHUNK], "after": after}
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
    for i in range(0, len(wanted), CHUNK):
        for run_id, service, agent in conn.execute(statement, {"ids": wanted[i : i + CHUNK]}):
            found[run_id] = (service or "", agent or "")
    return found


@lru_cache(maxsize=2)
def _run_names_sql(dialect: str) -> Any:
    ids = one_of(dialect, runs.c.id, "ids")
    return select(runs.c.id, runs.c.service_name, runs.c.agent_name).where(ids)


def _by_exact_time(
    conn: Connection,
    since: datetime | None,
    filters: Filters,
    ranked: list[Ranked],
    order: GroupOrder,
    needed: int,
) -> list[Ranked]:
    """Rank by last (or first) occurrence in the window, newest first.

    The hour of each group's time is known from the rollup, so only the groups whose hour
    is at least the ``needed``-th newest can reach the page; their exact times are read.
    """
    newest_last = order == "last_seen"

    def hour(r: Ranked) -> int:
        return r.hi if newest_last else r.lo

    ranked.sort(key=lambda r: -hour(r))
    if len(ranked) > needed:
        cutoff = hour(ranked[needed - 1])
        ranked = [r for r in ranked if hour(r) >= cutoff]
    e = error_logs.c
    agg = func.max if newest_last else func.min
    probes = []
    for r in ranked:
        start = group_hours.hour_start(hour(r))
        if since is not None:
            start = max(start, as_utc(since))
        source = error_logs.join(runs, runs.c.id == e.run_id) if filters.named else error_logs
        probes.append(
            select(agg(e.created_at))
            .select_from(source)
            .where(
                e.fingerprint == r.fingerprint,
                e.created_at >= start,
                e.created_at < group_hours.hour_end(hour(r)),
                *filters.on_rows(),
            )
            .scalar_subquery()
        )
    times: list[Any] = []
    for i in range(0, len(probes), 100):
        times.extend(conn.execute(select(*probes[i : i + 100])).one())
    exact = {r.fingerprint: as_utc(at) for r, at in zip(ranked, times, strict=True) if at}
    ranked = [r for r in ranked if r.fingerprint in exact]  # gone since the rollup was read
    return sorted(ranked, key=lambda r: (-exact[r.fingerprint].timestamp(), r.fingerprint))


def _names(conn: Connection, edge: int | None, filters: Filters, page: list[Ranked]) -> None:
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


def rank_rows(
    conn: Connection,
    since: datetime | None,
    until: datetime,
    filters: Filters,
    order: GroupOrder,
    limit: int,
    offset: int,
) -> list[Ranked]:
    """One page of groups of ``[since, until)``, counted from the rows of the window."""
    where = window(since, until)
    if filters.fingerprints is not None:
        where.append(error_logs.c.fingerprint.in_(list(filters.fingerprints)))
    source = error_logs
    if filters.named:
        source = error_logs.join(runs, runs.c.id == error_logs.c.run_id)  # type: ignore[assignment]
        where += filters.on_rows()
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
    ranked = [Ranked(fp, int(count)) for fp, count, _ in page]
    _runs_and_names(conn, ranked, where)
    return ranked


def _runs_and_names(conn: Connection, page: list[Ranked], where: list[Any]) -> None:
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
        .select_from(error_logs.outerjoin(runs, runs.c.id == error_logs.c.run_id))
        .where(error_logs.c.fingerprint.in_(list(by_fp)), *where)
        .group_by(error_logs.c.fingerprint, runs.c.service_name, runs.c.agent_name)
    )
    for fp, service, agent, n_runs in rows:
        ranked = by_fp[fp]
        ranked.runs += int(n_runs)
        ranked.services.add(service or "")
        ranked.agents.add(agent or "")
