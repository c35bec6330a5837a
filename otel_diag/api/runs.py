"""The REST endpoints of DESIGN.md: runs, a run's errors and summary, its diagnoses (history and latest).

A run is named by any form the CLI accepts (run UUID, trace id, the ``otel_diag.run.id``
string, a unique id prefix) and looked up in the request's tenant only: another tenant's
run is simply not found (404). Handlers are plain ``def``: FastAPI runs them in its thread
pool, so database calls never block the event loop that serves OTLP.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.exceptions import RequestValidationError

from otel_diag import timewindow
from otel_diag.api.context import Context, Store
from otel_diag.api.outages import StorageRoute
from otel_diag.api.schemas import (
    DiagnosticReport,
    DiagnosticReportPage,
    ErrorPage,
    ErrorSummary,
    FailureCost,
    Problem,
    RunPage,
)
from otel_diag.config import Settings
from otel_diag.rows import ErrorRow, Run, RunStatus, to_json
from otel_diag.store.port import AmbiguousRunError, TenantStore

_PROBLEM: dict[str, Any] = {"model": Problem}
# Every endpoint can answer these (tenant resolution, database outages): documented once.
router = APIRouter(
    prefix="/api",
    tags=["runs"],
    route_class=StorageRoute,
    responses={
        400: {**_PROBLEM, "description": "Invalid tenant id (X-Tenant)"},
        401: {**_PROBLEM, "description": "Missing or unknown API key (API-key mode)"},
        404: {**_PROBLEM, "description": "No such tenant (trusted mode) or run"},
        503: {**_PROBLEM, "description": "Database unavailable or not ready; retry"},
    },
)

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _PROBLEM,
    409: {**_PROBLEM, "description": "The run reference matches several runs"},
}
MAX_OFFSET = 2**31 - 1
"""Largest page offset: a bigger one is a 422, never an integer overflow in the database."""
SINCE = "ISO 8601 time, or a look-back such as 90s, 15m, 90min, 2h, 7d, 2w (as the CLI's --since)"


def _invalid_query(name: str, value: str, message: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own (``HTTPValidationError``), as the schema documents."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", name), "msg": message, "input": value}]
    )


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """The ``since`` query parameter, read by the CLI's rule (:func:`otel_diag.timewindow.parse_since`);
    blank means no bound, and anything it refuses (or cannot represent) is a 422 with the reason."""
    if value is None or not value.strip():
        return None
    try:
        return timewindow.parse_since(value, now)
    except ValueError as exc:
        reason = str(exc)
    except OverflowError:  # an ISO time whose UTC reading falls before year 1 or after 9999
        reason = f"time {value!r} is out of range once read as UTC"
    raise _invalid_query("since", value, reason)


def _resolve(store: TenantStore, ref: str) -> uuid.UUID:
    try:
        run_id = store.resolve_run(ref)
    except AmbiguousRunError as exc:
        raise HTTPException(409, str(exc)) from None
    if run_id is None:
        raise HTTPException(404, f"no run {ref!r}")
    return run_id


def _with_link(settings: Settings, row: Run | ErrorRow) -> dict[str, Any]:
    return {**to_json(row), "trace_url": settings.trace_url(row.trace_id)}


@router.get("/runs", response_model=RunPage, summary="List runs, newest first")
def list_runs(
    ctx: Context,
    store: Store,
    status: Annotated[RunStatus | None, Query()] = None,
    since: Annotated[str | None, Query(description=SINCE)] = None,
    agent: Annotated[str | None, Query(description="agent name (gen_ai.agent.name)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    rows = store.runs(
        status=status, since=parse_since(since), agent=agent, limit=limit + 1, offset=offset
    )
    more = len(rows) > limit
    return {
        "runs": [_with_link(ctx.settings, r) for r in rows[:limit]],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
    }


@router.get(
    "/cost/failures",
    response_model=FailureCost,
    summary="Tokens and USD spent by failed runs and retried attempts, by category and agent",
)
def failure_cost(
    store: Store,
    since: Annotated[str | None, Query(description=SINCE)] = "7d",
) -> dict[str, Any]:
    start = parse_since(since)
    until = datetime.now(UTC)
    return {
        "since": start.isoformat() if start else None,
        "until": until.isoformat(),
        **to_json(store.failure_cost(start, until)),
    }


@router.get(
    "/runs/{run_id}/errors",
    response_model=ErrorPage,
    responses=_NOT_FOUND,
    summary="A run's error rows, oldest first",
)
def run_errors(
    ctx: Context,
    store: Store,
    run_id: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    rid = _resolve(store, run_id)
    run = store.run(rid)
    # The run's error count is kept equal to its error rows by the store: one key lookup,
    # where the error summary grouped every row of the run (170 ms at 20k errors).
    total = run.error_count if run is not None else 0
    page = store.errors(rid, limit=limit, offset=offset) if offset < total else []
    return {
        "run_id": str(rid),
        "errors": [_with_link(ctx.settings, e) for e in page],
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < total else None,
    }


@router.get(
    "/runs/{run_id}/errors/summary",
    response_model=ErrorSummary,
    responses=_NOT_FOUND,
    summary="Counts by category and source, and the distinct error shapes",
)
def run_error_summary(ctx: Context, store: Store, run_id: str) -> dict[str, Any]:
    rid = _resolve(store, run_id)
    summary = store.error_summary(rid)
    run = store.run(rid)
    return {
        **to_json(summary),
        "run_id": str(rid),
        "trace_url": ctx.settings.trace_url(run.trace_id if run else None),
    }


@router.post(
    "/runs/{run_id}/diagnose",
    response_model=DiagnosticReport,
    responses={**_NOT_FOUND, 409: {"model": Problem}},
    summary="Diagnose a failed run now (LLM, or rules when the LLM fails)",
)
def diagnose_run(
    ctx: Context,
    store: Store,
    run_id: str,
    force: Annotated[
        bool, Query(description="diagnose again even if a report for these errors exists")
    ] = False,
) -> dict[str, Any]:
    # lazy: the LLM path (litellm) is heavy, and most servers never diagnose on request
    from otel_diag.diagnosis.service import (
        DiagnosisDisabledError,
        DiagnosticsService,
        NothingToDiagnoseError,
    )

    rid = _resolve(store, run_id)
    service = DiagnosticsService(store.tenant, manager=ctx.storage, settings=ctx.settings)
    try:
        report = service.analyze_failure(rid, force=force)
    except (NothingToDiagnoseError, DiagnosisDisabledError) as exc:
        raise HTTPException(409, str(exc)) from None
    return to_json(report)


@router.get(
    "/runs/{run_id}/diagnostics",
    response_model=DiagnosticReportPage,
    responses=_NOT_FOUND,
    summary="A run's diagnostic reports, newest first (every --force adds one)",
)
def run_diagnostics(
    ctx: Context,
    store: Store,
    run_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    rid = _resolve(store, run_id)
    rows = store.reports(rid, limit=limit + 1, offset=offset)
    more = len(rows) > limit
    run = store.run(rid)
    return {
        "run_id": str(rid),
        "reports": [to_json(r) for r in rows[:limit]],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
        "trace_url": ctx.settings.trace_url(run.trace_id if run else None),
    }


@router.get(
    "/runs/{run_id}/diagnostics/latest",
    response_model=DiagnosticReport,
    responses=_NOT_FOUND,
    summary="The latest diagnosis of a run (404 until it has one)",
)
def run_latest_diagnosis(store: Store, run_id: str) -> dict[str, Any]:
    rid = _resolve(store, run_id)
    latest = store.reports(rid, limit=1)
    if not latest:
        raise HTTPException(404, f"run {run_id!r} has no diagnosis yet")
    return to_json(latest[0])
