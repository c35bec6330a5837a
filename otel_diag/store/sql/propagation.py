"""Settle which of a batch's errors are new failures and which repeat stored ones.

The rules live in :mod:`otel_diag.projection.propagation`; this module feeds them every
error the store already holds for the batch's failing traces, and applies the outcome in
the writer's transaction:

- a new error that repeats another is kept in ``error_propagations``, not ``error_logs``;
- a stored failure that turns out to repeat a newly arrived descendant's (its child ended
  later, or came in a later request) moves from ``error_logs`` to ``error_propagations``;
- each failure's ``propagated_to`` lists its copies' step names.

Callers hold the traces' write locks (``lock_traces`` on PostgreSQL, ``BEGIN IMMEDIATE``
on SQLite), so two writers never settle the same trace at once.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from otel_diag.projection.project import Projection
from otel_diag.projection.propagation import EVENT, Recorded, resolve
from otel_diag.rows import ErrorRow
from otel_diag.store.sql.bulk import insert_ignore
from otel_diag.store.sql.models import error_logs, error_propagations
from otel_diag.timewindow import as_utc

CHUNK = 500
_SHARED = ("trace_id", "span_id", "parent_span_id", "exception_key", "recorded_as", "step_name")


def _recorded(row: Mapping[str, Any]) -> Recorded:
    return Recorded(
        id=row["id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        key=row["exception_key"] or "",
        time=as_utc(row["created_at"]),
        step_name=row["step_name"],
        origin=row["recorded_as"] or EVENT,
    )


def _recorded_new(error: ErrorRow) -> Recorded:
    return Recorded(
        id=error.id,
        span_id=error.span_id,
        parent_span_id=error.parent_span_id,
        key=error.exception_key or "",
        time=as_utc(error.created_at),
        step_name=error.step_name,
        origin=error.recorded_as or EVENT,
    )


def _values(error: ErrorRow) -> dict[str, Any]:
    """The columns a copy shares with its recording, from a row of the batch."""
    return {c: getattr(error, c) for c in ("id", *_SHARED, "created_at")}


def _stored(
    conn: Connection, table: Any, extra: str, trace_ids: list[str]
) -> Iterable[Mapping[str, Any]]:
    cols = [table.c[c] for c in ("id", *_SHARED, "created_at", extra)]
    for i in range(0, len(trace_ids), CHUNK):
        part = trace_ids[i : i + CHUNK]
        for row in conn.execute(select(*cols).where(table.c.trace_id.in_(part))).mappings():
            yield dict(row)


def _copy_row(row: Mapping[str, Any], origin_id: uuid.UUID) -> dict[str, Any]:
    return {
        "id": row["id"],
        "origin_id": origin_id,
        **{c: row[c] for c in _SHARED},
        "exception_key": row["exception_key"] or "",
        "recorded_as": row["recorded_as"] or EVENT,
        "created_at": row["created_at"],
    }


def settle_propagation(conn: Connection, proj: Projection) -> bool:
    """Keep only new failures in ``proj.errors``; True if stored rows changed."""
    if not proj.errors:
        return False
    trace_ids = sorted({e.trace_id for e in proj.errors})
    origins: dict[str, list[Mapping[str, Any]]] = {}
    copies: dict[str, list[Mapping[str, Any]]] = {}
    for row in _stored(conn, error_logs, "propagated_to", trace_ids):
        origins.setdefault(row["trace_id"], []).append(row)
    for row in _stored(conn, error_propagations, "origin_id", trace_ids):
        copies.setdefault(row["trace_id"], []).append(row)
    batch: dict[str, list[ErrorRow]] = {}
    for error in proj.errors:
        batch.setdefault(error.trace_id, []).append(error)

    kept: list[ErrorRow] = []
    new_copies: dict[uuid.UUID, dict[str, Any]] = {}
    moved: list[uuid.UUID] = []
    relinked: list[dict[str, Any]] = []
    renamed: list[dict[str, Any]] = []
    for trace_id in trace_ids:
        stored_origins = origins.get(trace_id, [])
        stored_copies = copies.get(trace_id, [])
        new = batch[trace_id]
        if len(new) == 1 and not stored_origins and not stored_copies:
            kept.extend(new)  # the common case: one failure in a fresh trace
            continue
        chains = resolve(
            [
                *(_recorded(r) for r in (*stored_origins, *stored_copies)),
                *(_recorded_new(e) for e in new),
            ],
            proj.parents.get(trace_id, {}),
        )
        known = {r["id"] for r in stored_origins} | {r["id"] for r in stored_copies}
        for error in new:
            origin_id = chains.origin_of.get(error.id)
            if origin_id is not None:
                if error.id not in known:
                    new_copies[error.id] = _copy_row(_values(error), origin_id)
                continue
            names = chains.propagated_to.get(error.id)
            if names:
                error = dataclasses.replace(error, propagated_to=names)
            kept.append(error)
        for row in stored_origins:
            origin_id = chains.origin_of.get(row["id"])
            if origin_id is not None:
                moved.append(row["id"])
                new_copies[row["id"]] = _copy_row(row, origin_id)
                continue
            stored_names = list(chains.propagated_to.get(row["id"], ())) or None
            if stored_names != row["propagated_to"]:
                renamed.append({"b_id": row["id"], "b_names": stored_names})
        for row in stored_copies:
            origin_id = chains.origin_of.get(row["id"])
            if origin_id is not None and origin_id != row["origin_id"]:
                relinked.append({"b_id": row["id"], "b_origin": origin_id})
    proj.errors = kept
    if moved:
        for i in range(0, len(moved), CHUNK):
            conn.execute(delete(error_logs).where(error_logs.c.id.in_(moved[i : i + CHUNK])))
    if new_copies:
        insert_ignore(conn, error_propagations, sorted(new_copies.values(), key=_by_id))
    if renamed:
        conn.execute(
            update(error_logs)
            .where(error_logs.c.id == bindparam("b_id"))
            .values(propagated_to=bindparam("b_names", type_=error_logs.c.propagated_to.type)),
            renamed,
        )
    if relinked:
        conn.execute(
            update(error_propagations)
            .where(error_propagations.c.id == bindparam("b_id"))
            .values(origin_id=bindparam("b_origin")),
            relinked,
        )
    return bool(moved or renamed or relinked)


def _by_id(row: Mapping[str, Any]) -> bytes:
    value: uuid.UUID = row["id"]
    return value.bytes
