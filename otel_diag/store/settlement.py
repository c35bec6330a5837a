"""Which of a batch's errors are new failures, given what a store already holds: the plan.

The rules are :mod:`otel_diag.projection.propagation`'s; this is the bookkeeping around
them that any store needs, kept free of I/O: the store reads the stored failures
(``error_logs``) and copies (``error_propagations``) of the batch's failing traces, hands
them here with the batch, and applies the :class:`Settlement` it gets back:

- ``kept``: the batch's errors that are failures (their ``propagated_to`` filled in);
- ``new_copies``: recordings that repeat a failure (new ones, and stored failures that
  turn out to repeat a newly arrived descendant's), to be kept as copies;
- ``moved``: stored failures that became copies (delete them from the failures);
- ``renamed``: stored failures whose ``propagated_to`` changed;
- ``relinked``: stored copies whose origin changed.

Stored rows are mappings with the column names of the SQL tables (times as datetimes).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_diag.projection.propagation import Recorded, resolve
from otel_diag.timewindow import as_utc

SHARED = ("trace_id", "span_id", "parent_span_id", "exception_key", "recorded_as", "step_name")
"""Columns a copy shares with the recording it was made from."""


@dataclass(slots=True)
class Settlement:
    kept: list[Any] = field(default_factory=list)
    new_copies: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    moved: list[uuid.UUID] = field(default_factory=list)
    renamed: list[tuple[uuid.UUID, list[str] | None]] = field(default_factory=list)
    relinked: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)

    @property
    def changed_stored(self) -> bool:
        """Whether stored failures changed (the run's counts must then be recomputed)."""
        return bool(self.moved or self.renamed or self.relinked)


def _get(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, Mapping) else getattr(row, name)


def recorded(row: Any) -> Recorded:
    """A stored or new error as the propagation rules see it."""
    return Recorded(
        id=_get(row, "id"),
        span_id=_get(row, "span_id"),
        parent_span_id=_get(row, "parent_span_id"),
        key=_get(row, "exception_key") or "",
        time=as_utc(_get(row, "created_at")),
        step_name=_get(row, "step_name"),
        origin=_get(row, "recorded_as") or "event",
    )


def copy_row(row: Any, origin_id: uuid.UUID) -> dict[str, Any]:
    """The ``error_propagations`` row of a recording that repeats ``origin_id``."""
    return {
        "id": _get(row, "id"),
        "origin_id": origin_id,
        **{c: _get(row, c) for c in SHARED},
        "exception_key": _get(row, "exception_key") or "",
        "recorded_as": _get(row, "recorded_as") or "event",
        "created_at": _get(row, "created_at"),
    }


def plan(
    new_errors: Sequence[Any],
    stored_origins: Iterable[Mapping[str, Any]],
    stored_copies: Iterable[Mapping[str, Any]],
    parents: Mapping[str, Mapping[str, str | None]],
    with_names: Any,
) -> Settlement:
    """Settle ``new_errors`` against the stored rows of their traces.

    ``with_names(error, names)`` returns the error with ``propagated_to`` set (the rows may
    be dicts or frozen dataclasses; the caller knows which).
    """
    out = Settlement()
    origins: dict[str, list[Mapping[str, Any]]] = {}
    copies: dict[str, list[Mapping[str, Any]]] = {}
    for row in stored_origins:
        origins.setdefault(row["trace_id"], []).append(row)
    for row in stored_copies:
        copies.setdefault(row["trace_id"], []).append(row)
    batch: dict[str, list[Any]] = {}
    for error in new_errors:
        batch.setdefault(_get(error, "trace_id"), []).append(error)
    for trace_id in sorted(batch):
        stored_o = origins.get(trace_id, [])
        stored_c = copies.get(trace_id, [])
        new = batch[trace_id]
        if len(new) == 1 and not stored_o and not stored_c:
            out.kept.extend(new)  # the common case: one failure in a fresh trace
            continue
        chains = resolve(
            (recorded(r) for r in (*stored_o, *stored_c, *new)), parents.get(trace_id, {})
        )
        known = {r["id"] for r in stored_o} | {r["id"] for r in stored_c}
        for error in new:
            error_id = _get(error, "id")
            origin_id = chains.origin_of.get(error_id)
            if origin_id is not None:
                if error_id not in known:
                    out.new_copies[error_id] = copy_row(error, origin_id)
                continue
            names = chains.propagated_to.get(error_id)
            out.kept.append(with_names(error, list(names) if names else None))
        for row in stored_o:
            origin_id = chains.origin_of.get(row["id"])
            if origin_id is not None:
                out.moved.append(row["id"])
                out.new_copies[row["id"]] = copy_row(row, origin_id)
                continue
            stored_names = list(chains.propagated_to.get(row["id"], ())) or None
            current = list(row["propagated_to"]) if row["propagated_to"] else None
            if stored_names != current:
                out.renamed.append((row["id"], stored_names))
        for row in stored_c:
            origin_id = chains.origin_of.get(row["id"])
            if origin_id is not None and origin_id != row["origin_id"]:
                out.relinked.append((row["id"], origin_id))
    return out
