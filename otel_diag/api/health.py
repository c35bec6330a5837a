"""``/healthz`` (the process answers), ``/readyz`` (writes would succeed) and ``/metrics``.

Readiness checks every tenant the server knows (the key tenants, or the default tenant in
trusted mode) with a bounded timeout: reachable, schema in place (migrated again if it
vanished), not read-only, so a load balancer stops sending OTLP to a replica whose writes
would fail. It names the failing part, never a DSN. Liveness never touches the database, so
such a replica is not restarted for a fault that is not its own.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Response
from fastapi.responses import JSONResponse

from otel_diag.api.context import AppContext, Context
from otel_diag.metrics import CONTENT_TYPE
from otel_diag.store.port import Storage
from otel_diag.tenancy import Unauthenticated, bearer_token

router = APIRouter(tags=["health"])
OK = "ok"


def ready_tenants(ctx: AppContext) -> list[str]:
    return ctx.tenancy.tenants or [ctx.settings.tenant]


def write_readiness(storage: Storage, tenant: str) -> str:
    """``ok``, or why writes to ``tenant``'s database would fail now (no DSN, no names).

    The tenant's store says so itself; opening it (done once, at start) can fail too.
    """
    try:
        store = storage.tenant(tenant)
    except Exception as exc:  # the reason is the answer
        if storage.is_schema_missing(exc):
            return "not ready: no schema (migrating it)"
        return f"unavailable: cannot open the database ({type(exc).__name__})"
    return store.write_readiness()


@router.get("/healthz", summary="Liveness: the server process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: every tenant's database can take writes",
    responses={503: {"description": "a database is unreachable, read-only or has no schema"}},
)
async def readyz(ctx: Context) -> Response:
    timeout = ctx.settings.db_timeout + 1.0
    checks: dict[str, Any] = {}
    for tenant in ready_tenants(ctx):
        try:
            checks[tenant] = await asyncio.wait_for(
                asyncio.to_thread(write_readiness, ctx.storage, tenant), timeout
            )
        except TimeoutError:
            checks[tenant] = "unavailable: timed out"
    ok = all(v == OK for v in checks.values())
    if ctx.tenancy.tenants:  # keys mode: an unauthenticated probe must not list the tenants
        checks = {f"database {i}": v for i, v in enumerate(checks.values(), 1)}
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "databases": checks},
        status_code=200 if ok else 503,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    responses={401: {"description": "API-key mode: no metrics token or API key"}},
)
async def metrics(ctx: Context, authorization: Annotated[str | None, Header()] = None) -> Response:
    """Open in trusted mode. With API keys, ``OTEL_DIAG_METRICS_TOKEN`` reads everything and
    a tenant's key reads its own series and the server-wide ones: tenant names, activity,
    cost and model names are nobody else's business."""
    tenant = None
    if not ctx.tenancy.trusted:
        token = bearer_token(authorization)
        wanted = ctx.settings.metrics_token
        if not (token and wanted and hmac.compare_digest(token.encode(), wanted.encode())):
            try:
                tenant = ctx.tenancy.api_tenant(authorization, None)
            except Unauthenticated as exc:
                raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    body = await asyncio.to_thread(ctx.metrics.render, tenant)
    return Response(body, media_type=CONTENT_TYPE)
