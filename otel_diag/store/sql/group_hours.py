"""Error-group rollups: occurrences and runs per (group, hour, service, agent).

``GET /api/error-groups`` ranks groups by occurrences and runs affected in a window that
runs to now. Counting distinct runs over the window's ``error_logs`` rows costs seconds at a
million rows, so the writer keeps ``error_group_hours``:

- ``occurrences``: the group's ``error_logs`` rows created in that hour;
- ``runs_last``: the runs whose *last* occurrence of the group falls in that hour.

A run has an occurrence of a group in ``[since, now)`` exactly when its last one is at or
after ``since``, so runs affected is a sum of ``runs_last`` over the window's hours (the
hour ``since`` falls in is counted from the rows themselves, :mod:`.error_groups`).

**How it stays exact.** Every change to ``error_logs`` or to a run's service or agent
happens in :func:`otel_diag.store.sql.writer.write_projection`. It names the runs it may
touch, locks them (PostgreSQL), reads their contribution to the rollup before writing and
again after, and applies the difference in one statement in key order (so concurrent
writers cannot deadlock on rollup rows). A run's contribution is a function of its own rows
only, so the table always equals :func:`rebuild`'s from-scratch answer; the tests hold the
two equal after random sequences of writes on both SQL backends.

MongoDB keeps counting from its occurrences (``otel_diag.store.mongo.groups``).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from otel_diag.store.sql.expressions import HOUR, hour_bucket, one_of
from otel_diag.store.sql.models import error_group_hours, error_logs, runs
from otel_diag.timewindow import as_utc

CHUNK = 500
Key = tuple[str, int, str, str]
"""A rollup row's key: fingerprint, hour (since the epoch), service, agent ('' when unknown)."""


def hour_of(moment: datetime) -> int:
    """The hour bucket of a time, the same as :func:`hour_bucket` computes in the database."""
    return int(as_utc(moment).timestamp() // HOUR)


def hour_start(hour: int) -> datetime:
    """When an hour bucket begins (UTC)."""
    return datetime.fromtimestamp(hour * HOUR, UTC)


def hour_end(hour: int) -> datetime:
    """When an hour bucket ends (the last hour of year 9999 ends at ``datetime.max``)."""
    try:
        return hour_start(hour + 1)
    except (OverflowError, ValueError):
        return datetime.max.replace(tzinfo=UTC)


@dataclass(slots=True)
class Contribution:
    """What a set of runs adds to the rollup: occurrences and runs_last per key."""

    occurrences: Counter[Key] = field(default_factory=Counter)
    runs_last: Counter[Key] = field(default_factory=Counter)
    runs: set[uuid.UUID] = field(default_factory=set)
    """The runs that have errors (the others contribute nothing)."""


@lru_cache(maxsize=2)
def _contribution_sql(dialect: str) -> Select[Any]:
    """Per (run, group, hour): the error rows, with the run's names (built once)."""
    hour = hour_bucket(dialect, error_logs.c.created_at).label("hour")
    service = func.coalesce(runs.c.service_name, "")
    agent = func.coalesce(runs.c.agent_name, "")
    return (
        select(error_logs.c.run_id, error_logs.c.fingerprint, hour, service, agent, func.count())
        .select_from(error_logs.outerjoin(runs, runs.c.id == error_logs.c.run_id))
        .where(one_of(dialect, error_logs.c.run_id, "ids"))
        .group_by(error_logs.c.run_id, error_logs.c.fingerprint, hour, service, agent)
    )


def contribution(conn: Connection, run_ids: Collection[uuid.UUID]) -> Contribution:
    """The rollup counts of these runs, computed from their stored rows."""
    out = Contribution()
    wanted = list(run_ids)
    if not wanted:
        return out
    statement = _contribution_sql(conn.dialect.name)
    last: dict[tuple[uuid.UUID, str], tuple[int, str, str]] = {}
    for i in range(0, len(wanted), CHUNK):
        for run_id, fp, h, service, agent, n in conn.execute(
            statement, {"ids": wanted[i : i + CHUNK]}
        ):
            out.runs.add(run_id)
            out.occurrences[(fp, h, service, agent)] += n
            seen = last.get((run_id, fp))
            if seen is None or h > seen[0]:
                last[(run_id, fp)] = (h, service, agent)
    for (_run, fp), (h, service, agent) in last.items():
        out.runs_last[(fp, h, service, agent)] += 1
    return out


@lru_cache(maxsize=2)
def _upsert_sql(dialect: str) -> Any:
    ins = (postgresql if dialect == "postgresql" else sqlite).insert(error_group_hours)
    t = error_group_hours.c
    return ins.on_conflict_do_update(
        index_elements=[t.fingerprint, t.hour, t.service_name, t.agent_name],
        set_={
            "occurrences": t.occurrences + ins.excluded.occurrences,
            "runs_last": t.runs_last + ins.excluded.runs_last,
        },
    )


def apply(conn: Connection, before: Contribution, after: Contribution) -> None:
    """Add ``after - before`` to the rollup, in key order, and drop rows that reach zero."""
    occurrences = after.occurrences.copy()
    occurrences.subtract(before.occurrences)
    runs_last = after.runs_last.copy()
    runs_last.subtract(before.runs_last)
    keys = sorted(
        k for k in occurrences.keys() | runs_last.keys() if occurrences[k] or runs_last[k]
    )
    if not keys:
        return
    rows = [
        {
            "fingerprint": k[0],
            "hour": k[1],
            "service_name": k[2],
            "agent_name": k[3],
            "occurrences": occurrences[k],
            "runs_last": runs_last[k],
        }
        for k in keys
    ]
    conn.execute(_upsert_sql(conn.dialect.name), rows)
    if any(occurrences[k] < 0 or runs_last[k] < 0 for k in keys):
        t = error_group_hours.c
        hours = sorted({k[1] for k in keys})
        conn.execute(
            error_group_hours.delete().where(
                t.hour.in_(hours), t.occurrences == 0, t.runs_last == 0
            )
        )


def lock_runs(conn: Connection, run_ids: Iterable[uuid.UUID]) -> None:
    """PostgreSQL: serialize writers of the same runs until this transaction ends.

    A run's contribution is read before and after the write; a concurrent writer of the
    same run (another trace of it) committing in between would be counted twice. Taken
    after the trace locks, in sorted order, in one statement (no deadlocks). SQLite writers
    are serialized by ``BEGIN IMMEDIATE``.
    """
    if conn.dialect.name != "postgresql":
        return
    ids = sorted({str(r) for r in run_ids})
    if ids:
        conn.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(h) FROM "
            "(SELECT hashtextextended(r, 1) AS h FROM unnest(%(ids)s::text[]) AS r "
            "ORDER BY r) AS ordered",
            {"ids": ids},
        )


def rebuild(conn: Connection) -> None:
    """Recompute the whole rollup from ``error_logs`` (migration back-fill, bulk loads)."""
    dialect = conn.dialect.name
    e = error_logs.c
    hour = hour_bucket(dialect, e.created_at)
    service = func.coalesce(runs.c.service_name, "")
    agent = func.coalesce(runs.c.agent_name, "")
    joined = error_logs.outerjoin(runs, runs.c.id == e.run_id)
    conn.execute(error_group_hours.delete())
    occurrences = (
        select(
            e.fingerprint.label("fp"),
            hour.label("h"),
            service.label("s"),
            agent.label("a"),
            func.count().label("n"),
        )
        .select_from(joined)
        .group_by(e.fingerprint, hour, service, agent)
        .subquery()
    )
    pairs = (
        select(
            e.fingerprint.label("fp"),
            func.max(hour).label("h"),
            service.label("s"),
            agent.label("a"),
        )
        .select_from(joined)
        .group_by(e.fingerprint, e.run_id, service, agent)
        .subquery()
    )
    last = (
        select(pairs.c.fp, pairs.c.h, pairs.c.s, pairs.c.a, func.count().label("n"))
        .group_by(pairs.c.fp, pairs.c.h, pairs.c.s, pairs.c.a)
        .subquery()
    )
    # Every (group, run)'s last hour has an occurrence, so each runs_last key is also an
    # occurrences key: a left join from occurrences covers them all.
    source = select(
        occurrences.c.fp,
        occurrences.c.h,
        occurrences.c.s,
        occurrences.c.a,
        occurrences.c.n,
        func.coalesce(last.c.n, literal_column("0")),
    ).select_from(
        occurrences.outerjoin(
            last,
            (last.c.fp == occurrences.c.fp)
            & (last.c.h == occurrences.c.h)
            & (last.c.s == occurrences.c.s)
            & (last.c.a == occurrences.c.a),
        )
    )
    conn.execute(
        error_group_hours.insert().from_select(
            ["fingerprint", "hour", "service_name", "agent_name", "occurrences", "runs_last"],
            source,
        )
    )
