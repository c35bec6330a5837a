"""Error-group rollups: occurrences and runs per (group, hour, service, agent).

``GET /api/error-groups`` ranks groups by occurrences and runs affected in a window that
runs to now. Counting distinct runs over the window's ``error_logs`` rows costs seconds at a
million rows, so the writer keeps ``error_group_hours``:

- ``occurrences``: the group's ``error_logs`` rows created in that hour;
- ``runs_last``: the runs whose *last* occurrence of the group falls in that hour.

A run has an occurrence of a group in ``[since, now)`` exactly when its last one is at or
after ``since``, so runs affected is a sum of ``runs_last`` over the window's hours (the
hour ``since`` falls in is counted from the rows themselves, :mod:`.group_ranking`).

**How it stays exact.** Every change to ``error_logs`` or to a run's service or agent
happens in :func:`otel_diag.store.sql.writer.write_projection`. It names what it may
change (:class:`Scope`: the (run, group) pairs of the rows it may add, delete or move, each
from the earliest hour it changes there, and the runs it upserts), locks those runs
(PostgreSQL),
reads that part of the rollup from the rows before writing and again after
(:func:`snapshot`), and applies the difference in one statement in key order (so
concurrent writers cannot deadlock on rollup rows). When a run's service or agent changes,
its other rows move to the new names as well. Only the touched pairs' recent rows are
read, so writing to a run with 20k errors stays as cheap as writing to a new one. The
table always equals :func:`rebuild`'s from-scratch answer; the tests hold the two equal
after random sequences of writes on both SQL backends, and under concurrent writers.

MongoDB keeps counting from its occurrences (``otel_diag.store.mongo.groups``).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import psycopg

from otel_diag.store.sql.bulk import sqlite_datetimes
from otel_diag.store.sql.expressions import HOUR, hour_bucket, one_of
from otel_diag.store.sql.models import error_group_hours, error_logs, runs
from otel_diag.timewindow import as_utc

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


Pair = tuple[uuid.UUID, str]
"""A run and a group (fingerprint) of it."""


@dataclass(slots=True)
class Scope:
    """The part of the rollup one write can change, read before and after it.

    ``pairs`` are the (run, group) pairs whose rows the write may add, delete or move,
    each with the earliest hour it changes: their rows from that hour on and their last
    hour are read, not whole runs, so a write to a run with 20k errors reads a few rows.
    ``runs`` are every run it may touch: when one's service or agent changes, its other
    rows move to the new names too.
    """

    runs: list[uuid.UUID]
    pairs: dict[Pair, int] = field(default_factory=dict)
    """Each pair -> the earliest hour of its rows the write may change."""

    def add(self, run_id: uuid.UUID, fp: str, at: datetime) -> None:
        """One row the write may add, delete or move: its pair, and its hour."""
        hour = hour_of(as_utc(at))  # SQLite reads times back without their zone
        pair = (run_id, fp)
        self.pairs[pair] = min(self.pairs.get(pair, hour), hour)


@dataclass(slots=True)
class Snapshot:
    """A scope's share of the rollup at one moment."""

    names: dict[uuid.UUID, tuple[str, str]]
    """Run -> (service, agent), for the runs that have errors."""
    occurrences: Counter[tuple[uuid.UUID, str, int]] = field(default_factory=Counter)
    """(run, group, hour) -> rows, for the scope's pairs from its first hour on."""
    last: dict[Pair, int] = field(default_factory=dict)
    """The hour of each scope pair's last row (pairs without rows are absent)."""


def scope(
    run_ids: Iterable[uuid.UUID],
    changes: Iterable[tuple[uuid.UUID, str, datetime]],
    merges: dict[uuid.UUID, uuid.UUID],
) -> Scope:
    """The scope of a write: ``changes`` are the (run, group, time) of rows it may add or
    delete; ``merges`` maps runs it may merge away to the run that absorbs them (their
    groups are added by :func:`include_merges` once the runs are locked)."""
    out = Scope(runs=[])
    touched = set(run_ids) | set(merges) | set(merges.values())
    for run_id, fp, at in changes:
        out.add(run_id, fp, at)
        touched.add(run_id)
    out.runs = sorted(touched)
    return out


def include_merges(conn: Connection, scope: Scope, merges: dict[uuid.UUID, uuid.UUID]) -> None:
    """Add the groups of the runs a write may merge away, on both sides of each merge (all
    their rows move). Read under the run locks, so no other writer adds one meanwhile."""
    if not merges:
        return
    for run_id, fp, at in _groups_of(conn, list(merges)):
        scope.add(run_id, fp, at)
        scope.add(merges[run_id], fp, at)


def _groups_of(conn: Connection, run_ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, str, datetime]]:
    rows = conn.execute(_groups_of_sql(conn.dialect.name), {"ids": run_ids})
    return [tuple(row) for row in rows]  # type: ignore[misc]


@lru_cache(maxsize=2)
def _groups_of_sql(dialect: str) -> Select[Any]:
    """Each run's groups and the earliest row of each (built once: every batch whose spans
    name their run asks it)."""
    e = error_logs.c
    return (
        select(e.run_id, e.fingerprint, func.min(e.created_at))
        .where(one_of(dialect, e.run_id, "ids"))
        .group_by(e.run_id, e.fingerprint)
    )


def snapshot(conn: Connection, scope: Scope) -> Snapshot:
    """Read a scope's share of the rollup from the rows as they are now (one statement)."""
    out = Snapshot(names={})
    for kind, run_id, fp, h, n, service, agent in _run_snapshot(conn, scope):
        if kind == "n":
            out.names[_uuid(run_id)] = (service or "", agent or "")
        elif kind == "c":
            out.occurrences[(_uuid(run_id), fp, h)] += n
        elif h is not None:
            out.last[(_uuid(run_id), fp)] = h
    return out


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=value)


def _run_snapshot(conn: Connection, scope: Scope) -> list[Any]:
    """Run the snapshot statement on the driver's cursor: it runs twice per write, and
    SQLAlchemy's per-execution work (cache key, expanding parameters, result rows) cost
    about twice what the database did."""
    dialect = conn.dialect.name
    sql, order, constants = _snapshot_sql(dialect)
    ordered = sorted(scope.pairs.items())
    values: dict[str, Any]
    if dialect == "postgresql":
        values = {
            "rs": [r for (r, _), _ in ordered],
            "gs": [g for (_, g), _ in ordered],
            "ss": [hour_start(h) for _, h in ordered],
            "ids": scope.runs,
        }
    else:  # SQLite keeps UUIDs as 32 hex digits and times as UTC text
        starts = sqlite_datetimes([hour_start(h) for _, h in ordered])
        pairs = [[r.hex, g, start] for ((r, g), _), start in zip(ordered, starts, strict=True)]
        values = {"pairs": json.dumps(pairs), "ids": json.dumps([r.hex for r in scope.runs])}
    values |= constants
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if order is None:
            cursor.execute(sql, values)
        else:
            cursor.execute(sql, tuple(values[name] for name in order))
        return cursor.fetchall()
    finally:
        cursor.close()


@lru_cache(maxsize=2)
def _snapshot_sql(dialect: str) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
    """The snapshot statement, compiled once: its text, the order of its ``?`` parameters
    (SQLite; None for PostgreSQL's named ones) and the values of its constants.

    Three parts in one round trip, told apart by their first column:

    - ``n``: the service and agent of each run that has errors (only those contribute);
    - ``c``: each pair's rows per hour from its first changed hour (``s``) on;
    - ``l``: each pair's last hour (an endpoint lookup in
      ix_error_logs_run_fingerprint_created).

    Runs and pairs are one parameter each: arrays on PostgreSQL, JSON lists on SQLite.
    """
    e, r = error_logs.c, runs.c
    no_text, no_int = cast(null(), String()), cast(null(), Integer())
    hour = hour_bucket(dialect, e.created_at)
    if dialect == "postgresql":
        rs = bindparam("rs", type_=ARRAY(Uuid()))
        gs = bindparam("gs", type_=ARRAY(String()))
        ss = bindparam("ss", type_=ARRAY(e.created_at.type))
        table = func.unnest(rs, gs, ss).table_valued("r", "g", "s").render_derived("p")
        pairs = select(table.c.r, table.c.g, table.c.s).subquery("pairs")
        ids = func.unnest(bindparam("ids", type_=ARRAY(Uuid()))).table_valued("id")
        ids = ids.render_derived("u")
        # LATERAL: one primary-key or index lookup per run and per pair, whatever the
        # planner's statistics say (a new database has none, and hash joins over whole
        # tables were chosen there).
        run = (
            select(r.service_name, r.agent_name)
            .where(r.id == ids.c.id, select(e.id).where(e.run_id == ids.c.id).exists())
            .limit(1)  # keeps the planner from flattening it into a join again
            .lateral("run")
        )
        names = select(
            literal_column("'n'"),
            ids.c.id,
            no_text,
            no_int,
            no_int,
            run.c.service_name,
            run.c.agent_name,
        ).select_from(ids.join(run, true()))
        rows = (
            select(hour.label("hour"), func.count().label("n"))
            .where(e.run_id == pairs.c.r, e.fingerprint == pairs.c.g, e.created_at >= pairs.c.s)
            .group_by(hour)
            .lateral("rows")
        )
        counts = select(
            literal_column("'c'"), pairs.c.r, pairs.c.g, rows.c.hour, rows.c.n, no_text, no_text
        ).select_from(pairs.join(rows, true()))
    else:
        each = func.json_each(bindparam("pairs", type_=String())).table_valued("value")
        pairs = select(
            func.json_extract(each.c.value, "$[0]").label("r"),
            func.json_extract(each.c.value, "$[1]").label("g"),
            func.json_extract(each.c.value, "$[2]").label("s"),
        ).subquery("pairs")
        wanted = func.json_each(bindparam("ids", type_=String())).table_valued("value")
        has_errors = select(e.id).where(e.run_id == r.id).exists()
        names = select(
            literal_column("'n'"), r.id, no_text, no_int, no_int, r.service_name, r.agent_name
        ).where(r.id.in_(select(wanted.c.value)), has_errors)
        on_pair = and_(e.run_id == pairs.c.r, e.fingerprint == pairs.c.g)
        counts = (
            select(
                literal_column("'c'"), e.run_id, e.fingerprint, hour, func.count(), no_text, no_text
            )
            .select_from(pairs.join(error_logs, on_pair))
            .where(e.created_at >= pairs.c.s)
            .group_by(e.run_id, e.fingerprint, hour)
        )
    on_pair = and_(e.run_id == pairs.c.r, e.fingerprint == pairs.c.g)
    last_hour = (
        select(hour_bucket(dialect, func.max(e.created_at))).where(on_pair).scalar_subquery()
    )
    last = select(literal_column("'l'"), pairs.c.r, pairs.c.g, last_hour, no_int, no_text, no_text)
    compiled = union_all(names, counts, last).compile(
        dialect=psycopg.dialect() if dialect == "postgresql" else sqlite.dialect()
    )
    ours = {"rs", "gs", "ss", "pairs", "ids"}
    constants = {k: v for k, v in compiled.params.items() if k not in ours}
    order = None if compiled.positiontup is None else tuple(compiled.positiontup)
    return str(compiled), order, constants


@lru_cache(maxsize=2)
def _whole_runs_sql(dialect: str) -> Select[Any]:
    e = error_logs.c
    hour = hour_bucket(dialect, e.created_at)
    return (
        select(e.run_id, e.fingerprint, hour, func.count())
        .where(one_of(dialect, e.run_id, "ids"))
        .group_by(e.run_id, e.fingerprint, hour)
    )


def _renamed(conn: Connection, scope: Scope, before: Snapshot, after: Snapshot) -> Delta:
    """Rows outside the scope of runs whose service or agent changed: from old to new names.

    Those rows are the same before and after the write, so one read of them gives both.
    """
    renamed = [
        r
        for r in scope.runs
        if r in before.names and r in after.names and before.names[r] != after.names[r]
    ]
    delta = Delta()
    if not renamed:
        return delta
    last: dict[Pair, int] = {}
    for run_id, fp, h, n in conn.execute(_whole_runs_sql(conn.dialect.name), {"ids": renamed}):
        last[(run_id, fp)] = max(h, last.get((run_id, fp), h))
        if (run_id, fp) in scope.pairs and h >= scope.pairs[(run_id, fp)]:
            continue  # in the scope: already counted from the snapshots
        delta.add(after.names[run_id], fp, h, occurrences=n)
        delta.add(before.names[run_id], fp, h, occurrences=-n)
    for (run_id, fp), h in last.items():
        if (run_id, fp) not in scope.pairs:
            delta.add(after.names[run_id], fp, h, runs_last=1)
            delta.add(before.names[run_id], fp, h, runs_last=-1)
    return delta


@dataclass(slots=True)
class Delta:
    """Changes to rollup rows, by key."""

    occurrences: Counter[Key] = field(default_factory=Counter)
    runs_last: Counter[Key] = field(default_factory=Counter)

    def add(
        self,
        names: tuple[str, str],
        fp: str,
        hour: int,
        occurrences: int = 0,
        runs_last: int = 0,
    ) -> None:
        key = (fp, hour, names[0], names[1])
        self.occurrences[key] += occurrences
        self.runs_last[key] += runs_last

    def share(self, snap: Snapshot, sign: int) -> None:
        """Add (sign 1) or take away (sign -1) a snapshot's share, under its run names."""
        unknown = ("", "")
        for (run_id, fp, h), n in snap.occurrences.items():
            self.add(snap.names.get(run_id, unknown), fp, h, occurrences=sign * n)
        for (run_id, fp), h in snap.last.items():
            self.add(snap.names.get(run_id, unknown), fp, h, runs_last=sign)


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


def apply(conn: Connection, scope: Scope, before: Snapshot, after: Snapshot) -> None:
    """Add what the write changed (``after - before``) to the rollup, in key order, and
    drop rows that reach zero."""
    delta = _renamed(conn, scope, before, after)
    delta.share(after, 1)
    delta.share(before, -1)
    occurrences, runs_last = delta.occurrences, delta.runs_last
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
