"""The web console's reads on MongoDB: the filtered, sorted run list and run activity per
time bucket (see :mod:`otel_diag.store.sql.console`, whose answers these match).

Both filter in the database and sort or bucket here: the sort keys include a computed
duration and "no value last in either direction", which plain ``sort`` cannot express.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database

from otel_diag.rows import FINISHED, Run, RunStatus
from otel_diag.store.mongo.codec import typed
from otel_diag.store.mongo.reports import window
from otel_diag.store.port import ActivityBucket, RunQuery

Doc = dict[str, Any]
_HEX = re.compile(r"[0-9a-fA-F]+")
_FINISHED = {s.value for s in FINISHED}


def _key(doc: Doc, sort: str) -> Any:
    if sort == "duration":
        ended = doc.get("ended_at")
        return None if ended is None else ended - doc["started_at"]
    if sort == "cost":
        return doc.get("cost_usd")
    if sort == "errors":
        return doc.get("error_count")
    if sort == "name":
        return doc.get("name")
    return doc["started_at"]


def find_runs(db: Database[Doc], q: RunQuery) -> list[Run]:
    """See :meth:`otel_diag.store.port.TenantStore.find_runs`."""
    query: Doc = window("started_at", q.since, q.until)
    if q.status:
        query["status"] = q.status
    if q.agent:
        query["agent_name"] = q.agent
    if q.service:
        query["service_name"] = q.service
    text = (q.text or "").strip()
    if text:
        pattern = {"$regex": re.escape(text), "$options": "i"}
        matches: list[Doc] = [{c: pattern} for c in ("name", "agent_name", "service_name")]
        if _HEX.fullmatch(text):  # trace ids are lowercase hex: other text cannot match
            matches.append({"trace_id": {"$regex": re.escape(text.lower())}})
        query["$or"] = matches
    docs = list(db.runs.find(query))
    # Ties: newest first, then by id; rows without a value last in either direction.
    docs.sort(key=lambda d: d["_id"].bytes)
    if q.sort != "started_at":
        docs.sort(key=lambda d: d["started_at"], reverse=True)
    present = [d for d in docs if _key(d, q.sort) is not None]
    missing = [d for d in docs if _key(d, q.sort) is None]
    present.sort(key=lambda d: _key(d, q.sort), reverse=q.descending)
    page = (present + missing)[q.offset : q.offset + q.limit]
    return [typed(Run, d) for d in page]


def activity(
    db: Database[Doc], since: datetime, until: datetime, bucket: timedelta
) -> list[ActivityBucket]:
    """See :meth:`otel_diag.store.port.TenantStore.activity`."""
    seconds = max(1, int(bucket.total_seconds()))
    buckets: dict[int, list[Any]] = {}
    fields = {"started_at": 1, "status": 1, "cost_usd": 1}
    for d in db.runs.find(window("started_at", since, until), fields):
        start = d["started_at"] // 1_000_000 // seconds * seconds
        b = buckets.setdefault(start, [0, 0, 0, 0.0])
        b[0] += 1
        b[1] += d.get("status") in _FINISHED
        b[2] += d.get("status") == RunStatus.FAILED.value
        b[3] += float(d.get("cost_usd") or 0.0)
    return [
        ActivityBucket(
            start=datetime.fromtimestamp(start, UTC), runs=n, finished=f, failed=x, cost_usd=c
        )
        for start, (n, f, x, c) in sorted(buckets.items())
    ]
