"""Streamed reads for ``otel-diag export`` on MongoDB: batches from a cursor, values
rendered as the SQL export renders them (UUIDs dashed, times ISO 8601 UTC with
microseconds, ``context`` as JSON text), so the files of both backends are the same."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database

from otel_diag.store.mongo.codec import TIME_FIELDS, from_us, to_us
from otel_diag.store.port import ExportFilter
from otel_diag.store.rules import EXPORT_COLUMNS, export_columns

Doc = dict[str, Any]
COLLECTIONS = {"errors": "error_logs", "runs": "runs", "steps": "steps"}


def _query(db: Database[Doc], table: str, flt: ExportFilter) -> Doc:
    time_name = EXPORT_COLUMNS[table][1]
    query: Doc = {}
    bound: Doc = {}
    if flt.since is not None:
        bound["$gte"] = to_us(flt.since)
    if flt.until is not None:
        bound["$lt"] = to_us(flt.until)
    if bound:
        query[time_name] = bound
    run_key = "_id" if table == "runs" else "run_id"
    run_filters: Doc = {}
    if flt.status:
        run_filters["status"] = flt.status
    if flt.agent:
        run_filters["agent_name"] = flt.agent
    if run_filters and table == "runs":
        query.update(run_filters)
    elif run_filters:
        ids = [d["_id"] for d in db.runs.find(run_filters, {"_id": 1})]
        query["run_id"] = {"$in": ids}
    if flt.run_id is not None:
        if run_key in query:
            query = {"$and": [query, {run_key: flt.run_id}]}
        else:
            query[run_key] = flt.run_id
    return query


def count_rows(db: Database[Doc], table: str, flt: ExportFilter) -> int:
    query = _query(db, table, flt)
    collection = db[COLLECTIONS[table]]
    if flt.limit is not None:
        return collection.count_documents(query, limit=flt.limit) if flt.limit > 0 else 0
    return collection.count_documents(query)


def _render(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in TIME_FIELDS:
        return from_us(value).isoformat(timespec="microseconds")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def iter_batches(
    db: Database[Doc],
    table: str,
    flt: ExportFilter,
    batch_size: int = 5000,
    *,
    trace_url_template: str | None = None,
) -> Iterator[Sequence[Sequence[Any]]]:
    """Rows of ``table`` matching ``flt`` in time order, ``batch_size`` at a time."""
    names = export_columns(table)
    time_name = EXPORT_COLUMNS[table][1]
    keys = ["_id" if n == "id" else n for n in names]
    if flt.limit is not None and flt.limit <= 0:
        return
    cursor = (
        db[COLLECTIONS[table]]
        .find(_query(db, table, flt), dict.fromkeys(keys, 1))
        .sort([(time_name, ASCENDING), ("_id", ASCENDING)])
        .batch_size(batch_size)
    )
    if flt.limit is not None:
        cursor = cursor.limit(flt.limit)
    batch: list[list[Any]] = []
    try:
        for doc in cursor:
            row = [_render(n, doc.get(k)) for n, k in zip(names, keys, strict=True)]
            if trace_url_template:
                row.append(trace_url_template.replace("{trace_id}", doc.get("trace_id") or ""))
            batch.append(row)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        cursor.close()
