"""The five REST endpoints of DESIGN.md: runs, a run's errors and summary, diagnoses.

A run is named by any form the CLI accepts (run UUID, trace id, the ``otel_diag.run.id``
string, a unique id prefix) and looked up in the request's tenant only: another tenant's
run is simply not found (404). Handlers are plain ``def``: FastAPI runs them in its thread
pool, so database calls never block the event loop that serves OTLP.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.exceptions import RequestValidationError

from otel_diag.api.context import AppContext, Context, Tenant
from otel_diag.api.schemas import DiagnosticReport, ErrorPage, ErrorSummary, Problem, RunPage
from otel_diag.store.sql import queries

_PROBLEM: dict[str, Any] = {"model": Problem}
# Every endpoint can answer these (tenant resolution, database outages): documented once.
router = APIRouter(
    prefix="/api",
    tags=["runs"],
    responses={
        400: {**_PROBLEM, "description": "Invalid tenant id (X-Tenant)"},
        401: {**_PROBLEM, "description": "Missing or unknown API key (API-key mode)"},
        404: {**_PROBLEM, "description": "No such tenant (trusted mode) or run"},
        503: {**_PROBLEM, "description": "Database unavailable or not ready; retry"},
    },
)

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _PROBLEM,
    409: {**_PROBLEM, "description": "The run reference matches several runs"},
}
MAX_OFFSET = 2**31 - 1
"""Largest page offset: a bigger one is a 422, never an integer overflow in the database."""


def _invalid_query(name: str, value: str, message: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own (``HTTPValidationError``), as the schema documents."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", name), "msg": message, "input": value}]
    )


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """``2025-01-31T12:00:00Z`` (ISO 8601; naive means UTC) or a look-back like ``15m``, ``2h``, ``7d``."""
    if value is None or not value.strip():
        return None
    match = _RELATIVE.match(value)
    if match:
        amount, unit = float(match.group(1)), _UNITS[match.group(2)]
        try:
            return (now or datetime.now(UTC)) - timedelta(**{unit: amount})
        except OverflowError:
            raise _invalid_query("since", value, "look-back reaches before year 1") from None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _invalid_query(
            "since", value, "since must be ISO 8601 or a look-back like 15m, 2h, 7d"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _resolve(ctx: AppContext, tenant: str, ref: str) -> uuid.UUID:
    engine = ctx.manager.get_engine(tenant)
    with engine.connect() as conn:
        try:
            run_id = queries.resolve_run(conn, ref)
        except queries.AmbiguousRunError as exc:
            raise HTTPException(409, str(exc)) from None
    if run_id is None:
        raise HTTPException(404, f"no run {ref!r}")
    return run_id


def _with_link(ctx: AppContext, row: dict[str, Any]) -> dict[str, Any]:
    row["trace_url"] = ctx.settings.trace_url(row.get("trace_id"))
    return row


@router.get("/runs", response_model=RunPage, summary="List runs, newest first")
def list_runs(
    ctx: Context,
    tenant: Tenant,
    status: Annotated[Literal["running", "ok", "failed"] | None, Query()] = None,
    since: Annotated[
        str | None, Query(description="ISO 8601 time, or a look-back such as 15m, 2h, 7d")
    ] = None,
    agent: Annotated[str | None, Query(description="agent name (gen_ai.agent.name)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    since_dt = parse_since(since)
    with ctx.manager.get_engine(tenant).connect() as conn:
        rows = queries.list_runs(
            conn, status=status, since=since_dt, agent=agent, limit=limit + 1, offset=offset
        )
    more = len(rows) > limit
    return {
        "runs": [_with_link(ctx, r) for r in rows[:limit]],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
    }


@router.get(
    "/runs/{run_id}/errors",
    response_model=ErrorPage,
    responses=_NOT_FOUND,
    summary="A run's error rows, oldest first",
)
def run_errors(
    ctx: Context,
    tenant: Tenant,
    run_id: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    rid = _resolve(ctx, tenant, run_id)
    with ctx.manager.get_engine(tenant).connect() as conn:
        errors = queries.get_errors(conn, rid)
    page = errors[offset : offset + limit]
    return {
        "run_id": str(rid),
        "errors": [_with_link(ctx, e) for e in page],
        "total": len(errors),
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < len(errors) else None,
    }


@router.get(
    "/runs/{run_id}/errors/summary",
    response_model=ErrorSummary,
    responses=_NOT_FOUND,
    summary="Counts by category and source, and the distinct error shapes",
)
def run_error_summary(ctx: Context, tenant: Tenant, run_id: str) -> dict[str, Any]:
    rid = _resolve(ctx, tenant, run_id)
    with ctx.manager.get_engine(tenant).connect() as conn:
        summary = queries.error_summary(conn, rid)
        run = queries.get_run(conn, rid)
    summary["run_id"] = str(rid)
    summary["trace_url"] = ctx.settings.trace_url(run["trace_id"] if run else None)
    return summary


def _service(ctx: AppContext, tenant: str) -> Any:
    from otel_diag.diagnosis.service import DiagnosticsService  # lazy: the LLM path is heavy

    return DiagnosticsService(tenant_id=tenant, manager=ctx.manager, settings=ctx.settings)


@router.post(
    "/runs/{run_id}/diagnose",
    response_model=DiagnosticReport,
    responses={**_NOT_FOUND, 409: {"model": Problem}},
    summary="Diagnose a failed run now (LLM, or rules when the LLM fails)",
)
def diagnose_run(
    ctx: Context,
    tenant: Tenant,
    run_id: str,
    force: Annotated[
        bool, Query(description="diagnose again even if a report for these errors exists")
    ] = False,
) -> dict[str, Any]:
    from otel_diag.diagnosis.service import DiagnosisDisabledError, NothingToDiagnoseError

    rid = _resolve(ctx, tenant, run_id)
    try:
        report: dict[str, Any] = _service(ctx, tenant).analyze_failure(str(rid), force=force)
    except (NothingToDiagnoseError, DiagnosisDisabledError) as exc:
        raise HTTPException(409, str(exc)) from None
    return report


@router.get(
    "/runs/{run_id}/diagnostics",
    response_model=DiagnosticReport,
    responses=_NOT_FOUND,
    summary="The latest diagnosis of a run",
)
def run_diagnostics(ctx: Context, tenant: Tenant, run_id: str) -> dict[str, Any]:
    rid = _resolve(ctx, tenant, run_id)
    with ctx.manager.get_engine(tenant).connect() as conn:
        report = queries.latest_diagnosis(conn, rid)
    if report is None:
        raise HTTPException(404, f"run {run_id!r} has no diagnosis yet")
    return report
