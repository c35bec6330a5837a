"""What ``otel-diag monitor``, the alert rules and ``/metrics`` read, on MongoDB.

Each answer matches its SQL twin (:mod:`otel_diag.store.sql.monitor`,
:mod:`~otel_diag.store.sql.alert_signals`, :mod:`~otel_diag.store.sql.gauges`); counts
are ``count_documents`` on indexed fields, sums a streamed pass over the few fields they
need (see :mod:`otel_diag.store.mongo.reports` for why not ``$group``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from otel_diag.redact import truncate
from otel_diag.rows import (
    FINISHED,
    RULES_PROVIDER,
    DiagnosisState,
    FailedRun,
    GroupDiagnosis,
    RunStatus,
    to_json,
)
from otel_diag.store.mongo.codec import from_us, to_us
from otel_diag.store.rules import CHOSEN_FALLBACKS, EXCERPT_CHARS, NO_MODEL, rate
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
) -> dict[str, Any]:
    """What the live dashboard shows for the last ``window``: rates, cost, latest rows."""
    now = as_utc(now or datetime.now(UTC))
    since = to_us(now - window)
    minutes = window.total_seconds() / 60.0
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
    ordered = sorted(models.items(), key=lambda kv: (kv[1][1] is None, -(kv[1][1] or 0.0)))
    return {
        "now": now.isoformat(),
        "window_minutes": round(minutes, 2),
        "runs": runs_n,
        "failed": failed_n,
        "running": running_n,
        "runs_per_minute": round(runs_n / minutes, 3),
        "failure_rate": rate(failed_n, finished_n),
        "cost_usd": round(spent, 9),
        "cost_per_minute": round(spent / minutes, 9),
        "pending_diagnoses": pending,
        "per_minute": [
            {"minute": m, "runs": n, "failed": f} for m, (n, f) in sorted(per_minute.items())
        ],
        "models": [
            {
                "model": m,
                "calls": n,
                "cost_usd": round(float(c or 0.0), 9),
                "cost_per_minute": round(float(c or 0.0) / minutes, 9),
                "tokens": t,
                "unpriced_calls": u,
            }
            for m, (n, c, t, u) in ordered
        ],
        "latest_errors": latest_errors(db, errors),
        "latest_diagnoses": latest_diagnoses(db, diagnoses),
    }


def _excerpt(row: dict[str, Any], key: str) -> dict[str, Any]:
    """The row's long text cut to the dashboard's excerpt, the cut said by the marker."""
    text = row.get(key)
    if isinstance(text, str) and len(text) > EXCERPT_CHARS:
        row[key] = truncate(text[:EXCERPT_CHARS], EXCERPT_CHARS, total=len(text))
    return row


def latest_errors(db: Database[Doc], limit: int = 10) -> list[dict[str, Any]]:
    names: tuple[str, ...] = ("created_at", "run_id", "trace_id", "step_name", "source")
    names = (*names, "error_category", "error_type", "error_message")
    cursor = (
        db.error_logs.find({}, dict.fromkeys(names, 1))
        .sort([("created_at", DESCENDING), ("_id", ASCENDING)])
        .limit(limit)
    )
    return [_excerpt(_row(d, names), "error_message") for d in cursor]


def latest_diagnoses(db: Database[Doc], limit: int = 5) -> list[dict[str, Any]]:
    names: tuple[str, ...] = ("created_at", "run_id", "llm_provider", "llm_model")
    names = (*names, "confidence_score", "error_category", "resume_step", "root_cause_analysis")
    cursor = (
        db.diagnostic_reports.find({}, dict.fromkeys(names, 1))
        .sort([("created_at", DESCENDING), ("_id", ASCENDING)])
        .limit(limit)
    )
    return [_excerpt(_row(d, names), "root_cause_analysis") for d in cursor]


def _row(doc: Doc, names: tuple[str, ...]) -> dict[str, Any]:
    values = {n: doc.get(n) for n in names}
    created = doc.get("created_at")
    values["created_at"] = from_us(created) if created is not None else None
    return to_json(values)


def finished_runs(db: Database[Doc], since: datetime) -> tuple[int, int]:
    """(finished, failed) runs that started since ``since``."""
    start = {"$gte": to_us(since)}
    finished = db.runs.count_documents({"started_at": start, "status": {"$in": _FINISHED}})
    failed = db.runs.count_documents({"started_at": start, "status": FAILED})
    return finished, failed


def costly_runs(
    db: Database[Doc], since: datetime, threshold: float, limit: int = 10
) -> list[dict[str, Any]]:
    """Runs seen since ``since`` whose cost exceeds ``threshold`` USD, most expensive first."""
    start = to_us(since)
    query = {
        "$or": [{"started_at": {"$gte": start}}, {"last_span_at": {"$gte": start}}],
        "cost_usd": {"$gt": threshold},
    }
    fields = {"name": 1, "agent_name": 1, "trace_id": 1, "cost_usd": 1}
    cursor = db.runs.find(query, fields).sort("cost_usd", DESCENDING).limit(limit)
    return [
        to_json(
            {
                "id": d["_id"],
                "name": d.get("name"),
                "agent_name": d.get("agent_name"),
                "trace_id": d.get("trace_id"),
                "cost_usd": d.get("cost_usd"),
            }
        )
        for d in cursor
    ]


def cost_since(db: Database[Doc], since: datetime) -> float:
    """USD spent by LLM steps started since ``since``."""
    docs = db.steps.find(
        {"started_at": {"$gte": to_us(since)}, "cost_usd": {"$ne": None}}, {"cost_usd": 1}
    )
    return float(sum(d["cost_usd"] for d in docs))


def unpriced_models(db: Database[Doc], since: datetime) -> list[dict[str, Any]]:
    """Models whose calls since ``since`` carried tokens but no known price."""
    models: dict[str, list[int]] = {}
    query = {"started_at": {"$gte": to_us(since)}, "cost_source": "unpriced"}
    for d in db.steps.find(query, {"model": 1, "input_tokens": 1, "output_tokens": 1}):
        m = models.setdefault(d.get("model") or NO_MODEL, [0, 0])
        m[0] += 1
        m[1] += int(d.get("input_tokens") or 0) + int(d.get("output_tokens") or 0)
    ordered = sorted(models.items(), key=lambda kv: -kv[1][1])
    return [{"model": m, "calls": n, "tokens": t} for m, (n, t) in ordered]


def diagnosis_outcomes(db: Database[Doc], since: datetime) -> dict[str, Any]:
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
    return {
        "reports": reports,
        "llm_fallbacks": sum(n for r, n in reasons.items() if r not in CHOSEN_FALLBACKS),
        "failed_runs": failed,
        "fallback_reasons": reasons,
    }


def server_gauges(db: Database[Doc]) -> dict[str, Any]:
    """``runs_open``, ``diagnosis_states`` {state: runs}, ``reports`` {provider: n},
    ``diagnosis_cost_usd``: counts on indexed fields, read at scrape time."""
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
    return {
        "runs_open": open_runs,
        "diagnosis_states": states,
        "reports": reports,
        "diagnosis_cost_usd": cost,
    }


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
        [("created_at", DESCENDING), ("_id", ASCENDING)]
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
