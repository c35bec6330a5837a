"""Error groups on MongoDB: failures across runs grouped by fingerprint.

Same answers as :mod:`otel_diag.store.sql.error_groups` (occurrences are ``error_logs``
documents, never propagation copies): the page of groups comes from one pass over the
window's failures (three fields each), the page's details from indexed lookups by
fingerprint and run.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database

from otel_diag.rows import ErrorGroup, GroupDiagnosis
from otel_diag.store.mongo.codec import from_us, to_us
from otel_diag.store.mongo.reports import window
from otel_diag.store.mongo.writer import by_id
from otel_diag.store.port import GroupOrder
from otel_diag.store.rules import MAX_GROUP_NAMES

Doc = dict[str, Any]


def list_error_groups(
    db: Database[Doc],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    service: str | None = None,
    agent: str | None = None,
    fingerprints: Sequence[str] | None = None,
    order: GroupOrder = "occurrences",
    limit: int = 50,
    offset: int = 0,
) -> list[ErrorGroup]:
    """Groups with occurrences in ``[since, until)``, busiest (or as ``order`` says) first."""
    where: Doc = window("created_at", since, until)
    if fingerprints is not None:
        if not fingerprints:
            return []
        where["fingerprint"] = {"$in": list(fingerprints)}
    if service is not None or agent is not None:
        runs: Doc = {}
        if service is not None:
            runs["service_name"] = service
        if agent is not None:
            runs["agent_name"] = agent
        where["run_id"] = {"$in": [d["_id"] for d in db.runs.find(runs, {"_id": 1})]}
    stats: dict[str, list[Any]] = {}
    for d in db.error_logs.find(where, {"fingerprint": 1, "run_id": 1, "created_at": 1}):
        s = stats.get(d["fingerprint"])
        if s is None:
            stats[d["fingerprint"]] = [1, {d["run_id"]}, d["created_at"], d["created_at"]]
        else:
            s[0] += 1
            s[1].add(d["run_id"])
            s[2] = min(s[2], d["created_at"])
            s[3] = max(s[3], d["created_at"])
    sort = {
        "occurrences": lambda kv: (-kv[1][0], kv[0]),
        "runs": lambda kv: (-len(kv[1][1]), -kv[1][0], kv[0]),
        "last_seen": lambda kv: (-kv[1][3], kv[0]),
        "first_seen": lambda kv: (-kv[1][2], kv[0]),
    }[order]
    page = sorted(stats.items(), key=sort)[offset : offset + limit]
    if not page:
        return []
    keys = [fp for fp, _ in page]
    ever = _ever(db, keys)
    names = _names(db, {fp: s[1] for fp, s in page})
    diagnoses = _diagnoses(db, {fp: ever[fp].runs for fp in keys})
    latest = by_id(db.error_logs, [ever[fp].latest_id for fp in keys])
    groups = []
    for fp, (count, run_ids, _, _) in page:
        row = latest[ever[fp].latest_id]
        services, agents = names.get(fp, ((), ()))
        groups.append(
            ErrorGroup(
                fingerprint=fp,
                error_type=row["error_type"],
                error_category=row["error_category"],
                source=row["source"],
                step_name=row.get("step_name"),
                message=row["error_message"],
                occurrences=count,
                runs_affected=len(run_ids),
                first_seen=from_us(ever[fp].first),
                last_seen=from_us(ever[fp].last),
                latest_run_id=row["run_id"],
                latest_trace_id=row["trace_id"],
                services=services,
                agents=agents,
                latest_diagnosis=diagnoses.get(fp),
            )
        )
    return groups


@dataclass(slots=True)
class _Ever:
    """A group over all time: first and last occurrence, the latest one, the runs hit."""

    first: int
    last: int
    latest: tuple[int, bytes]
    latest_id: uuid.UUID
    runs: set[uuid.UUID] = field(default_factory=set)


def _ever(db: Database[Doc], keys: list[str]) -> dict[str, _Ever]:
    """One pass over the page's groups' failures (not only the window's)."""
    out: dict[str, _Ever] = {}
    fields = {"fingerprint": 1, "created_at": 1, "run_id": 1}
    for d in db.error_logs.find({"fingerprint": {"$in": keys}}, fields):
        at, rank = d["created_at"], (d["created_at"], _inverse(d["_id"]))
        e = out.get(d["fingerprint"])
        if e is None:
            e = out[d["fingerprint"]] = _Ever(at, at, rank, d["_id"])
        e.first, e.last = min(e.first, at), max(e.last, at)
        if rank > e.latest:  # newest first, ties by the smallest id (as SQL orders them)
            e.latest, e.latest_id = rank, d["_id"]
        e.runs.add(d["run_id"])
    return out


def _inverse(value: uuid.UUID) -> bytes:
    return bytes(255 - b for b in value.bytes)


def _names(
    db: Database[Doc], runs_by_key: dict[str, set[uuid.UUID]]
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    wanted = sorted({r for runs in runs_by_key.values() for r in runs}, key=lambda u: u.bytes)
    info: dict[uuid.UUID, tuple[str | None, str | None]] = {
        r: (d.get("service_name"), d.get("agent_name")) for r, d in by_id(db.runs, wanted).items()
    }
    out = {}
    for fp, runs in runs_by_key.items():
        services = {s for r in runs if (s := info.get(r, (None, None))[0])}
        agents = {a for r in runs if (a := info.get(r, (None, None))[1])}
        out[fp] = (
            tuple(sorted(services)[:MAX_GROUP_NAMES]),
            tuple(sorted(agents)[:MAX_GROUP_NAMES]),
        )
    return out


def _diagnoses(
    db: Database[Doc], runs_by_key: dict[str, set[uuid.UUID]]
) -> dict[str, GroupDiagnosis]:
    """The latest report of any run that failed with each group's error."""
    wanted = sorted({r for runs in runs_by_key.values() for r in runs}, key=lambda u: u.bytes)
    newest: dict[uuid.UUID, Doc] = {}
    for r in db.diagnostic_reports.find({"run_id": {"$in": wanted}}):
        cur = newest.get(r["run_id"])
        if cur is None or (r["created_at"], _inverse(r["_id"])) > (
            cur["created_at"],
            _inverse(cur["_id"]),
        ):
            newest[r["run_id"]] = r
    out = {}
    for fp, runs in runs_by_key.items():
        found = [newest[r] for r in runs if r in newest]
        if not found:
            continue
        r = max(found, key=lambda d: (d["created_at"], _inverse(d["_id"])))
        out[fp] = GroupDiagnosis(
            report_id=r["_id"],
            run_id=r["run_id"],
            root_cause_analysis=r["root_cause_analysis"],
            error_category=r.get("error_category"),
            resume_step=r.get("resume_step"),
            confidence_score=r["confidence_score"],
            llm_provider=r["llm_provider"],
            llm_model=r.get("llm_model"),
            created_at=from_us(r["created_at"]),
        )
    return out


def new_groups(db: Database[Doc], since: datetime, limit: int = 20) -> list[ErrorGroup]:
    """Groups whose first occurrence ever is at or after ``since``."""
    start = to_us(since)
    firsts: dict[str, int] = {}
    for d in db.error_logs.find(
        {"created_at": {"$gte": start}}, {"fingerprint": 1, "created_at": 1}
    ):
        fp = d["fingerprint"]
        firsts[fp] = min(firsts.get(fp, d["created_at"]), d["created_at"])
    fresh = [
        (first, fp)
        for fp, first in firsts.items()
        if db.error_logs.count_documents({"fingerprint": fp, "created_at": {"$lt": start}}, limit=1)
        == 0
    ]
    keys = [fp for _, fp in sorted(fresh, reverse=True)[:limit]]
    return list_error_groups(db, since=since, fingerprints=keys, limit=limit)


def regressed_groups(
    db: Database[Doc], since: datetime, quiet: timedelta, limit: int = 20
) -> list[ErrorGroup]:
    """Groups seen again since ``since`` after at least ``quiet`` without an occurrence."""
    start = to_us(since)
    back: dict[str, int] = {}
    for d in db.error_logs.find(
        {"created_at": {"$gte": start}}, {"fingerprint": 1, "created_at": 1}
    ):
        fp = d["fingerprint"]
        back[fp] = min(back.get(fp, d["created_at"]), d["created_at"])
    gap = quiet // timedelta(microseconds=1)
    keys = []
    for fp in sorted(back):
        last = db.error_logs.find_one(
            {"fingerprint": fp, "created_at": {"$lt": start}},
            {"created_at": 1},
            sort=[("created_at", DESCENDING)],
        )
        if last is not None and back[fp] - last["created_at"] >= gap:
            keys.append(fp)
    return list_error_groups(db, since=since, fingerprints=keys[:limit], limit=limit)
