"""The diagnosis queue, kept in the ``runs`` table so it survives restarts and is shared.

A run is *ready* when it failed, its diagnosis is pending (the writer sets
``diagnosis_state='pending'`` whenever its error count changes) and no span has arrived for
``decision_wait`` seconds. A run whose root span has not arrived yet (children end and are
exported first) waits ``orphan_wait`` instead: it is usually a part of a trace about to be
merged into its named run, and diagnosing it would waste an LLM request; if the root never
comes (the process died), it is diagnosed anyway once that longer silence has passed. Workers claim ready runs in batches: on PostgreSQL with
``SELECT ... FOR UPDATE SKIP LOCKED`` and the claim written in the same transaction, so two
workers never take one run; on SQLite ``BEGIN IMMEDIATE`` serializes claimers. A claim is a
lease: if its worker dies, the run is claimable again once the lease expires.

A report is stored only together with a successful :func:`complete`, whose ``WHERE`` checks
that the claim is still the caller's (same worker id and claim time). A worker whose lease
was taken over, or whose claim was released, stores nothing: one ready run, one report.
Only this module (with the rest of the store) speaks SQL for the diagnosis.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, insert, or_, select, true, update

from otel_diag.rows import RULES_PROVIDER, DiagnosisState, Report
from otel_diag.store.port import Claim
from otel_diag.store.rules import orphan_wait_for as orphan_wait_for
from otel_diag.store.sql import queries
from otel_diag.store.sql.models import diagnostic_reports, runs
from otel_diag.store.sql.transactions import write_transaction

PENDING = DiagnosisState.PENDING.value
CLAIMED = DiagnosisState.CLAIMED.value
DONE = DiagnosisState.DONE.value
ERROR = DiagnosisState.ERROR.value


def report_values(report: Report) -> dict[str, Any]:
    """A report as column values (its actions as the JSON list the column holds)."""
    values = {f.name: getattr(report, f.name) for f in fields(report)}
    values["recommended_actions"] = [dict(a) for a in report.recommended_actions]
    return values


def _claimable(now: datetime, lease: float) -> Any:
    lease_cutoff = now - timedelta(seconds=lease)
    return or_(
        runs.c.diagnosis_state == PENDING,
        and_(
            runs.c.diagnosis_state == CLAIMED,
            or_(
                runs.c.diagnosis_claimed_at.is_(None),
                runs.c.diagnosis_claimed_at < lease_cutoff,
            ),
        ),
    )


def claim_ready(
    engine: Engine,
    *,
    worker_id: str,
    now: datetime,
    decision_wait: float,
    lease: float,
    limit: int,
    tenant: str | None = None,
    orphan_wait: float | None = None,
) -> list[Claim]:
    """Claim up to ``limit`` ready runs (oldest silence first) for ``worker_id``."""
    cutoff = now - timedelta(seconds=decision_wait)
    wait = orphan_wait_for(decision_wait) if orphan_wait is None else orphan_wait
    orphan_cutoff = now - timedelta(seconds=wait)
    with write_transaction(engine) as conn:
        query = (
            select(runs.c.id)
            .where(
                runs.c.diagnosis_state.in_((PENDING, CLAIMED)),
                runs.c.status == "failed",
                runs.c.last_span_at <= cutoff,
                or_(runs.c.root_seen == true(), runs.c.last_span_at <= orphan_cutoff),
                _claimable(now, lease),
            )
            .order_by(runs.c.last_span_at, runs.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = [row[0] for row in conn.execute(query)]
        if ids:
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(ids))
                .values(
                    diagnosis_state=CLAIMED,
                    diagnosis_claimed_by=worker_id,
                    diagnosis_claimed_at=now,
                )
            )
    return [Claim(run_id, worker_id, now, tenant) for run_id in ids]


def claim_run(
    engine: Engine,
    run_id: uuid.UUID,
    *,
    worker_id: str,
    now: datetime,
    lease: float,
    tenant: str | None = None,
) -> Claim | None:
    """Claim one run whatever its state (an explicit request); None if a live claim holds it."""
    lease_cutoff = now - timedelta(seconds=lease)
    with write_transaction(engine) as conn:
        result = conn.execute(
            update(runs)
            .where(
                runs.c.id == run_id,
                or_(
                    runs.c.diagnosis_state.is_(None),
                    runs.c.diagnosis_state != CLAIMED,
                    runs.c.diagnosis_claimed_at.is_(None),
                    runs.c.diagnosis_claimed_at < lease_cutoff,
                ),
            )
            .values(
                diagnosis_state=CLAIMED, diagnosis_claimed_by=worker_id, diagnosis_claimed_at=now
            )
        )
    return Claim(run_id, worker_id, now, tenant) if result.rowcount == 1 else None


def _mine(claim: Claim) -> Any:
    return and_(
        runs.c.id == claim.run_id,
        runs.c.diagnosis_claimed_by == claim.worker_id,
        runs.c.diagnosis_claimed_at == claim.claimed_at,
    )


def complete(
    engine: Engine,
    claim: Claim,
    report: Report,
    *,
    fingerprint: str | None,
    now: datetime,
) -> bool:
    """Store ``report`` and mark the run diagnosed, if the claim is still ours.

    A run re-opened while it was being diagnosed (a late span changed its errors: the
    writer set it back to ``pending``) keeps ``pending``, so it is diagnosed again.
    Returns False, storing nothing, when the claim was lost.
    """
    with write_transaction(engine) as conn:
        result = conn.execute(
            update(runs)
            .where(_mine(claim), runs.c.diagnosis_state.in_((CLAIMED, PENDING)))
            .values(
                diagnosis_state=case(
                    (runs.c.diagnosis_state == CLAIMED, DONE), else_=runs.c.diagnosis_state
                ),
                diagnosis_fingerprint=fingerprint,
                diagnosed_at=now,
                diagnosis_claimed_by=None,
                diagnosis_claimed_at=None,
            )
        )
        if result.rowcount != 1:
            return False
        conn.execute(insert(diagnostic_reports).values(**report_values(report)))
    return True


def release(engine: Engine, claims: Sequence[Claim]) -> int:
    """Give claims back (a stopping worker): the runs are claimable again at once."""
    released = 0
    with write_transaction(engine) as conn:
        for claim in claims:
            result = conn.execute(
                update(runs)
                .where(_mine(claim), runs.c.diagnosis_state == CLAIMED)
                .values(
                    diagnosis_state=PENDING,
                    diagnosis_claimed_by=None,
                    diagnosis_claimed_at=None,
                )
            )
            released += result.rowcount
    return released


def mark_failed(engine: Engine, claim: Claim, now: datetime) -> bool:
    """A run whose diagnosis keeps crashing: park it (state ``error``) instead of looping."""
    with write_transaction(engine) as conn:
        result = conn.execute(
            update(runs)
            .where(_mine(claim))
            .values(
                diagnosis_state=ERROR,
                diagnosed_at=now,
                diagnosis_claimed_by=None,
                diagnosis_claimed_at=None,
            )
        )
    return result.rowcount == 1


def insert_report(engine: Engine, report: Report) -> None:
    """Store a report without a claim (a forced, explicit diagnosis of a run being claimed)."""
    with write_transaction(engine) as conn:
        conn.execute(insert(diagnostic_reports).values(**report_values(report)))


def find_reusable(conn: Connection, fingerprint: str, since: datetime) -> Report | None:
    """The newest LLM report for the same error fingerprints created at or after ``since``."""
    row = (
        conn.execute(
            select(diagnostic_reports)
            .where(
                diagnostic_reports.c.fingerprint == fingerprint,
                diagnostic_reports.c.created_at >= since,
                diagnostic_reports.c.llm_provider != RULES_PROVIDER,
            )
            .order_by(diagnostic_reports.c.created_at.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return queries.typed(Report, row) if row else None


def spend_since(conn: Connection, since: datetime) -> float:
    """USD spent on diagnosis LLM requests since ``since`` (reused reports cost nothing)."""
    total = conn.execute(
        select(func.coalesce(func.sum(diagnostic_reports.c.cost_usd), 0.0)).where(
            diagnostic_reports.c.created_at >= since
        )
    ).scalar_one()
    return float(total or 0.0)


def queue_depth(conn: Connection, now: datetime, decision_wait: float) -> dict[str, int]:
    """Failed runs waiting for a diagnosis: ``ready`` now, ``waiting`` for silence, ``claimed``."""
    cutoff = now - timedelta(seconds=decision_wait)
    orphan_cutoff = now - timedelta(seconds=orphan_wait_for(decision_wait))
    quiet = case(
        (
            and_(
                runs.c.last_span_at <= cutoff,
                or_(runs.c.root_seen == true(), runs.c.last_span_at <= orphan_cutoff),
            ),
            1,
        ),
        else_=0,
    )
    rows = conn.execute(
        select(runs.c.diagnosis_state, func.count(), func.coalesce(func.sum(quiet), 0))
        .where(runs.c.diagnosis_state.in_((PENDING, CLAIMED)), runs.c.status == "failed")
        .group_by(runs.c.diagnosis_state)
    ).all()
    out = {"ready": 0, "waiting": 0, "claimed": 0}
    for state, count, ready in rows:
        if state == CLAIMED:
            out["claimed"] += int(count)
        else:
            out["ready"] += int(ready)
            out["waiting"] += int(count) - int(ready)
    return out


def next_ready_at(conn: Connection, decision_wait: float) -> datetime | None:
    """When the earliest pending failed run becomes ready (None: nothing pending)."""
    soonest: datetime | None = None
    for rooted, wait in ((True, decision_wait), (False, orphan_wait_for(decision_wait))):
        value = conn.execute(
            select(func.min(runs.c.last_span_at)).where(
                runs.c.diagnosis_state == PENDING,
                runs.c.status == "failed",
                runs.c.root_seen == rooted,
            )
        ).scalar()
        if value is None:
            continue
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        ready = value + timedelta(seconds=wait)
        soonest = ready if soonest is None else min(soonest, ready)
    return soonest
