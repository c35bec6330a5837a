"""What ``otel-diag monitor``, the alert rules and ``/metrics`` read, on MongoDB.

Each answer matches its SQL twin (:mod:`otel_diag.store.sql.monitor`,
:mod:`~otel_diag.store.sql.alert_signals`, :mod:`~otel_diag.store.sql.gauges`); counts
are ``count_documents`` on indexed fields, sums a streamed pass over the few fields they
need (see :mod:`otel_diag.store.mongo.reports` for why not ``$group``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.cursor import Cursor
from pymongo.database import Database

from otel_diag.redact import truncate
from otel_diag.report_rows import (
    CostlyRun,
    DiagnosisExcerpt,
    DiagnosisOutcomes,
    ErrorExcerpt,
    Gauges,
    MinuteCount,
    MonitorFrame,
    UnpricedModel,
)
from otel_diag.rows import (
    FINISHED,
    RULES_PROVIDER,
    DiagnosisState,
    FailedRun,
    GroupDiagnosis,
    RunStatus,
)
from otel_diag.store.mongo.codec import from_us, to_us
from otel_diag.store.rollups import monitor_frame, outcomes
from otel_diag.store.rules import EXCERPT_CHARS, NO_MODEL
from otel_diag.timewindow import as_utc

Doc = dict[str, Any]
FAILED = RunStatus.FAILED.value
RUNNING = RunStatus.RUNNING.value
_FINISHED = [s.value for s in FINISHED]


def monitor_snapshot(
    db: Database[Doc],
    window: timedelta,
    now: datetime | None = None,
    *,
    errors: int = 10,
    diagnoses: int = 5,
) -> MonitorFrame:
    """What the live dashboard shows for the last ``window``: rates, cost, latest rows."""
    now = as_utc(now or datetime.now(UTC))
    since = to_us(now - window)
    runs_n = failed_n = running_n = finished_n = 0
    spent = 0.0
    per_minute: dict[str, list[int]] = {}
    fields = {"status": 1, "started_at": 1, "cost_usd": 1}
    for d in db.runs.find({"started_at": {"$gte": since}}, fields):
        runs_n += 1
        status = d.get("status")
        failed_n += status == FAILED
        running_n += status == RUNNING
        finished_n += status in _FINISHED
        spent += float(d.get("cost_usd") or 0.0)
        minute = from_us(d["started_at"]).strftime("%Y-%m-%d %H:%M")
        bucket = per_minute.setdefault(minute, [0, 0])
        bucket[0] += 1
        bucket[1] += status == FAILED
    models: dict[str, list[Any]] = {}
    query = {"started_at": {"$gte": since}, "cost_source": {"$ne": None}}
    fields = {"model": 1, "cost_usd": 1, "input_tokens": 1, "output_tokens": 1}
    fields["cost_source"] = 1
    for d in db.steps.find(query, fields):
        m = models.setdefault(d.get("model") or NO_MODEL, [0, None, 0, 0])
        m[0] += 1
        if d.get("cost_usd") is not None:
            m[1] = (m[1] or 0.0) + d["cost_usd"]
        m[2] += int(d.get("input_tokens") or 0) + int(d.get("output_tokens") or 0)
        m[3] += d.get("cost_source") == "unpriced"
    pending = db.runs.count_documents(
        {"diagnosis_state": DiagnosisState.PENDING.value, "status": FAILED}
    )
    return monitor_frame(
        now=now,
        window=window,
        runs=runs_n,
        failed=failed_n,
        running=running_n,
        finished=finished_n,
        cost_usd=spent,
        pending_diagnoses=pending,
        per_minute=[MinuteCount(m, n, f) for m, (n, f) in per_minute.items()],
        models=[(m, n, c, t, u) for m, (n, c, t, u) in models.items()],
        latest_errors=latest_errors(db, errors),
        latest_diagnoses=latest_diagnoses(db, diagnoses),
    )


def _excerpt(text: str) -> str:
    """A long text cut to the dashboard's excerpt, the cut said by the marker."""
    if len(text) > EXCERPT_CHARS:
        return truncate(text[:EXCERPT_CHARS], EXCERPT_CHARS, total=len(text))
    return text


NEWEST_FIRST = [("created_at", DESCENDING), ("_id", ASCENDING)]
"""Newest first; ties in the same order on every read (SQL orders by time, then id)."""


def _newest(collection: Collection[Doc], fields: Iterable[str], limit: int) -> Cursor[Doc]:
    """The ``limit`` newest documents of ``collection``, with only ``fields``."""
    return collection.find({}, dict.fromkeys(fields, 1)).sort(NEWEST_FIRST).limit(limit)


def latest_errors(db: Database[Doc], limit: int = 10) -> list[ErrorExcerpt]:
    fields = ("created_at", "run_id", "trace_id", "step_name", "source", "error_category")
    cursor = _newest(db.error_logs, (*fields, "error_type", "error_message"), limit)
    return [
        ErrorExcerpt(
            created_at=from_us(d["created_at"]),
            run_id=d["run_id"],
            trace_id=d["trace_id"],
            step_name=d.get("step_name"),
            source=d["source"],
            error_category=d["error_category"],
            error_type=d["error_type"],
            error_message=_excerpt(d["error_message"]),
        )
        for d in cursor
    ]


def latest_diagnoses(db: Database[Doc], limit: int = 5) -> list[DiagnosisExcerpt]:
    fields = ("created_at", "run_id", "llm_provider", "llm_model", "confidence_score")
    cursor = _newest(
        db.diagnostic_reports,
        (*fields, "error_category", "resume_step", "root_cause_analysis"),
        limit,
    )
    return [
        DiagnosisExcerpt(
            created_at=from_us(d["created_at"]),
            run_id=d["run_id"],
            llm_provider=d["llm_provider"],
            llm_model=d.get("llm_model"),
            confidence_score=d["confidence_score"],
            error_category=d.get("error_category"),
            resume_step=d.get("resume_step"),
            root_cause_analysis=_excerpt(d["root_cause_analysis"]),
        )
        for d in cursor
    ]


def finished_runs(db: Database[Doc], since: datetime) -> tuple[int, int]:
    """(finished, failed) runs that started since ``since``."""
    start = {"$gte": to_us(since)}
    finished = db.runs.count_documents({"started_at": start, "status": {"$in": _FINISHED}})
    failed = db.runs.count_documents({"started_at": start, "status": FAILED})
    return finished, failed


def costly_runs(
    db: Database[Doc], since: datetime, threshold: float, limit: int = 10
) -> list[CostlyRun]:
    """Runs seen since ``since`` whose cost exceeds ``threshold`` USD, most expensive first."""
    start = to_us(since)
    query = {
        "$or": [{"started_at": {"$gte": start}}, {"last_span_at": {"$gte": start}}],
        "cost_usd": {"$gt": threshold},
    }
    fields = {"name": 1, "agent_name": 1, "trace_id": 1, "cost_usd": 1}
    cursor = db.runs.find(query, fields).sort("cost_usd", DESCENDING).limit(limit)
    return [
        CostlyRun(d["_id"], d.get("name"), d.get("agent_name"), d["trace_id"], d["cost_usd"])
        for d in cursor
    ]


def cost_since(db: Database[Doc], since: datetime) -> float:
    """USD spent by LLM steps started since ``since``."""
    docs = db.steps.find(
        {"started_at": {"$gte": to_us(since)}, "cost_usd": {"$ne": None}}, {"cost_usd": 1}
    )
    return float(sum(d["cost_usd"] for d in docs))


def unpriced_models(db: Database[Doc], since: datetime) -> list[UnpricedModel]:
    """Models whose calls since ``since`` carried tokens but no known price."""
    models: dict[str, list[int]] = {}
    query = {"started_at": {"$gte": to_us(since)}, "cost_source": "unpriced"}
    for d in db.steps.find(query, {"model": 1, "input_tokens": 1, "output_tokens": 1}):
        m = models.setdefault(d.get("model") or NO_MODEL, [0, 0])
        m[0] += 1
        m[1] += int(d.get("input_tokens") or 0) + int(d.get("output_tokens") or 0)
    ordered = sorted(models.items(), key=lambda kv: -kv[1][1])
    return [UnpricedModel(m, n, t) for m, (n, t) in ordered]


def diagnosis_outcomes(db: Database[Doc], since: datetime) -> DiagnosisOutcomes:
    """Diagnosis health since ``since`` (see the SQL twin's docstring for the fields)."""
    start = to_us(since)
    reasons: dict[str, int] = {}
    query = {
        "created_at": {"$gte": start},
        "llm_provider": RULES_PROVIDER,
        "fallback_reason": {"$ne": None},
    }
    for d in db.diagnostic_reports.find(query, {"fallback_reason": 1}):
        reason = str(d["fallback_reason"])
        reasons[reason] = reasons.get(reason, 0) + 1
    reports = db.diagnostic_reports.count_documents({"created_at": {"$gte": start}})
    failed = db.runs.count_documents(
        {"diagnosis_state": DiagnosisState.ERROR.value, "diagnosed_at": {"$gte": start}}
    )
    return outcomes(reports, failed, reasons)


def server_gauges(db: Database[Doc]) -> Gauges:
    """Counts on indexed fields, read at scrape time."""
    open_runs = db.runs.count_documents({"status": RUNNING})
    states = {}
    for state in DiagnosisState:
        n = db.runs.count_documents({"diagnosis_state": state.value})
        if n:
            states[state.value] = n
    reports: dict[str, int] = {}
    cost = 0.0
    for d in db.diagnostic_reports.find({}, {"llm_provider": 1, "cost_usd": 1}).sort(
        "created_at", ASCENDING
    ):
        provider = d.get("llm_provider") or "unknown"
        reports[provider] = reports.get(provider, 0) + 1
        cost += float(d.get("cost_usd") or 0.0)
    return Gauges(open_runs, states, reports, cost)


def recent_failed_runs(db: Database[Doc], since: datetime, limit: int = 5) -> list[FailedRun]:
    """Failed runs started since ``since``, newest first, with their latest diagnosis."""
    runs = list(
        db.runs.find({"started_at": {"$gte": to_us(since)}, "status": FAILED})
        .sort([("started_at", DESCENDING), ("_id", ASCENDING)])
        .limit(limit)
    )
    if not runs:
        return []
    latest: dict[Any, GroupDiagnosis] = {}
    reports = db.diagnostic_reports.find({"run_id": {"$in": [r["_id"] for r in runs]}}).sort(
        NEWEST_FIRST
    )
    for rep in reports:  # newest first: the first seen per run wins
        if rep["run_id"] not in latest:
            latest[rep["run_id"]] = GroupDiagnosis(
                report_id=rep["_id"],
                run_id=rep["run_id"],
                root_cause_analysis=rep["root_cause_analysis"],
                error_category=rep.get("error_category"),
                resume_step=rep.get("resume_step"),
                confidence_score=rep["confidence_score"],
                llm_provider=rep["llm_provider"],
                llm_model=rep.get("llm_model"),
                created_at=from_us(rep["created_at"]),
            )
    return [
        FailedRun(
            id=r["_id"],
            trace_id=r["trace_id"],
            name=r.get("name"),
            agent_name=r.get("agent_name"),
            started_at=from_us(r["started_at"]),
            ended_at=from_us(r["ended_at"]) if r.get("ended_at") is not None else None,
            error_count=int(r.get("error_count") or 0),
            cost_usd=r.get("cost_usd"),
            latest_diagnosis=latest.get(r["_id"]),
        )
        for r in runs
    ]
