"""Reads of runs, steps, errors and reports, answered as the typed rows of
:mod:`otel_diag.rows`, in the orders the SQL store uses (ties by id)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from otel_diag.projection.ids import parse_run_ref
from otel_diag.rows import ErrorRow, ErrorShape, ErrorSummary, Report, Run, Step
from otel_diag.store.mongo.codec import from_us, to_us, typed
from otel_diag.store.port import AmbiguousRunError

Doc = dict[str, Any]
_HEX = frozenset("0123456789abcdef")


def resolve_run(db: Database[Doc], ref: str | uuid.UUID) -> uuid.UUID | None:
    """A run from its full UUID, a trace id, a run-id string, or a unique id prefix."""
    if isinstance(ref, uuid.UUID):
        candidates = [ref]
    else:
        raw = ref.strip()  # run-id strings are case-sensitive (uuid5 of the exact text)
        text = raw.lower()
        candidates = []
        for form in dict.fromkeys((raw, text)):
            direct = parse_run_ref(form)
            if direct is not None:
                candidates.append(direct)
        if len(text) == 32 and set(text) <= _HEX:
            hit = db.runs.find_one({"trace_id": text}, {"_id": 1})
            if hit is not None:
                candidates.insert(0, hit["_id"])
            else:  # a later trace of a run that spans several
                tr = db.trace_runs.find_one({"_id": text})
                if tr is not None:
                    candidates.insert(0, tr["run_id"])
    for cand in candidates:
        if db.runs.find_one({"_id": cand}, {"_id": 1}) is not None:
            return cand
    if isinstance(ref, str):
        prefix = ref.strip().lower().replace("-", "")
        if 4 <= len(prefix) < 32 and set(prefix) <= _HEX:
            # The ids whose hex starts with the prefix are one range of UUID values.
            low = uuid.UUID(hex=prefix.ljust(32, "0"))
            high = uuid.UUID(hex=prefix.ljust(32, "f"))
            hits = list(db.runs.find({"_id": {"$gte": low, "$lte": high}}, {"_id": 1}).limit(2))
            if len(hits) > 1:
                raise AmbiguousRunError(f"run id prefix {ref!r} matches several runs")
            if hits:
                return uuid.UUID(str(hits[0]["_id"]))
    return None


def get_run(db: Database[Doc], run_id: uuid.UUID) -> Run | None:
    doc = db.runs.find_one({"_id": run_id})
    return typed(Run, doc) if doc else None


def list_runs(
    db: Database[Doc],
    *,
    status: str | None = None,
    since: datetime | None = None,
    agent: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Run]:
    query: Doc = {}
    if status:
        query["status"] = status
    if since is not None:
        query["started_at"] = {"$gte": to_us(since)}
    if agent:
        query["agent_name"] = agent
    cursor = (
        db.runs.find(query)
        .sort([("started_at", DESCENDING), ("_id", ASCENDING)])
        .skip(offset)
        .limit(limit)
    )
    return [typed(Run, d) for d in cursor]


def get_steps(db: Database[Doc], run_id: uuid.UUID) -> list[Step]:
    cursor = db.steps.find({"run_id": run_id}).sort(
        [("started_at", ASCENDING), ("span_id", ASCENDING)]
    )
    return [typed(Step, d) for d in cursor]


def get_errors(
    db: Database[Doc], run_id: uuid.UUID, *, limit: int | None = None, offset: int = 0
) -> list[ErrorRow]:
    """A run's failures, oldest first; pages are cut in the database."""
    cursor = (
        db.error_logs.find({"run_id": run_id})
        .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        .skip(offset)
    )
    if limit is not None:
        cursor = cursor.limit(limit)
    return [typed(ErrorRow, d) for d in cursor]


def error_summary(db: Database[Doc], run_id: uuid.UUID) -> ErrorSummary:
    """Counts by category and source, and the distinct shapes (see the SQL twin,
    :func:`otel_diag.store.sql.queries.error_summary`)."""
    by_category: dict[str, int] = {}
    by_source: dict[str, int] = {}
    shapes: dict[str, list[Any]] = {}
    fields = {"fingerprint": 1, "error_type": 1, "error_category": 1, "source": 1}
    fields["created_at"] = 1
    for d in db.error_logs.find({"run_id": run_id}, fields):
        by_category[d["error_category"]] = by_category.get(d["error_category"], 0) + 1
        by_source[d["source"]] = by_source.get(d["source"], 0) + 1
        shape = shapes.get(d["fingerprint"])
        if shape is None:
            shapes[d["fingerprint"]] = [d["error_type"], d["error_category"], 1, d["created_at"]]
        else:
            shape[0] = min(shape[0], d["error_type"])
            shape[1] = min(shape[1], d["error_category"])
            shape[2] += 1
            shape[3] = min(shape[3], d["created_at"])
    total = sum(by_source.values())
    ordered = sorted(shapes.items(), key=lambda kv: kv[1][3])
    return ErrorSummary(
        total=total,
        failures=len(shapes),
        attempts=total,
        by_category=by_category,
        by_source=by_source,
        fingerprints=tuple(ErrorShape(f, t, c, n, from_us(s)) for f, (t, c, n, s) in ordered),
    )


def get_reports(
    db: Database[Doc], run_id: uuid.UUID, *, limit: int | None = None, offset: int = 0
) -> list[Report]:
    """A run's diagnostic reports, newest first."""
    cursor = (
        db.diagnostic_reports.find({"run_id": run_id})
        .sort([("created_at", DESCENDING), ("_id", ASCENDING)])
        .skip(offset)
    )
    if limit is not None:
        cursor = cursor.limit(limit)
    return [typed(Report, d) for d in cursor]


def get_report(db: Database[Doc], report_id: uuid.UUID) -> Report | None:
    doc = db.diagnostic_reports.find_one({"_id": report_id})
    return typed(Report, doc) if doc else None


def latest_reports(db: Database[Doc], limit: int = 10) -> list[Report]:
    cursor = (
        db.diagnostic_reports.find({})
        .sort([("created_at", DESCENDING), ("_id", ASCENDING)])
        .limit(limit)
    )
    return [typed(Report, d) for d in cursor]
