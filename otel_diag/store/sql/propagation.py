"""Settle which of a batch's errors are new failures and which repeat stored ones.

The rules live in :mod:`otel_diag.projection.propagation` and their bookkeeping in
:mod:`otel_diag.store.settlement` (shared with the MongoDB store); this module feeds them
every error the store already holds for the batch's failing traces, and applies the
outcome in the writer's transaction:

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
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from otel_diag.projection.project import Projection
from otel_diag.rows import ErrorRow
from otel_diag.store.settlement import SHARED as _SHARED
from otel_diag.store.settlement import plan
from otel_diag.store.sql.bulk import insert_ignore
from otel_diag.store.sql.expressions import one_of
from otel_diag.store.sql.models import error_logs, error_propagations

CHUNK = 500


@dataclass(frozen=True, slots=True)
class Stored:
    """What the store holds for a batch's failing traces, read once per write.

    ``failures`` are their ``error_logs`` rows, with the run and fingerprint the error-group
    rollup's upkeep needs besides the settlement's columns; ``copies`` their
    ``error_propagations`` rows. The write reads them before it merges placeholder runs,
    which changes only ``run_id``: the rollup wants the runs as they were, and settlement
    does not look at runs.
    """

    failures: list[dict[str, Any]]
    copies: list[dict[str, Any]]


def read_stored(conn: Connection, trace_ids: Iterable[str]) -> Stored:
    """The stored failures and copies of ``trace_ids`` (callers hold the traces' locks)."""
    ids = sorted(set(trace_ids))
    return Stored(
        _rows(conn, error_logs, ("propagated_to", "run_id", "fingerprint"), ids),
        _rows(conn, error_propagations, ("origin_id",), ids),
    )


def _rows(
    conn: Connection, table: Any, extra: tuple[str, ...], trace_ids: list[str]
) -> list[dict[str, Any]]:
    statement = _stored_query(conn.dialect.name, table, extra)
    out: list[dict[str, Any]] = []
    for i in range(0, len(trace_ids), CHUNK):
        out += map(dict, conn.execute(statement, {"ids": trace_ids[i : i + CHUNK]}).mappings())
    return out


@lru_cache(maxsize=8)
def _stored_query(dialect: str, table: Any, extra: tuple[str, ...]) -> Any:
    """The stored rows of a list of traces, built once: every batch with errors runs it,
    and building and caching a new ``IN`` statement per batch cost more than running it."""
    cols = [table.c[c] for c in ("id", *_SHARED, "created_at", *extra)]
    return select(*cols).where(one_of(dialect, table.c.trace_id, "ids"))


def settle_propagation(conn: Connection, proj: Projection, stored: Stored) -> bool:
    """Keep only new failures in ``proj.errors``; True if stored rows changed.

    ``stored`` is :func:`read_stored` of the batch's failing traces.
    """
    if not proj.errors:
        return False
    settled = plan(proj.errors, stored.failures, stored.copies, proj.parents, _with_names)
    proj.errors = settled.kept
    moved, new_copies = settled.moved, settled.new_copies
    renamed = [{"b_id": i, "b_names": names} for i, names in settled.renamed]
    relinked = [{"b_id": i, "b_origin": origin} for i, origin in settled.relinked]
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
    return settled.changed_stored


def _with_names(error: ErrorRow, names: list[str] | None) -> ErrorRow:
    return dataclasses.replace(error, propagated_to=tuple(names)) if names else error


def _by_id(row: Mapping[str, Any]) -> bytes:
    value: uuid.UUID = row["id"]
    return value.bytes
