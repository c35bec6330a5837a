"""``/healthz`` (the process answers), ``/readyz`` (the database answers) and ``/metrics``.

Readiness checks every tenant the server knows (the key tenants, or the default tenant in
trusted mode) with a bounded timeout, so a load balancer stops sending OTLP to a replica
whose database is gone; liveness never touches the database, so such a replica is not
restarted for a fault that is not its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from otel_diag.api.context import AppContext, Context
from otel_diag.server.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


def ready_tenants(ctx: AppContext) -> list[str]:
    return ctx.tenancy.tenants or [ctx.settings.tenant]


def _ping(ctx: AppContext, tenant: str) -> None:
    with ctx.manager.get_engine(tenant).connect() as conn:
        conn.execute(text("SELECT 1"))


@router.get("/healthz", summary="Liveness: the server process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: every tenant's database answers",
    responses={503: {"description": "a database is unreachable"}},
)
async def readyz(ctx: Context) -> Response:
    timeout = ctx.settings.db_timeout + 1.0
    checks: dict[str, Any] = {}
    for tenant in ready_tenants(ctx):
        try:
            await asyncio.wait_for(asyncio.to_thread(_ping, ctx, tenant), timeout)
            checks[tenant] = "ok"
        except Exception as exc:  # the reason is the answer
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            checks[tenant] = f"unavailable: {detail[0][:200] if detail else type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    if ctx.tenancy.tenants:  # keys mode: an unauthenticated probe must not list the tenants
        checks = {f"database {i}": v for i, v in enumerate(checks.values(), 1)}
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "databases": checks},
        status_code=200 if ok else 503,
    )


@router.get("/metrics", summary="Prometheus metrics (text exposition format)")
async def metrics(ctx: Context) -> Response:
    body = await asyncio.to_thread(ctx.metrics.render)
    return Response(body, media_type=CONTENT_TYPE)
