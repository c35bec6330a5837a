"""The collections' indexes, created on a tenant's first use, and the layout version
``schema_revision`` reports.

Only the missing indexes are created: ``createIndexes`` of indexes that exist is a no-op on
MongoDB, but FerretDB v1.24 closes the connection instead of answering.

Plain ascending/descending indexes only: FerretDB v1.24 refuses partial indexes
(``partialFilterExpression``) and its SQLite handler answers only ``_id`` equality from an
index, so these serve MongoDB; FerretDB gets correct answers from scans.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.database import Database

SCHEMA_VERSION = "mongo-1"
"""What ``schema_revision`` reports: the collections' layout and index set of this code."""

INDEXES: dict[str, list[IndexModel]] = {
    "runs": [
        IndexModel([("started_at", DESCENDING)], name="ix_runs_started_at"),
        IndexModel([("status", ASCENDING), ("last_span_at", ASCENDING)], name="ix_runs_status"),
        IndexModel(
            [("diagnosis_state", ASCENDING), ("last_span_at", ASCENDING)],
            name="ix_runs_diagnosis_queue",
        ),
        IndexModel([("trace_id", ASCENDING)], name="ix_runs_trace_id"),
    ],
    "steps": [
        IndexModel([("run_id", ASCENDING), ("started_at", ASCENDING)], name="ix_steps_run"),
        IndexModel([("started_at", ASCENDING)], name="ix_steps_started_at"),
    ],
    "error_logs": [
        IndexModel([("run_id", ASCENDING), ("created_at", ASCENDING)], name="ix_errors_run"),
        IndexModel([("created_at", ASCENDING)], name="ix_errors_created"),
        IndexModel(
            [("fingerprint", ASCENDING), ("created_at", ASCENDING)],
            name="ix_errors_fingerprint_created",
        ),
        IndexModel([("trace_id", ASCENDING)], name="ix_errors_trace"),
    ],
    "error_propagations": [IndexModel([("trace_id", ASCENDING)], name="ix_propagations_trace")],
    "diagnostic_reports": [
        IndexModel([("run_id", ASCENDING), ("created_at", DESCENDING)], name="ix_reports_run"),
        IndexModel([("fingerprint", ASCENDING), ("created_at", DESCENDING)], name="ix_reports_fp"),
        IndexModel([("created_at", DESCENDING)], name="ix_reports_created"),
    ],
}


def ensure_indexes(db: Database[dict[str, Any]]) -> None:
    """Create the collections' missing indexes and stamp the layout."""
    for collection, indexes in INDEXES.items():
        present = set(db[collection].index_information())
        missing = [i for i in indexes if i.document["name"] not in present]
        if missing:
            db[collection].create_indexes(missing)
    db.meta.update_one({"_id": "schema"}, {"$set": {"version": SCHEMA_VERSION}}, upsert=True)


def indexes_present(db: Database[dict[str, Any]]) -> bool:
    """Whether the runs collection still has its indexes (a dropped database has none)."""
    return "ix_runs_diagnosis_queue" in db.runs.index_information()
