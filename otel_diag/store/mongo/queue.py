"""The diagnosis queue on MongoDB: the queue fields of the run documents, claimed with
``find_one_and_update``.

The rules are the SQL queue's (:mod:`otel_diag.store.sql.diagnosis_queue`): a failed run
whose diagnosis is pending is *ready* after ``decision_wait`` seconds without a span (a
run whose root has not arrived waits ``orphan_wait``); a claim is a lease of ``lease``
seconds; a report is stored only when the claim is still the caller's. Each claim is one
atomic ``find_one_and_update`` whose filter repeats the readiness test, so two workers
never take one run (where the SQL queue uses ``FOR UPDATE SKIP LOCKED``).

A claim, a completion, a release and a parking each test the run's state and change it
while holding the run's lock document (:mod:`otel_diag.store.mongo.locks`, the one writers
take): ``find_one_and_update`` alone is not atomic on FerretDB v1.24 (two workers racing for
the same runs both got them), and the lock makes the test-and-set one step on any server.
Without transactions, :func:`complete` first ends the claim, then inserts the report; if
that insert fails the run goes back to pending.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from otel_diag.rows import RULES_PROVIDER, DiagnosisState, Report, RunStatus
from otel_diag.store.mongo.codec import from_us, to_doc, to_us, typed
from otel_diag.store.mongo.locks import held, taken
from otel_diag.store.port import Claim
from otel_diag.store.rules import orphan_wait_for

PENDING = DiagnosisState.PENDING.value
CLAIMED = DiagnosisState.CLAIMED.value
DONE = DiagnosisState.DONE.value
ERROR = DiagnosisState.ERROR.value
FAILED = RunStatus.FAILED.value
Doc = dict[str, Any]


def _claimable(now: datetime, lease: float) -> Doc:
    lease_cutoff = to_us(now - timedelta(seconds=lease))
    return {
        "$or": [
            {"diagnosis_state": PENDING},
            {
                "diagnosis_state": CLAIMED,
                "$or": [
                    {"diagnosis_claimed_at": None},
                    {"diagnosis_claimed_at": {"$lt": lease_cutoff}},
                ],
            },
        ]
    }


def _ready(now: datetime, decision_wait: float, orphan_wait: float | None) -> Doc:
    wait = orphan_wait_for(decision_wait) if orphan_wait is None else orphan_wait
    return {
        "status": FAILED,
        "last_span_at": {"$lte": to_us(now - timedelta(seconds=decision_wait))},
        "$or": [
            {"root_seen": True},
            {"last_span_at": {"$lte": to_us(now - timedelta(seconds=wait))}},
        ],
    }


def _claim(worker_id: str, now: datetime) -> Doc:
    return {
        "$set": {
            "diagnosis_state": CLAIMED,
            "diagnosis_claimed_by": worker_id,
            "diagnosis_claimed_at": to_us(now),
        }
    }


def claim_ready(
    db: Database[Doc],
    *,
    worker_id: str,
    now: datetime,
    decision_wait: float,
    lease: float,
    limit: int,
    tenant: str | None,
    orphan_wait: float | None = None,
) -> list[Claim]:
    """Claim up to ``limit`` ready runs (oldest silence first) for ``worker_id``."""
    test = {"$and": [_ready(now, decision_wait, orphan_wait), _claimable(now, lease)]}
    candidates = [
        d["_id"]
        for d in db.runs.find(test, {"_id": 1})
        .sort([("last_span_at", ASCENDING), ("_id", ASCENDING)])
        .limit(limit)
    ]
    claims = []
    for run_id in candidates:  # another worker may hold or take some first: skip those
        with taken(db, run_key(run_id)) as mine:
            if mine and _test_and_set(db, {"_id": run_id, **test}, _claim(worker_id, now)):
                claims.append(Claim(run_id, worker_id, now, tenant))
    return claims


def run_key(run_id: uuid.UUID) -> str:
    """The lock key of a run (the writer takes the same, see ``tenant_store``)."""
    return f"run:{run_id}"


def _test_and_set(db: Database[Doc], test: Doc, update: Doc) -> bool:
    """Apply ``update`` to the run if it passes ``test`` (the caller holds the run's lock)."""
    if db.runs.find_one(test, {"_id": 1}) is None:
        return False
    return db.runs.update_one(test, update).matched_count == 1


def _locked(db: Database[Doc], run_id: uuid.UUID, timeout: float, test: Doc, update: Doc) -> bool:
    with held(db, [run_key(run_id)], timeout=timeout):
        return _test_and_set(db, test, update)


def claim_run(
    db: Database[Doc],
    run_id: uuid.UUID,
    *,
    worker_id: str,
    now: datetime,
    lease: float,
    tenant: str | None,
    timeout: float,
) -> Claim | None:
    """Claim one run whatever its state (an explicit request); None if a live claim holds it."""
    cutoff = to_us(now - timedelta(seconds=lease))
    free = {
        "$or": [
            {"diagnosis_state": {"$ne": CLAIMED}},
            {"diagnosis_claimed_at": None},
            {"diagnosis_claimed_at": {"$lt": cutoff}},
        ]
    }
    found = _locked(db, run_id, timeout, {"_id": run_id, **free}, _claim(worker_id, now))
    return Claim(run_id, worker_id, now, tenant) if found else None


def _mine(claim: Claim) -> Doc:
    return {
        "_id": claim.run_id,
        "diagnosis_claimed_by": claim.worker_id,
        "diagnosis_claimed_at": to_us(claim.claimed_at),
    }


_UNCLAIM = {"diagnosis_claimed_by": None, "diagnosis_claimed_at": None}


def complete(
    db: Database[Doc],
    claim: Claim,
    report: Report,
    *,
    fingerprint: str | None,
    now: datetime,
    timeout: float,
) -> bool:
    """End the claim and store ``report``, if the claim is still ours (else store nothing).

    A run re-opened meanwhile (a late span set it back to ``pending``) stays pending.
    """
    done = {"diagnosis_fingerprint": fingerprint, "diagnosed_at": to_us(now), **_UNCLAIM}
    with held(db, [run_key(claim.run_id)], timeout=timeout):
        ended = _test_and_set(
            db,
            {**_mine(claim), "diagnosis_state": CLAIMED},
            {"$set": {**done, "diagnosis_state": DONE}},
        ) or _test_and_set(db, {**_mine(claim), "diagnosis_state": PENDING}, {"$set": done})
    if not ended:
        return False
    try:
        db.diagnostic_reports.insert_one(to_doc(report))
    except Exception:
        db.runs.update_one(
            {"_id": claim.run_id, "diagnosed_at": to_us(now)},
            {"$set": {"diagnosis_state": PENDING}},
        )
        raise
    return True


def release(db: Database[Doc], claims: Sequence[Claim], *, timeout: float) -> int:
    """Give claims back (a stopping worker): the runs are claimable again at once."""
    released = 0
    for claim in claims:
        released += _locked(
            db,
            claim.run_id,
            timeout,
            {**_mine(claim), "diagnosis_state": CLAIMED},
            {"$set": {"diagnosis_state": PENDING, **_UNCLAIM}},
        )
    return released


def mark_failed(db: Database[Doc], claim: Claim, now: datetime, *, timeout: float) -> bool:
    """A run whose diagnosis keeps crashing: park it (state ``error``) instead of looping."""
    return _locked(
        db,
        claim.run_id,
        timeout,
        _mine(claim),
        {"$set": {"diagnosis_state": ERROR, "diagnosed_at": to_us(now), **_UNCLAIM}},
    )


def insert_report(db: Database[Doc], report: Report) -> None:
    db.diagnostic_reports.insert_one(to_doc(report))


def find_reusable(db: Database[Doc], fingerprint: str, since: datetime) -> Report | None:
    """The newest LLM report for the same error fingerprints created at or after ``since``."""
    doc = db.diagnostic_reports.find_one(
        {
            "fingerprint": fingerprint,
            "created_at": {"$gte": to_us(since)},
            "llm_provider": {"$ne": RULES_PROVIDER},
        },
        sort=[("created_at", DESCENDING)],
    )
    return typed(Report, doc) if doc else None


def spend_since(db: Database[Doc], since: datetime) -> float:
    """USD spent on diagnosis LLM requests since ``since``."""
    docs = db.diagnostic_reports.find({"created_at": {"$gte": to_us(since)}}, {"cost_usd": 1})
    return float(sum(d.get("cost_usd") or 0.0 for d in docs))


def queue_depth(db: Database[Doc], now: datetime, decision_wait: float) -> dict[str, int]:
    """Failed runs waiting for a diagnosis: ``ready`` now, ``waiting`` for silence, ``claimed``."""
    cutoff = to_us(now - timedelta(seconds=decision_wait))
    orphan_cutoff = to_us(now - timedelta(seconds=orphan_wait_for(decision_wait)))
    out = {"ready": 0, "waiting": 0, "claimed": 0}
    docs = db.runs.find(
        {"diagnosis_state": {"$in": [PENDING, CLAIMED]}, "status": FAILED},
        {"diagnosis_state": 1, "last_span_at": 1, "root_seen": 1},
    )
    for d in docs:
        if d["diagnosis_state"] == CLAIMED:
            out["claimed"] += 1
            continue
        last = d["last_span_at"]
        quiet = last <= cutoff and (bool(d.get("root_seen")) or last <= orphan_cutoff)
        out["ready" if quiet else "waiting"] += 1
    return out


def next_ready_at(db: Database[Doc], decision_wait: float) -> datetime | None:
    """When the earliest pending failed run becomes ready (None: nothing pending)."""
    soonest: datetime | None = None
    for rooted, wait in ((True, decision_wait), (False, orphan_wait_for(decision_wait))):
        root_test: Any = True if rooted else {"$ne": True}
        doc = db.runs.find_one(
            {"diagnosis_state": PENDING, "status": FAILED, "root_seen": root_test},
            {"last_span_at": 1},
            sort=[("last_span_at", ASCENDING)],
        )
        if doc is None:
            continue
        ready = from_us(doc["last_span_at"]) + timedelta(seconds=wait)
        soonest = ready if soonest is None else min(soonest, ready)
    return soonest
